// The explorer's panels that read the token row itself: a panel frame ([data-panel=NAME], a heading naming the shown
// token), input saliency (the strongest inputs of the shown token), factors and top neurons, attention rows.
// Every value element carries data-value (the number, unrounded) for scripts and tests. Text via textContent only.
import { fillToken, tokenParts, positionLabel } from "./tokens.js";
import { css, formatNumber, formatPercent, factorColor } from "./colors.js";

const clamp01 = (frac) => Math.max(0, Math.min(1, Number.isFinite(frac) ? frac : 0));

/**
 * A bar of `frac` (0..1) of its track, in `rgb` (default: the accent colour). The fill spans the track and paints
 * its first `frac` (a gradient stop from a custom property): rewriting it on a hover repaints the bar and lays
 * nothing out (a width would relayout the line, a transform would make every bar a layer of its own).
 */
export function bar(frac, rgb) {
  const track = document.createElement("span");
  track.className = "ew-ex-track";
  const fill = document.createElement("span");
  fill.className = "ew-ex-bar";
  setBar(fill, frac, rgb);
  track.appendChild(fill);
  return track;
}

/** Rewrite a bar's fill (from bar()): its fraction and colour, only where they changed. */
export function setBar(fill, frac, rgb) {
  const f = `${(100 * clamp01(frac)).toFixed(1)}%`;
  if (fill.__ewFrac !== f) {
    fill.__ewFrac = f;
    fill.style.setProperty("--ew-frac", f);
  }
  const bg = rgb ? css(rgb) : "";
  if (fill.__ewBg !== bg) {
    fill.__ewBg = bg;
    if (bg) fill.style.setProperty("--ew-fill", bg);
    else fill.style.removeProperty("--ew-fill");
  }
}

/** Set an element's text, rewriting its one text node in place when it has one (no node removed or added). */
export function setText(el, text) {
  const s = String(text);
  const t = el.firstChild;
  if (t && t.nodeType === 3 && t === el.lastChild) {
    if (t.data !== s) t.data = s;
  } else el.textContent = s;
}

/**
 * Set a token's text (fillToken's markers), in place: when the new text splits into parts of the same kinds as the
 * old one (e.g. " w12" -> " w7", a space marker and a text), only the text nodes are rewritten.
 */
export function setToken(el, text) {
  const s = text == null ? "" : String(text);
  if (el.__ewTok === s) return;
  const parts = tokenParts(s);
  const kinds = parts.map((p) => p.kind).join();
  const nodes = el.childNodes;
  if (el.__ewKinds === kinds && nodes.length === parts.length && !kinds.includes("ctl")) {
    parts.forEach((p, i) => {
      const t = p.kind === "text" ? nodes[i] : nodes[i].firstChild;
      if (t && t.nodeType === 3) {
        if (t.data !== p.text) t.data = p.text;
      } else if (p.kind === "text") el.replaceChild(document.createTextNode(p.text), nodes[i]);
      else nodes[i].textContent = p.text;
    });
  } else fillToken(el, s);
  el.__ewTok = s;
  el.__ewKinds = kinds;
  // (a text that may not fit its max-width clips, with an ellipsis: explorer_styles.js)
  let w = 0;
  for (const ch of s) w += ch.codePointAt(0) >= 0x1100 ? 2 : 1; // (wide: CJK, emoji)
  const clip = w > CLIP_CHARS;
  if (clip !== el.classList.contains("ew-tok-clip")) el.classList.toggle("ew-tok-clip", clip);
}

const CLIP_CHARS = 10; // the narrowest max-width of a panel's token is 9em: 10 narrow characters always fit

/** A span showing a token's text (markers for whitespace). */
export function tok(text, className = "") {
  const s = document.createElement("span");
  s.className = `ew-tok${className ? ` ${className}` : ""}`;
  setToken(s, text);
  return s;
}

/** A number element: formatted text, the exact value in data-value. */
export function num(v, text) {
  const s = document.createElement("span");
  s.className = "ew-ex-val";
  setNum(s, v, text);
  return s;
}

/** Rewrite a number element (from num()) in place. */
export function setNum(el, v, text) {
  const value = String(v);
  if (el.dataset.value !== value) el.dataset.value = value;
  setText(el, text == null ? formatNumber(v) : text);
}

