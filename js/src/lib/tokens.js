// Token rendering. Data text is only ever set through textContent / aria-label / title.
import { css, textColorFor } from "./colors.js";

export const MARK_SPACE = "\u00b7"; // faint middle dot for a leading space
export const MARK_NEWLINE = "\u21b5"; // ↵
export const MARK_TAB = "\u2192"; // →

/**
 * Invisible characters drawn as visible markers: zero-width characters and bidi controls (which can
 * reorder the text around them, e.g. U+202E shows "evil" as "live"). Code point -> marker label.
 */
export const INVISIBLE = Object.freeze({
  "\u061c": "ALM",
  "\u200b": "ZWSP",
  "\u200c": "ZWNJ",
  "\u200d": "ZWJ",
  "\u200e": "LRM",
  "\u200f": "RLM",
  "\u202a": "LRE",
  "\u202b": "RLE",
  "\u202c": "PDF",
  "\u202d": "LRO",
  "\u202e": "RLO",
  "\u2060": "WJ",
  "\u2066": "LRI",
  "\u2067": "RLI",
  "\u2068": "FSI",
  "\u2069": "PDI",
  "\ufeff": "BOM",
});

/**
 * The label of a token's position in the text, which must not read as a rank in a ranked list: positionLabel(1) ->
 * "pos 1" (a list of the strongest inputs once read "#1 keys, #0 The, #4 cabinet", like a jumbled ranking).
 */
export const positionLabel = (p) => `pos ${p}`;

/** Does `text` consist of line breaks only ("\n", "\n\n", "\r\n")? */
export const isNewlineOnly = (text) => /^[\r\n]+$/.test(text == null ? "" : String(text));

/**
 * Does token i start a new line in a row that breaks at newlines? A token ending in a newline ends its line, but a
 * run of newline-only tokens ("\n", "\n") stays on that line, each as its glyph, and the line breaks once after the
 * run: a blank line in the text is not a line of its own per "\u21b5".
 * Example: with ["a", "\n", "\n", "b"], only "b" (i = 3) starts a line.
 */
export function breaksBefore(tokens, i) {
  if (i <= 0 || i >= tokens.length) return false;
  const prev = tokens[i - 1] == null ? "" : String(tokens[i - 1]);
  return /\n$/.test(prev) && !isNewlineOnly(tokens[i]);
}

/**
 * Split a display token into parts: {kind: "text"|"space"|"nl"|"tab"|"ctl", text}.
 * Leading spaces become "space" markers, every "\n" a newline marker, every "\t" a tab marker.
 * A zero-width / bidi control character becomes {kind: "ctl", text: <the character itself>, mark: "RLO"}:
 * it is kept in the text (textContent stays the exact token) and its marker is drawn by CSS from `mark`.
 */
export function tokenParts(text) {
  const s = text == null ? "" : String(text);
  const parts = [];
  let i = 0;
  while (i < s.length && s[i] === " ") {
    parts.push({ kind: "space", text: MARK_SPACE });
    i++;
  }
  let buf = "";
  for (; i < s.length; i++) {
    const ch = s[i];
    const mark = INVISIBLE[ch];
    if (mark) {
      if (buf) parts.push({ kind: "text", text: buf });
      buf = "";
      parts.push({ kind: "ctl", text: ch, mark });
    } else if (ch === "\n" || ch === "\t" || ch === "\r") {
      if (buf) parts.push({ kind: "text", text: buf });
      buf = "";
      if (ch === "\n") parts.push({ kind: "nl", text: MARK_NEWLINE });
      else if (ch === "\t") parts.push({ kind: "tab", text: MARK_TAB });
      // "\r" is dropped (shown as part of a following "\n")
    } else buf += ch;
  }
  if (buf) parts.push({ kind: "text", text: buf });
  return parts;
}

/** Fill `el` with the token text and whitespace markers (textContent only). */
export function fillToken(el, text) {
  const parts = tokenParts(text);
  if (parts.length === 1 && parts[0].kind === "text") {
    el.textContent = parts[0].text;
    return el;
  }
  el.textContent = "";
  // a token that is whitespace only ("\n", " ", "\n\n") is its markers: they are drawn at full strength
  // (.ew-ws-solo), not faint like the marker of a leading space in " keys" (a dimmed "\u21b5" once read 1.7 : 1)
  const solo = parts.length > 0 && parts.every((p) => p.kind === "space" || p.kind === "nl" || p.kind === "tab");
  for (const p of parts) {
    if (p.kind === "text") {
      el.appendChild(document.createTextNode(p.text));
    } else if (p.kind === "ctl") {
      // The character stays (isolated in its own box, so a bidi override cannot reach the text after
      // it); the visible label comes from CSS `content: attr(data-mark)`, so it is not in textContent.
      const m = document.createElement("span");
      m.className = "ew-ws ew-ws-ctl";
      m.setAttribute("aria-hidden", "true");
      m.dataset.mark = p.mark;
      m.title = `U+${p.text.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")} ${p.mark}`;
      m.textContent = p.text;
      el.appendChild(m);
    } else {
      const m = document.createElement("span");
      m.className = `ew-ws ew-ws-${p.kind}` + (solo ? " ew-ws-solo" : "");
      m.setAttribute("aria-hidden", "true");
      m.textContent = p.text;
      el.appendChild(m);
    }
  }
  return el;
}

