// A token row for long texts (8,000 tokens and more): the tokens are packed into lines as wide as the row (widths
// measured once with a canvas in the row's monospace font), and only the lines in view (and a few around them) are
// in the DOM, each token a span with data-token-index (and data-index) = its position. A chat turn starts a new
// line behind a role badge ([data-turn-role]); a token ending in a newline ends its line (once after a run of newline tokens: lib/tokens.js breaksBefore); special tokens are dimmed.
// The row is one focusable listbox (aria-activedescendant names the active token), so focus survives scrolling.
// Text only through textContent (fillToken).
import { fillToken, describeToken, tokenParts, breaksBefore } from "./tokens.js";
import { css, textColorFor } from "./colors.js";

export const LINE_H = 24; // px per line (token height 20 + gap)
const GAP = 2; // px between tokens
const PAD = 8; // a token's horizontal padding and border (3 + 3 px padding, rounding)
const MAX_W = 312; // .ew-tok max-width: 24em at 13px
const BADGE_W = 72; // a turn badge and its margin
const OVERSCAN = 6; // lines rendered above and below the visible ones

/** Width in px of a token's display text (markers included) given measure(text) -> px. */
export function tokenWidth(text, measure) {
  let w = PAD;
  for (const p of tokenParts(text)) {
    if (p.kind === "ctl") w += 6 + measure(p.mark) * 0.6;
    else if (p.kind === "space") w += measure(p.text) * 0.85;
    else w += measure(p.text);
  }
  return Math.min(MAX_W, Math.ceil(w));
}

/**
 * Pack token widths into lines of at most `width` px. breakBefore(i): token i starts a line (a turn); extra(i):
 * px placed before token i (its turn badge). Returns {starts: Int32Array (n_lines + 1), lineOf: Int32Array (n)}.
 */
export function packLines(widths, width, breakBefore = () => false, extra = () => 0) {
  const n = widths.length;
  const starts = [0];
  const lineOf = new Int32Array(n);
  let x = 0;
  for (let i = 0; i < n; i++) {
    const w = widths[i] + extra(i) + GAP;
    if (i > 0 && (breakBefore(i) || (x > 0 && x + w > width))) {
      starts.push(i);
      x = 0;
    }
    x += w;
    lineOf[i] = starts.length - 1;
  }
  starts.push(n);
  return { starts: Int32Array.from(starts), lineOf };
}

/**
 * A document-unique prefix for a row's element ids, with no module-level counter: a bundle's module is evaluated once
 * and shared by every view of that bundle (marimo, anywidget's module cache), and each bundle carries its own copy
 * of this file, so a counter would repeat ids between two bundles' rows on one page.
 */
function rowPrefix() {
  const c = typeof crypto !== "undefined" ? crypto : null;
  const id = c && typeof c.randomUUID === "function" ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `ew-vrow-${id}`;
}

/**
 * opts: {tokens, rawTokens, nInput, special (0/1 per token or null), turns [{role, start, stop}], label,
 *        maxLines (lines in view, default 12), classOf(i) -> extra classes, colorOf(i) -> [r,g,b] | null,
 *        onPreview(i, how, anchor) (i = -1: left), onSelect(i, how), onFocus(), onBlur()}
 * Returns {el, spanOf(i), reveal(i), setActive(i), restyle(), relayout(), rendered() -> [first, last], destroy()}.
 */