/** A muted key (the strings of item()). */
export function key(text) {
  const k = document.createElement("span");
  k.className = "ew-ex-key";
  k.textContent = text;
  return k;
}

/** One list line: children in order (strings become muted keys). */
export function item(children, attrs = {}) {
  const d = document.createElement("div");
  d.className = "ew-ex-item";
  setData(d, attrs);
  for (const c of children) {
    if (c == null) continue;
    d.appendChild(typeof c === "string" ? key(c) : c);
  }
  return d;
}

/** Set data-* attributes, only those that changed. */
export function setData(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) if (el.dataset[k] !== String(v)) el.dataset[k] = String(v);
}

/**
 * Put `nodes` (falsy ones dropped) as `parent`'s children, in order; nodes already in place are not moved.
 */
export function fillChildren(parent, nodes) {
  const want = nodes.filter(Boolean);
  const have = parent.childNodes;
  if (have.length === want.length && want.every((node, i) => have[i] === node)) return;
  for (let i = 0; i < want.length; i++) {
    if (have[i] !== want[i]) parent.insertBefore(want[i], have[i] || null);
  }
  while (parent.childNodes.length > want.length) parent.removeChild(parent.lastChild);
}

/**
 * Lines of item()s laid out as one grid (className sets its columns: explorer_styles.js), so that a column is as
 * wide as its widest cell in every line: each item() its own grid let a long label run under its line's bar.
 */
export function rows(className) {
  const el = document.createElement("div");
  el.className = `ew-ex-rows ${className}`;
  return el;
}

export function note(text) {
  const p = document.createElement("div");
  p.className = "ew-hint";
  p.textContent = text;
  return p;
}

/**
 * Lines built once and rewritten on every show: line(i) returns the i-th (made by make() the first time it is needed).
 * A hover then changes text and attributes, it never builds elements.
 */
export function pool(make) {
  const made = [];
  return (i) => made[i] || (made[i] = make(i));
}

/**
 * A panel: <div class="ew-panel" data-panel=name role=region> with a heading, a tools slot and a body.
 * heading(parts): parts are strings or {token: text}; the heading's nodes are reused when the parts have the same
 * kinds as last time (text nodes and token spans rewritten only where they changed), else rebuilt.
 * fill(nodes): the body's children become `nodes`; nodes already in place are not moved (a hover then rewrites
 * only text and attributes: a detached and re-inserted subtree would be styled and laid out anew).
 */
export function panelFrame(name, label) {
  const el = document.createElement("div");
  el.className = "ew-panel";
  el.dataset.panel = name;
  el.setAttribute("role", "region");
  el.setAttribute("aria-label", label);
  const head = document.createElement("div");
  head.className = "ew-panel-head";
  const title = document.createElement("div");
  title.className = "ew-panel-title";
  title.setAttribute("role", "heading");
  title.setAttribute("aria-level", "3");
  const tools = document.createElement("div");
  tools.className = "ew-panel-tools";
  const body = document.createElement("div");
  body.className = "ew-panel-body";
  head.appendChild(title);
  head.appendChild(tools);
  el.appendChild(head);
  el.appendChild(body);
  let kinds = ""; // the heading's part kinds ("s" text, "t" token), in order
  return {
    el, title, tools, body,
    heading(parts) {
      const k = parts.map((p) => (typeof p === "string" ? "s" : "t")).join("");
      if (k === kinds && title.childNodes.length === parts.length) {
        parts.forEach((p, i) => {
          const node = title.childNodes[i];
          if (typeof p === "string") {
            if (node.data !== p) node.data = p;
          } else {
            setToken(node, p.token);
          }
        });
      } else {
        title.textContent = "";
        for (const p of parts) {
          if (typeof p === "string") title.appendChild(document.createTextNode(p));
          else title.appendChild(tok(p.token, "ew-panel-tok"));
        }
        kinds = k;
      }
    },
    fill(nodes) {
      fillChildren(body, nodes);
    },
  };
}

/** "token 5" + its text, as heading parts. */
export const named = (d, k) => [`${d.unit} ${k} `, { token: d.tokens[k] }];

/**
 * Input saliency. d: {tokens, unit, targets (Int32Array), attributions ({data, shape: [M, T, N]}), methods, causal,
 * method() -> index}. show(k, scale): the strongest inputs of token k (by |attribution|) under the current method.
 */