/**
 * The min-width (CSS) that gives every token of a column of monospace token cells one width, as wide as its longest
 * display text (markers counted; a wide character as two), at least 2.2em and at most 9em (the cell's max-width): the
 * bars and percentages beside them then line up from layer to layer. Example: columnWidth([",", " and"]) ->
 * "max(2.2em, min(calc(4ch + 6px), 9em))".
 */
export function columnWidth(texts) {
  let n = 1;
  for (const t of texts) {
    let w = 0;
    for (const p of tokenParts(t)) {
      if (p.kind === "ctl") w += 3;
      else for (const ch of p.text) w += ch.codePointAt(0) >= 0x1100 ? 2 : 1;
    }
    if (w > n) n = w;
  }
  return `max(2.2em, min(calc(${n}ch + 6px), 9em))`;
}

/** A visible, readable description of a raw token for tooltips / aria-labels. */
export function describeToken(i, text, raw) {
  const shown = raw != null && raw !== "" ? raw : text;
  return `token ${i}: ${JSON.stringify(shown == null ? "" : String(shown))}`;
}

/**
 * The tooltip row listing a word's raw pieces (views at unit "word", where raw_tokens[i] holds the pieces of word
 * i joined by spaces), or null (skipped by the tooltip) at token level.
 */
export function piecesRow(model, raw, i) {
  const unit = model && typeof model.get === "function" ? model.get("unit") : null;
  return unit === "word" && raw && raw[i] != null ? ["pieces", String(raw[i])] : null;
}

/** A span for one token (used in rows, axes, tooltips). */
export function tokenSpan(text, opts = {}) {
  const span = document.createElement("span");
  span.className = "ew-tok" + (opts.className ? " " + opts.className : "");
  fillToken(span, text);
  if (opts.raw != null) span.title = String(opts.raw);
  return span;
}

const ROLES = new Set(["system", "user", "assistant"]);

/**
 * Chat marks of a token view from its traits: turns ([{role, start, stop}]) and special (uint8 per token).
 * Returns {any, roleAt(i), classOf(i)}: classOf gives " ew-tok-special" for a template special token and
 * " ew-turn-start ew-turn-<role>" for the first token of a turn (CSS draws the role's colour and, in token rows,
 * its name). Example: chatMarks([{role: "user", start: 0, stop: 2}], null, 3).classOf(0) -> " ew-turn-start ew-turn-user".
 */
export function chatMarks(turns, special, n) {
  const starts = new Map();
  const role = new Array(n).fill("");
  for (const t of turns || []) {
    if (!t || !ROLES.has(t.role) || !(t.start >= 0 && t.start < t.stop && t.stop <= n)) continue;
    starts.set(t.start, t.role);
    for (let i = t.start; i < t.stop; i++) role[i] = t.role;
  }
  const dim = special && special.length === n ? special : null;
  return {
    any: starts.size > 0 || !!(dim && dim.some((v) => v)),
    roleAt: (i) => role[i] || "",
    startsTurn: (i) => starts.get(i) || "",
    classOf(i) {
      let c = dim && dim[i] ? " ew-tok-special" : "";
      const r = starts.get(i);
      if (r) c += ` ew-turn-start ew-turn-${r}`;
      return c;
    },
  };
}

/**
 * A row of tokens with roving-tabindex keyboard navigation.
 * opts: {tokens, rawTokens, nInput, marks (chatMarks), onHover(i, el, how) [i = -1 on leave], onCommit(i), focusable(i)}
 * `how` is "mouse" or "focus". Returns {el, spans, setColor(i, rgb|null), setActive(i), focus(i), destroy()}.
 */
