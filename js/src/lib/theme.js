// Light / dark / auto. "auto" follows what the notebook host signals (hostTheme: JupyterLab, VS Code, Colab, marimo,
// Jupyter's --jp-* variables), else the browser's prefers-color-scheme.
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

const lightness = (value) => {
  const rgb = parseColor(value);
  return rgb ? (luminance(rgb) < 0.4 ? "dark" : "light") : null;
};

function cssVar(el, name) {
  try {
    const target = el && el.isConnected ? el : document.documentElement;
    return getComputedStyle(target).getPropertyValue(name).trim();
  } catch (_) {
    return "";
  }
}

/**
 * The theme a notebook host signals, in this order, or null (then the browser's prefers-color-scheme decides):
 * 1. JupyterLab / Notebook 7: body[data-jp-theme-light];
 * 2. VS Code: body[data-vscode-theme-kind], its body classes (vscode-light, vscode-dark, vscode-high-contrast,
 *    vscode-high-contrast-light), then its --vscode-editor-background;
 * 3. Colab: html[theme=dark|light] (its output frames);
 * 4. marimo: the dark / dark-theme class on html or body (the app sets it when its theme is dark);
 * 5. any other page with Jupyter's --jp-layout-color0 (classic front ends that load Jupyter's theme).
 */
export function hostTheme(el) {
  if (typeof document === "undefined") return null;
  const body = document.body;
  const html = document.documentElement;
  if (body && body.dataset && body.dataset.jpThemeLight !== undefined) {
    return body.dataset.jpThemeLight === "false" ? "dark" : "light";
  }
  const kind = body && body.dataset ? body.dataset.vscodeThemeKind : undefined;
  if (kind) return /light/.test(kind) ? "light" : "dark";
  if (body && body.classList) {
    if (body.classList.contains("vscode-high-contrast-light") || body.classList.contains("vscode-light")) return "light";
    if (body.classList.contains("vscode-dark") || body.classList.contains("vscode-high-contrast")) return "dark";
  }
  const vscode = lightness(cssVar(el, "--vscode-editor-background"));
  if (vscode) return vscode;
  const colab = html && html.getAttribute && html.getAttribute("theme");
  if (colab === "dark" || colab === "light") return colab;
  for (const node of [html, body]) {
    if (node && node.classList && (node.classList.contains("dark") || node.classList.contains("dark-theme"))) return "dark";
  }
  return lightness(cssVar(el, "--jp-layout-color0"));
}

/**
 * Whether the view takes its colours from Jupyter's --jp-* variables: only in JupyterLab / Notebook 7, whose body
 * says which theme those variables are (elsewhere they may be a widget manager's light defaults, as in Colab).
 */
export function hasJupyterVars(el) {
  if (typeof document === "undefined" || !document.body || document.body.dataset.jpThemeLight === undefined) return false;
  return !!cssVar(el, "--jp-layout-color0");
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
      // the signals hostTheme reads: a host switching its theme changes one of these attributes
      const mo = new MutationObserver(update);
      mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "class", "data-vscode-theme-kind", "style"] });
      mo.observe(document.documentElement, { attributes: true, attributeFilter: ["theme", "class", "style"] });
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
