// Helpers shared by every view: trait subscriptions with cleanup, and the common view frame
// (styles, theme, title, tooltip, legend slot, rebuild on data changes).
import { injectStyles } from "./styles.js";
import { decodeArray } from "./arrays.js";
import { chatMarks } from "./tokens.js";
import { applyTheme } from "./theme.js";
import { createTooltip } from "./tooltip.js";
import { addFigureButtons } from "./figure.js";

/** Keys whose default (scrolling the page, moving a notebook's cell) a view's focused element replaces. */
export const NAV_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);

/** Keys a focused element of a view acts on (without Shift / Ctrl / Alt / Meta): the NAV_KEYS, Enter, Space. */
const isViewKey = (ev) => !ev.altKey && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && (NAV_KEYS.has(ev.key) || ev.key === "Enter" || ev.key === " ");

/**
 * Notebook 7 (and any Lumino app built with capturing shortcuts) matches its shortcuts in a keydown listener on
 * the document in the capture phase, before any view sees the key: stopPropagation comes too late there. One
 * listener on the window (whose capture phase runs first) marks the focused element of a view with
 * data-lm-suppress-shortcuts (Lumino stops its selector walk at such an element) for the one key event, so the
 * view handles the key and the notebook does not. Keys with modifiers (Shift+Enter runs the cell) are left alone.
 * Installed once per page, shared by every bundle.
 */
export function installKeyGuard() {
  if (typeof window === "undefined" || window.__ewKeyGuard) return;
  window.__ewKeyGuard = true;
  window.addEventListener(
    "keydown",
    (ev) => {
      // the element itself, also inside a shadow root (marimo renders each view in one; ev.target is its host here)
      const t = typeof ev.composedPath === "function" && ev.composedPath().length ? ev.composedPath()[0] : ev.target;
      if (!t || typeof t.closest !== "function" || !isViewKey(ev) || !t.closest(".ew-root")) return;
      if (t.hasAttribute("data-lm-suppress-shortcuts")) return;
      t.setAttribute("data-lm-suppress-shortcuts", "");
      setTimeout(() => t.removeAttribute("data-lm-suppress-shortcuts"), 0);
    },
    true,
  );
}

/** Subscribe `cb` to change:<name> for each name. Returns an unsubscribe function. */
export function onChange(model, names, cb) {
  const subs = [];
  for (const n of names) {
    const ev = `change:${n}`;
    model.on(ev, cb);
    subs.push(ev);
  }
  return () => {
    for (const ev of subs) {
      try {
        model.off(ev, cb);
      } catch (_) {
        /* model already closed */
      }
    }
  };
}

