// Light / dark / auto. "auto" follows Jupyter's --jp-* variables (or data-jp-theme-light on <body>)
// when present, else the browser's prefers-color-scheme.
import { luminance } from "./colors.js";

/** Parse "#rgb", "#rrggbb", "rgb(a)(...)", "white", "black" into [r,g,b] or null. */
export function parseColor(s) {
  if (!s) return null;
  s = String(s).trim().toLowerCase();
  if (s === "white") return [255, 255, 255];
  if (s === "black") return [0, 0, 0];
  let m = /^#([0-9a-f]{3})$/.exec(s);
  if (m) return [...m[1]].map((h) => parseInt(h + h, 16));
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return null;
}

/** "light" | "dark" if the page is a Jupyter (or VS Code) page with a known theme, else null. */
export function hostTheme(el) {
  if (typeof document === "undefined") return null;
  const body = document.body;
  if (body && body.dataset && body.dataset.jpThemeLight !== undefined) {
    return body.dataset.jpThemeLight === "false" ? "dark" : "light";
  }
  if (body && body.classList) {
    if (body.classList.contains("vscode-dark") || body.classList.contains("vscode-high-contrast")) return "dark";
    if (body.classList.contains("vscode-light")) return "light";
  }
  try {
    const target = el && el.isConnected ? el : document.documentElement;
    const v = getComputedStyle(target).getPropertyValue("--jp-layout-color0");
    const rgb = parseColor(v);
    if (rgb) return luminance(rgb) < 0.4 ? "dark" : "light";
  } catch (_) {
    /* no computed styles */
  }
  return null;
}

export function hasJupyterVars(el) {
  try {
    const target = el && el.isConnected ? el : document.documentElement;
    return !!getComputedStyle(target).getPropertyValue("--jp-layout-color0").trim();
  } catch (_) {
    return false;
  }
}

function prefersDark() {
  try {
    return typeof window !== "undefined" && !!window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  } catch (_) {
    return false;
  }
}

/** Resolve a theme setting to "light" or "dark". */
export function resolveTheme(setting, el) {
  if (setting === "light" || setting === "dark") return setting;
  return hostTheme(el) || (prefersDark() ? "dark" : "light");
}

/**
 * Apply a theme setting to a view root: classes ew-light / ew-dark (+ ew-jp when "auto" and the
 * Jupyter variables are available, so colours come from --jp-*). `onResolved(theme)` is called when the
 * resolved theme changes later (host theme switch, a new `theme` setting). Returns a cleanup function.
 */
export function applyTheme(root, setting, onResolved) {
  const update = () => {
    const t = resolveTheme(setting, root);
    const changed = root.dataset.ewTheme !== undefined && root.dataset.ewTheme !== t;
    root.classList.toggle("ew-dark", t === "dark");
    root.classList.toggle("ew-light", t !== "dark");
    root.classList.toggle("ew-jp", setting !== "light" && setting !== "dark" && hasJupyterVars(root));
    root.dataset.ewTheme = t;
    // colour scales depend on the background: the view redraws them when the resolved theme changes
    if (changed && onResolved) onResolved(t);
  };
  update();
  const cleanups = [];
  if (setting !== "light" && setting !== "dark") {
    try {
      const mq = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
      if (mq && mq.addEventListener) {
        mq.addEventListener("change", update);
        cleanups.push(() => mq.removeEventListener("change", update));
      }
    } catch (_) {
      /* ignore */
    }
    if (typeof MutationObserver !== "undefined" && document.body) {
      const mo = new MutationObserver(update);
      mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "class"] });
      cleanups.push(() => mo.disconnect());
    }
    // the element may only get its Jupyter variables once attached
    if (typeof requestAnimationFrame === "function") {
      const id = requestAnimationFrame(update);
      cleanups.push(() => typeof cancelAnimationFrame === "function" && cancelAnimationFrame(id));
    }
  }
  return () => cleanups.forEach((f) => f());
}