export function saliencyPanel(d, onMethod) {
  const f = panelFrame("saliency", "input saliency");
  const [M, T, N] = d.attributions.shape;
  const rowOf = new Map();
  Array.from(d.targets).forEach((t, r) => rowOf.set(t, r));
  if (d.methods.length > 1) {
    const select = document.createElement("select");
    select.className = "ew-method";
    select.setAttribute("aria-label", "attribution method");
    for (const m of d.methods) {
      const o = document.createElement("option");
      o.value = m;
      o.textContent = m;
      select.appendChild(o);
    }
    select.addEventListener("change", () => onMethod(select.value));
    f.tools.appendChild(select);
    f.select = select;
  }
  const value = (r, p) => d.attributions.data[(d.method() * T + r) * N + p];
  f.row = (k) => (rowOf.has(k) ? rowOf.get(k) : -1);
  f.value = value;
  const hint = note("");
  const missing = note("");
  const line = pool(() => {
    const parts = { k: key(""), t: tok(""), track: bar(0), v: num(0) };
    parts.el = item([parts.k, parts.t, parts.track, parts.v]);
    return parts;
  });
  f.show = (k, scale) => {
    if (f.select && f.select.value !== d.methods[d.method()]) f.select.value = d.methods[d.method()];
    f.heading(["Input saliency of ", ...named(d, k), ` (${d.methods[d.method()]})`]);
    const r = f.row(k);
    if (r < 0) {
      const t = Array.from(d.targets);
      setText(missing, t.length ? `${d.unit} ${k} is not explained: the attributions explain ${t.length} ${d.unit}s (${t[0]}\u2013${t[t.length - 1]}).` : "No explained tokens.");
      f.fill([missing]);
      return;
    }
    const end = d.causal ? k : N;
    const ranked = [];
    for (let p = 0; p < end && p < N; p++) ranked.push(p);
    ranked.sort((a, b) => Math.abs(value(r, b)) - Math.abs(value(r, a)) || a - b);
    let top = 0;
    for (const p of ranked) top = Math.max(top, Math.abs(value(r, p)));
    setText(hint, `strongest inputs (by |attribution|), of ${ranked.length}`);
    const lines = [hint];
    ranked.slice(0, 8).forEach((p, i) => {
      const v = value(r, p);
      const l = line(i);
      setData(l.el, { position: p });
      setText(l.k, positionLabel(p));
      setToken(l.t, d.tokens[p]);
      setBar(l.track.firstChild, Math.abs(v) / (top || 1), scale ? scale(v) : null);
      setNum(l.v, v);
      lines.push(l.el);
    });
    f.fill(lines);
  };
  return f;
}

/**
 * Factors and neurons. d: {factors ({data, shape: [C, P]}), factorPositions, factorLabels, neuronIds ({shape: [N, K, 2]}),
 * neuronValues}. show(k): the factor values at token k (bars relative to each factor's largest value) and the
 * strongest neurons there.
 */