export function createVirtualRow(opts) {
  const tokens = opts.tokens || [];
  const raw = opts.rawTokens || [];
  const n = tokens.length;
  const nInput = opts.nInput == null ? n : opts.nInput;
  const special = opts.special || null;
  const maxLines = opts.maxLines || 12;
  const prefix = rowPrefix();
  const turnAt = new Map();
  const roleOf = new Array(n).fill("");
  for (const t of opts.turns || []) {
    turnAt.set(t.start, t.role);
    for (let i = t.start; i < t.stop && i < n; i++) roleOf[i] = t.role;
  }
  const el = document.createElement("div");
  el.className = "ew-tokens ew-vrow";
  el.setAttribute("role", "listbox");
  el.setAttribute("aria-orientation", "horizontal");
  el.tabIndex = 0;
  if (opts.label) el.setAttribute("aria-label", opts.label);
  const space = document.createElement("div");
  space.className = "ew-vrow-space";
  el.appendChild(space);

  let layout = null;
  let width = 0;
  let widths = null; // px per token, from the last relayout (near MAX_W: it may not fit, its text clips: ew-tok-clip)
  const lines = new Map(); // line -> element
  const spans = new Map(); // token -> span
  let active = -1;

  const measurer = () => {
    let ctx = null;
    try {
      const c = document.createElement("canvas");
      ctx = c.getContext && c.getContext("2d");
      if (ctx && typeof ctx.measureText === "function" && el.isConnected && typeof getComputedStyle === "function") {
        const s = getComputedStyle(el);
        ctx.font = `${s.fontWeight || 400} ${s.fontSize || "13px"} ${s.fontFamily || "monospace"}`;
      }
    } catch (_) {
      ctx = null;
    }
    if (ctx && typeof ctx.measureText === "function" && el.isConnected) {
      const cache = new Map();
      return (t) => {
        let w = cache.get(t);
        if (w === undefined) cache.set(t, (w = ctx.measureText(t).width || t.length * 7.8));
        return w;
      };
    }
    return (t) => [...t].length * 7.8;
  };

  const relayout = () => {
    width = el.clientWidth || 0;
    const measure = measurer();
    widths = new Float32Array(n);
    for (let i = 0; i < n; i++) widths[i] = tokenWidth(tokens[i], measure);
    layout = packLines(widths, Math.max(120, (width || 800) - 8), (i) => turnAt.has(i) || breaksBefore(tokens, i),
      (i) => (turnAt.has(i) ? BADGE_W : 0));
    const nLines = layout.starts.length - 1;
    space.style.height = `${nLines * LINE_H}px`;
    el.style.height = `${Math.min(nLines, maxLines) * LINE_H + 4}px`;
    for (const line of lines.values()) line.remove();
    lines.clear();
    spans.clear();
    if (active >= 0) reveal(active); // (the first layout may run before the row is in the page: keep it in view)
    else render();
  };

  const makeSpan = (i) => {
    const s = document.createElement("span");
    s.id = `${prefix}-${i}`;
    s.dataset.index = String(i);
    s.dataset.tokenIndex = String(i);
    s.setAttribute("role", "option");
    fillToken(s, tokens[i]);
    s.title = String(raw[i] != null ? raw[i] : tokens[i] == null ? "" : tokens[i]);
    const kind = i < nInput ? "prompt" : "generated";
    s.setAttribute("aria-label", `${describeToken(i, tokens[i], raw[i])} (${kind}${roleOf[i] ? `, ${roleOf[i]}` : ""})`);
    style(s, i);
    spans.set(i, s);
    return s;
  };
  // (only what changed is written: a hover restyles every rendered token, and each write costs a style recalc)
  const style = (s, i) => {
    const rgb = opts.colorOf ? opts.colorOf(i) : null;
    const cls = `ew-tok ${i < nInput ? "ew-tok-prompt" : "ew-tok-gen"}` + (special && special[i] ? " ew-special" : "") +
      (roleOf[i] ? ` ew-turn-${roleOf[i]}` : "") + (opts.classOf ? ` ${opts.classOf(i)}` : "") + (rgb ? " ew-colored" : "") + (widths && widths[i] >= MAX_W - 24 ? " ew-tok-clip" : "");
    if (s.className !== cls) s.className = cls;
    const bg = rgb ? css(rgb) : "";
    if (s.__ewBg !== bg) {
      s.__ewBg = bg;
      s.style.backgroundColor = bg;
      s.style.color = rgb ? textColorFor(rgb) : "";
    }
    const sel = i === active;
    if (sel !== (s.getAttribute("aria-selected") === "true")) {
      if (sel) s.setAttribute("aria-selected", "true");
      else s.removeAttribute("aria-selected");
    }
  };
  const makeLine = (l) => {
    const line = document.createElement("div");
    line.className = "ew-vrow-line";
    line.style.top = `${l * LINE_H}px`;
    for (let i = layout.starts[l]; i < layout.starts[l + 1]; i++) {
      if (turnAt.has(i)) {
        const b = document.createElement("span");
        b.className = "ew-turn-mark";
        b.dataset.turnRole = turnAt.get(i);
        b.setAttribute("aria-hidden", "true");
        b.textContent = turnAt.get(i);
        line.appendChild(b);
      }
      line.appendChild(makeSpan(i));
    }
    return line;
  };

  /** The lines in view: [first, last) from the scroll position (all of them up to maxLines before layout). */
  const visibleLines = () => {
    const nLines = layout.starts.length - 1;
    const h = el.clientHeight || maxLines * LINE_H;
    const first = Math.max(0, Math.floor(el.scrollTop / LINE_H) - OVERSCAN);
    return [first, Math.min(nLines, Math.ceil((el.scrollTop + h) / LINE_H) + OVERSCAN)];
  };
  function render() {
    if (!layout) return;
    const [a, b] = visibleLines();
    for (const [l, line] of lines) {
      if (l >= a && l < b) continue;
      for (let i = layout.starts[l]; i < layout.starts[l + 1]; i++) spans.delete(i);
      line.remove();
      lines.delete(l);
    }
    for (let l = a; l < b; l++) if (!lines.has(l)) lines.set(l, space.appendChild(makeLine(l)));
    const s = spans.get(active);
    if (s) el.setAttribute("aria-activedescendant", s.id);
    else el.removeAttribute("aria-activedescendant");
  }

  /** Scroll token i's line into view (centred when it was out of view) and render it. */
  function reveal(i) {
    if (!layout || i < 0 || i >= n) return;
    const top = layout.lineOf[i] * LINE_H;
    const h = el.clientHeight || maxLines * LINE_H;
    if (top < el.scrollTop || top + LINE_H > el.scrollTop + h) el.scrollTop = Math.max(0, top - h / 2 + LINE_H / 2);
    render();
  }

  let frame = 0;
  const onScroll = () => {
    if (frame) return;
    frame = (typeof requestAnimationFrame === "function" ? requestAnimationFrame : setTimeout)(() => {
      frame = 0;
      render();
    });
  };
  const indexOf = (t) => {
    const s = t && typeof t.closest === "function" ? t.closest("[data-token-index]") : null;
    return s && el.contains(s) ? Number(s.dataset.tokenIndex) : -1;
  };
  let hovered = -1;
  let pointer = null; // the last pointer position over the row
  let still = null; // where the pointer rested when a key moved the selection: the row scrolling under it is no hover
  const onMove = (ev) => {
    pointer = [ev.clientX, ev.clientY];
    if (still && (still[0] !== pointer[0] || still[1] !== pointer[1])) still = null;
  };
  const onOver = (ev) => {
    if (still && ev.clientX === still[0] && ev.clientY === still[1]) return;
    const i = indexOf(ev.target);
    if (i < 0 || i === hovered) return;
    hovered = i;
    if (opts.onPreview) opts.onPreview(i, "mouse", ev);
  };
  const onLeave = () => {
    hovered = -1;
    if (opts.onPreview) opts.onPreview(-1, "mouse", null);
  };
  const onClick = (ev) => {
    const i = indexOf(ev.target);
    if (i >= 0 && opts.onSelect) opts.onSelect(i, "mouse");
  };
  const step = (i, key) => {
    const line = layout.lineOf[i];
    const col = i - layout.starts[line];
    const to = (l) => {
      const m = Math.max(0, Math.min(layout.starts.length - 2, l));
      return Math.min(layout.starts[m] + col, layout.starts[m + 1] - 1);
    };
    switch (key) {
      case "ArrowRight": return Math.min(n - 1, i + 1);
      case "ArrowLeft": return Math.max(0, i - 1);
      case "ArrowDown": return to(line + 1);
      case "ArrowUp": return to(line - 1);
      case "PageDown": return to(line + maxLines - 1);
      case "PageUp": return to(line - maxLines + 1);
      case "Home": return 0;
      case "End": return n - 1;
      default: return null;
    }
  };
  const onKey = (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || !n) return;
    const i = active >= 0 ? active : 0;
    if (ev.key === "Enter" || ev.key === " ") {
      if (ev.shiftKey) return; // Shift+Enter: the host's (run the cell)
      ev.preventDefault();
      if (opts.onSelect) opts.onSelect(i, "key");
      return;
    }
    const j = ev.shiftKey ? null : step(i, ev.key);
    if (j == null) return;
    ev.preventDefault();
    still = pointer;
    if (opts.onSelect) opts.onSelect(j, "key");
  };
  const onFocus = () => opts.onFocus && opts.onFocus();
  const onBlur = () => opts.onBlur && opts.onBlur();
  el.addEventListener("scroll", onScroll);
  el.addEventListener("mouseover", onOver);
  el.addEventListener("mousemove", onMove);
  el.addEventListener("mouseleave", onLeave);
  el.addEventListener("click", onClick);
  el.addEventListener("keydown", onKey);
  el.addEventListener("focus", onFocus);
  el.addEventListener("blur", onBlur);
  let observer = null;
  if (typeof ResizeObserver !== "undefined") {
    observer = new ResizeObserver(() => {
      if (Math.abs((el.clientWidth || 0) - width) > 1) relayout();
    });
    observer.observe(el);
  }
  relayout();

  return {
    el,
    spanOf: (i) => spans.get(i) || null,
    reveal,
    /** The active (keyboard) token: aria-activedescendant and aria-selected. */
    setActive(i) {
      const prev = spans.get(active);
      active = i;
      if (prev) style(prev, Number(prev.dataset.tokenIndex));
      const s = spans.get(i);
      if (s) style(s, i);
      render();
    },
    /** Re-apply classOf / colorOf to the rendered tokens. */
    restyle() {
      for (const [i, s] of spans) style(s, i);
    },
    relayout,
    /** [first, last] token positions in the DOM. */
    rendered() {
      const keys = [...spans.keys()];
      return keys.length ? [Math.min(...keys), Math.max(...keys)] : [-1, -1];
    },
    get lineCount() {
      return layout ? layout.starts.length - 1 : 0;
    },
    destroy() {
      if (observer) observer.disconnect();
      el.remove();
    },
  };
}