/** Commit a selection back to Python. */
export function commit(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

/** model.get with a default for undefined / null. */
export function get(model, name, dflt) {
  const v = model.get(name);
  return v === undefined || v === null ? dflt : v;
}

export function showError(container, err) {
  const box = document.createElement("div");
  box.className = "ew-error";
  box.setAttribute("role", "alert");
  box.textContent = `ecco_widgets: ${err && err.message ? err.message : String(err)}`;
  container.appendChild(box);
  return box;
}

/**
 * Mount a view. spec: {name, traits: [data traits that trigger a rebuild], build(ctx)}.
 * build(ctx) fills ctx.body / ctx.controls and may call ctx.setLegend(node); it returns an
 * optional object {destroy(), onTrait: {traitName: fn}} for traits handled without a rebuild.
 * Returns the cleanup function anywidget calls on unmount.
 */
export function mountView(model, el, spec) {
  injectStyles(el);
  const root = document.createElement("div");
  root.className = `ew-root ew-view-${spec.name}`;
  root.dataset.ewView = spec.name;
  // focusable (not a tab stop): a click on a part of the view that takes no focus itself (a column header, a panel's
  // text) focuses the view, not the notebook's cell, so the keys that follow come to the view (onKey below)
  root.tabIndex = -1;
  el.appendChild(root);

  const title = document.createElement("div");
  title.className = "ew-title";
  const controls = document.createElement("div");
  controls.className = "ew-controls";
  const body = document.createElement("div");
  body.className = "ew-body";
  const legendSlot = document.createElement("div");
  legendSlot.className = "ew-legend-slot";
  root.appendChild(title);
  root.appendChild(controls);
  root.appendChild(body);
  root.appendChild(legendSlot);
  addFigureButtons(root, spec.name);
  const tooltip = createTooltip(root);
  // Keys a view handles stay in the view: a notebook (JupyterLab, Notebook 7: Lumino's shortcuts listen on the
  // document in the bubbling phase) must not move its active cell or take the focus on an arrow key.
  // A navigation key on the view itself (focused by a click on a part that takes no focus) goes to the view's own
  // tab stop (the token row, the grid's active cell), which acts on it: the selection moves, as after a click on it.
  const onKey = (ev) => {
    const nav = !ev.altKey && !ev.ctrlKey && !ev.metaKey && NAV_KEYS.has(ev.key);
    if (nav && ev.target === root && !ev.defaultPrevented && typeof KeyboardEvent === "function") {
      const stop = body.querySelector('[tabindex="0"]');
      ev.preventDefault();
      if (stop) {
        stop.focus({ preventScroll: true }); // (the reader stays where the click was: a panel below the token row)
        stop.dispatchEvent(new KeyboardEvent("keydown", { key: ev.key, code: ev.code, shiftKey: ev.shiftKey, bubbles: true, cancelable: true, composed: true }));
      }
    }
    if (ev.defaultPrevented || nav) ev.stopPropagation();
  };
  root.addEventListener("keydown", onKey);
  installKeyGuard();

  let themeCleanup = () => {};
  let built = false;
  const setTheme = () => {
    themeCleanup();
    const before = root.dataset.ewTheme;
    themeCleanup = applyTheme(root, get(model, "theme", "auto"), () => built && rebuild());
    if (built && before !== root.dataset.ewTheme) rebuild();
  };
  const setTitle = () => {
    const t = get(model, "title", "");
    title.textContent = String(t);
    title.hidden = !t;
  };
  setTheme();
  setTitle();

  let current = null;
  const build = () => {
    if (current && current.destroy) current.destroy();
    current = null;
    tooltip.hide();
    body.textContent = "";
    controls.textContent = "";
    legendSlot.textContent = "";
    const ctx = {
      model,
      root,
      body,
      controls,
      tooltip,
      /** "light" | "dark": the resolved theme (colour scales keep their extremes visible on it). */
      theme: root.dataset.ewTheme === "dark" ? "dark" : "light",
      setLegend(node) {
        legendSlot.textContent = "";
        if (node) legendSlot.appendChild(node);
      },
    };
    current = spec.build(ctx) || {};
    controls.hidden = !controls.firstChild;
  };

  let scheduled = false;
  const rebuild = () => {
    if (scheduled) return;
    scheduled = true;
    const run = () => {
      scheduled = false;
      try {
        build();
      } catch (err) {
        body.textContent = "";
        showError(body, err);
      }
    };
    if (typeof queueMicrotask === "function") queueMicrotask(run);
    else Promise.resolve().then(run);
  };

  // First build: errors propagate so the host (and the offline export) can report them. A host that dropped the
  // binary buffers of the initial state (Colab's widget manager) first gets them resent by the kernel.
  const waiting = awaitArrays(model, [...(spec.traits || []), "special"], body, () => {
    build();
    built = true;
  });
  if (!waiting) {
    build();
    built = true;
  }

  const offs = [];
  offs.push(onChange(model, spec.traits || [], rebuild));
  offs.push(onChange(model, ["title"], setTitle));
  offs.push(onChange(model, ["theme"], setTheme));
  const handled = new Set();
  for (const name of spec.localTraits || []) {
    if (handled.has(name)) continue;
    handled.add(name);
    offs.push(
      onChange(model, [name], () => {
        if (current && current.onTrait && current.onTrait[name]) current.onTrait[name]();
      }),
    );
  }

  return () => {
    if (waiting) waiting();
    root.removeEventListener("keydown", onKey);
    offs.forEach((f) => f());
    themeCleanup();
    if (current && current.destroy) current.destroy();
    root.remove();
  };
}

/** Common token-trait accessors; `marks`: the chat turns and special tokens (lib/tokens.js chatMarks). */
export function tokenTraits(model) {
  const tokens = get(model, "tokens", []);
  const raw = get(model, "raw_tokens", []);
  const nInput = Number(get(model, "n_input_tokens", tokens.length));
  const field = get(model, "special", null);
  const special = field && field.shape && field.shape[0] === tokens.length ? decodeArray(field, "special").data : null;
  const marks = chatMarks(get(model, "turns", []), special, tokens.length);
  return { tokens, raw, nInput, marks };
}

/** A muted one-line hint (textContent). */
export function hint(parent, text) {
  const p = document.createElement("div");
  p.className = "ew-hint";
  p.textContent = text;
  parent.appendChild(p);
  return p;
}

/** True when `v` is an array field ({dtype, shape}) with elements whose data never arrived (no view / base64). */
function lostArray(v) {
  if (!v || typeof v !== "object" || Array.isArray(v) || typeof v.dtype !== "string" || !Array.isArray(v.shape)) return false;
  if (v.view != null || v.base64 != null || v.buffer != null || v.data != null) return false;
  return v.shape.every((d) => Number(d) > 0);
}

/** Names of the traits among `names` whose arrays came without their binary data. */
export function lostArrays(model, names) {
  return names.filter((n) => lostArray(model.get(n)));
}

/** How long a view waits for the kernel to resend arrays a host dropped before it says so. */
export const RESEND_TIMEOUT_MS = 15000;

/**
 * Colab's widget manager drops the binary buffers of a widget's initial state (its commChannelOpened never passes
 * them on): the arrays arrive as {dtype, shape} without data. Then ask the kernel once for the whole state
 * ({type: "ew:resend"}; Python answers with its whole state in one update, arrays as base64 JSON, so that no buffer
 * is needed), show a hint meanwhile, and call `ready` when the arrays are there. Returns null when nothing is missing, else a cancel
 * function.
 */
export function awaitArrays(model, names, body, ready) {
  if (!lostArrays(model, names).length) return null;
  const note = hint(body, "Loading the view's data from the kernel\u2026");
  note.dataset.ewWaiting = "1";
  let done = false;
  const check = () => {
    if (done || lostArrays(model, names).length) return;
    finish();
    note.remove();
    ready();
  };
  const timer = setTimeout(() => {
    if (done) return;
    finish();
    note.textContent = "";
    showError(body, new Error(
      `this notebook host dropped the view's arrays (${lostArrays(model, names).join(", ")}) and the kernel did not ` +
        "resend them: run the cell again, or save the view with ew.save_html and open that page"));
  }, RESEND_TIMEOUT_MS);
  const offs = onChange(model, names, check);
  function finish() {
    done = true;
    clearTimeout(timer);
    offs();
  }
  model.send({ type: "ew:resend" });
  return finish;
}