export function factorsPanel(d) {
  const f = panelFrame("factors", "neuron factors");
  const hasF = !d.factors.empty;
  const [C, P] = hasF ? d.factors.shape : [0, 0];
  const column = new Map();
  Array.from(d.factorPositions.data).forEach((p, j) => column.set(p, j));
  const maxOf = new Float32Array(C);
  for (let c = 0; c < C; c++) for (let j = 0; j < P; j++) maxOf[c] = Math.max(maxOf[c], d.factors.data[c * P + j]);
  const hasN = !d.neuronIds.empty;
  const K = hasN ? d.neuronIds.shape[1] : 0;
  // the explorer's status line names the panel by what it shows ("neurons" when there are no factors)
  f.el.dataset.shows = [hasF ? "factors" : "", hasN ? "neurons" : ""].filter(Boolean).join(", ") || "factors";
  const absent = note("");
  const factorNote = note("bar: the value over the factor's largest value in the text");
  const neuronNote = note(`strongest neurons (raw activation), top ${K}`);
  const color = (c) => factorColor(c, d.theme); // >= 3 : 1 against the background (Okabe-Ito's yellow is 1.2 on white)
  const factorRows = rows("ew-ex-factor-rows");
  const neuronRows = rows("ew-ex-neuron-rows");
  const factor = pool((c) => {
    const sw = document.createElement("span");
    sw.className = "ew-factor-swatch";
    sw.style.background = css(color(c));
    const parts = { track: bar(0, color(c)), v: num(0) };
    parts.el = item([sw, d.factorLabels[c] || `Factor ${c}`, parts.track, parts.v], { factor: c });
    return parts;
  });
  const neuron = pool((j) => {
    const parts = { k: key(""), track: bar(0), v: num(0) };
    parts.el = item([parts.k, parts.track, parts.v], { neuronRank: j });
    return parts;
  });
  f.show = (k) => {
    f.heading([hasF ? "Factors at " : "Top neurons at ", ...named(d, k)]);
    const lines = [];
    if (hasF) {
      const j = column.has(k) ? column.get(k) : -1;
      if (j < 0) {
        setText(absent, `${d.unit} ${k} was not in the factorisation.`);
        lines.push(absent);
      } else {
        const items = [];
        for (let c = 0; c < C; c++) {
          const v = d.factors.data[c * P + j];
          const l = factor(c);
          setBar(l.track.firstChild, v / (maxOf[c] || 1), color(c));
          setNum(l.v, v);
          items.push(l.el);
        }
        fillChildren(factorRows, items);
        lines.push(factorRows, factorNote);
      }
    }
    if (hasN) {
      lines.push(neuronNote);
      const base = k * K;
      let top = 0;
      for (let j = 0; j < K; j++) top = Math.max(top, Math.abs(d.neuronValues.data[base + j]));
      const items = [];
      for (let j = 0; j < K; j++) {
        const layer = d.neuronIds.data[(base + j) * 2];
        const id = d.neuronIds.data[(base + j) * 2 + 1];
        const v = d.neuronValues.data[base + j];
        const l = neuron(j);
        setData(l.el, { layer, neuron: id });
        setText(l.k, `layer ${layer} \u00b7 neuron ${id}`);
        setBar(l.track.firstChild, Math.abs(v) / (top || 1));
        setNum(l.v, v);
        items.push(l.el);
      }
      fillChildren(neuronRows, items);
      lines.push(neuronRows);
    }
    f.fill(lines);
  };
  return f;
}

/**
 * Attention. d: {attentionKeys ({shape: [H, N, K]}, -1 = none), attentionValues, headLabels, attentionLabel}.
 * A select picks the head (0: the mean over heads); show(k): the keys token k attends to most.
 */
export function attentionPanel(d) {
  const f = panelFrame("attention", "attention");
  const [H, N, K] = d.attentionKeys.shape;
  let head = 0;
  const select = document.createElement("select");
  select.className = "ew-ex-head";
  select.setAttribute("aria-label", "attention head");
  for (let h = 0; h < H; h++) {
    const o = document.createElement("option");
    o.value = String(h);
    o.textContent = d.headLabels[h] || `head ${h}`;
    select.appendChild(o);
  }
  f.tools.appendChild(select);
  let last = 0;
  select.addEventListener("change", () => {
    head = Number(select.value);
    f.show(last);
  });
  const hint = note("the keys it attends to most");
  const line = pool(() => {
    const parts = { k: key(""), t: tok(""), track: bar(0), v: num(0), first: key("first token") };
    parts.el = item([parts.k, parts.t, parts.track, parts.v]);
    return parts;
  });
  f.show = (k) => {
    last = k;
    f.heading(["Attention of ", ...named(d, k), ` (${d.attentionLabel || "one layer"}, ${d.headLabels[head] || ""})`]);
    const lines = [hint];
    const base = (head * N + k) * K;
    for (let j = 0, i = 0; j < K; j++) {
      const at = d.attentionKeys.data[base + j];
      if (at < 0) continue;
      const w = d.attentionValues.data[base + j];
      const l = line(i++);
      setData(l.el, { key: at });
      setText(l.k, positionLabel(at));
      setToken(l.t, d.tokens[at]);
      setBar(l.track.firstChild, w);
      setNum(l.v, w, formatPercent(w));
      if (at === 0 && l.first.parentNode !== l.el) l.el.appendChild(l.first);
      else if (at !== 0 && l.first.parentNode === l.el) l.el.removeChild(l.first);
      lines.push(l.el);
    }
    f.fill(lines);
  };
  return f;
}