export function createTokenRow(opts) {
  const tokens = opts.tokens || [];
  const raw = opts.rawTokens || [];
  const nInput = opts.nInput == null ? tokens.length : opts.nInput;
  const el = document.createElement("div");
  el.className = "ew-tokens" + (opts.className ? " " + opts.className : "");
  el.setAttribute("role", "listbox");
  el.setAttribute("aria-orientation", "horizontal");
  if (opts.label) el.setAttribute("aria-label", opts.label);
  const spans = new Array(tokens.length);
  let active = -1;
  for (let i = 0; i < tokens.length; i++) {
    const s = document.createElement("span");
    s.className = "ew-tok " + (i < nInput ? "ew-tok-prompt" : "ew-tok-gen") + (opts.marks ? opts.marks.classOf(i) : "");
    s.dataset.index = String(i);
    if (opts.marks && opts.marks.startsTurn(i)) s.dataset.turnRole = opts.marks.startsTurn(i);
    s.setAttribute("role", "option");
    s.tabIndex = -1;
    fillToken(s, tokens[i]);
    const r = raw[i] != null ? raw[i] : tokens[i];
    s.title = String(r == null ? "" : r);
    s.setAttribute("aria-label", describeToken(i, tokens[i], raw[i]) + (i < nInput ? " (prompt)" : " (generated)"));
    spans[i] = s;
    el.appendChild(s);
  }
  if (spans.length) {
    spans[0].tabIndex = 0;
    active = 0;
  }
  const idxOf = (t) => {
    while (t && t !== el) {
      if (t.dataset && t.dataset.index !== undefined && t.parentNode === el) return Number(t.dataset.index);
      t = t.parentNode;
    }
    return -1;
  };
  const setActive = (i) => {
    if (i < 0 || i >= spans.length) return;
    if (active >= 0 && spans[active]) spans[active].tabIndex = -1;
    active = i;
    spans[i].tabIndex = 0;
  };
  const focus = (i) => {
    if (i < 0 || i >= spans.length) return;
    setActive(i);
    spans[i].focus();
  };
  let hovered = -1;
  const onOver = (ev) => {
    const i = idxOf(ev.target);
    if (i === hovered) return;
    hovered = i;
    if (i >= 0 && opts.onHover) opts.onHover(i, spans[i], "mouse", ev);
  };
  const onMove = (ev) => {
    if (hovered >= 0 && opts.onMove) opts.onMove(hovered, spans[hovered], ev);
  };
  const onLeave = () => {
    hovered = -1;
    if (opts.onHover) opts.onHover(-1, null, "mouse");
  };
  const onClick = (ev) => {
    const i = idxOf(ev.target);
    if (i < 0) return;
    setActive(i);
    if (opts.onCommit) opts.onCommit(i, spans[i]);
  };
  const onFocusIn = (ev) => {
    const i = idxOf(ev.target);
    if (i < 0) return;
    setActive(i);
    if (opts.onHover) opts.onHover(i, spans[i], "focus");
  };
  const onFocusOut = (ev) => {
    if (ev.relatedTarget && el.contains(ev.relatedTarget)) return;
    if (opts.onHover) opts.onHover(-1, null, "focus");
  };
  const onKey = (ev) => {
    const i = idxOf(ev.target);
    if (i < 0) return;
    let j = -1;
    switch (ev.key) {
      case "ArrowRight":
      case "ArrowDown":
        j = Math.min(spans.length - 1, i + 1);
        break;
      case "ArrowLeft":
      case "ArrowUp":
        j = Math.max(0, i - 1);
        break;
      case "Home":
        j = 0;
        break;
      case "End":
        j = spans.length - 1;
        break;
      case "Enter":
      case " ":
        if (ev.shiftKey || ev.ctrlKey || ev.altKey || ev.metaKey) return; // Shift+Enter: the host's (run the cell)
        ev.preventDefault();
        if (opts.onCommit) opts.onCommit(i, spans[i]);
        return;
      case "Escape":
        if (opts.onEscape) opts.onEscape();
        return;
      default:
        return;
    }
    ev.preventDefault();
    focus(j);
  };
  el.addEventListener("mouseover", onOver);
  el.addEventListener("mousemove", onMove);
  el.addEventListener("mouseleave", onLeave);
  el.addEventListener("click", onClick);
  el.addEventListener("focusin", onFocusIn);
  el.addEventListener("focusout", onFocusOut);
  el.addEventListener("keydown", onKey);
  const setColor = (i, rgb) => {
    const s = spans[i];
    if (!s) return;
    if (rgb) {
      s.style.backgroundColor = css(rgb);
      s.style.color = textColorFor(rgb);
      s.classList.add("ew-colored");
    } else {
      s.style.backgroundColor = "";
      s.style.color = "";
      s.classList.remove("ew-colored");
    }
  };
  return {
    el,
    spans,
    setColor,
    setActive,
    focus,
    get active() {
      return active;
    },
    destroy() {
      el.remove();
    },
  };
}
