// The explorer's panels that read the token row itself: a panel frame ([data-panel=NAME], a heading naming the shown
// token), input saliency (the strongest inputs of the shown token), factors and top neurons, attention rows.
// Every value element carries data-value (the number, unrounded) for scripts and tests. Text via textContent only.
import { fillToken } from "./tokens.js";
import { CATEGORICAL, css, formatNumber } from "./colors.js";

/** A bar of `frac` (0..1) of its track, in `rgb` (default: the accent colour). */
export function bar(frac, rgb) {
  const track = document.createElement("span");
  track.className = "ew-ex-track";
  const fill = document.createElement("span");
  fill.className = "ew-ex-bar";
  fill.style.width = `${Math.max(0, Math.min(100, 100 * (Number.isFinite(frac) ? frac : 0))).toFixed(1)}%`;
  if (rgb) fill.style.background = css(rgb);
  track.appendChild(fill);
  return track;
}

/** A span showing a token's text (markers for whitespace). */
export function tok(text, className = "") {
  const s = document.createElement("span");
  s.className = `ew-tok${className ? ` ${className}` : ""}`;
  fillToken(s, text == null ? "" : String(text));
  return s;
}

/** A number element: formatted text, the exact value in data-value. */
export function num(v, text) {
  const s = document.createElement("span");
  s.className = "ew-ex-val";
  s.dataset.value = String(v);
  s.textContent = text == null ? formatNumber(v) : text;
  return s;
}

/** One list line: children in order (strings become muted keys). */
export function item(children, attrs = {}) {
  const d = document.createElement("div");
  d.className = "ew-ex-item";
  for (const [k, v] of Object.entries(attrs)) d.dataset[k] = String(v);
  for (const c of children) {
    if (c == null) continue;
    if (typeof c === "string") {
      const k = document.createElement("span");
      k.className = "ew-ex-key";
      k.textContent = c;
      d.appendChild(k);
    } else d.appendChild(c);
  }
  return d;
}

export function note(text) {
  const p = document.createElement("div");
  p.className = "ew-hint";
  p.textContent = text;
  return p;
}

/**
 * A panel: <div class="ew-panel" data-panel=name role=region> with a heading, a tools slot and a body.
 * heading(parts): parts are strings or {token: text}; the heading is rebuilt (textContent / fillToken).
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
  return {
    el, title, tools, body,
    heading(parts) {
      title.textContent = "";
      for (const p of parts) {
        if (typeof p === "string") title.appendChild(document.createTextNode(p));
        else title.appendChild(tok(p.token, "ew-panel-tok"));
      }
    },
    fill(nodes) {
      body.textContent = "";
      for (const node of nodes) if (node) body.appendChild(node);
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
  f.show = (k, scale) => {
    if (f.select) f.select.value = d.methods[d.method()];
    f.heading(["Input saliency of ", ...named(d, k), ` (${d.methods[d.method()]})`]);
    const r = f.row(k);
    if (r < 0) {
      const t = Array.from(d.targets);
      f.fill([note(t.length ? `${d.unit} ${k} is not explained: the attributions explain ${t.length} ${d.unit}s (${t[0]}\u2013${t[t.length - 1]}).` : "No explained tokens.")]);
      return;
    }
    const end = d.causal ? k : N;
    const ranked = [];
    for (let p = 0; p < end && p < N; p++) ranked.push(p);
    ranked.sort((a, b) => Math.abs(value(r, b)) - Math.abs(value(r, a)) || a - b);
    let top = 0;
    for (const p of ranked) top = Math.max(top, Math.abs(value(r, p)));
    const lines = [note(`strongest inputs (by |attribution|), of ${ranked.length}`)];
    for (const p of ranked.slice(0, 8)) {
      const v = value(r, p);
      lines.push(item([`#${p}`, tok(d.tokens[p]), bar(Math.abs(v) / (top || 1), scale ? scale(v) : null), num(v)], { position: p }));
    }
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
  f.show = (k) => {
    f.heading([hasF ? "Factors at " : "Top neurons at ", ...named(d, k)]);
    const lines = [];
    if (hasF) {
      const j = column.has(k) ? column.get(k) : -1;
      if (j < 0) lines.push(note(`${d.unit} ${k} was not in the factorisation.`));
      else {
        for (let c = 0; c < C; c++) {
          const v = d.factors.data[c * P + j];
          const sw = document.createElement("span");
          sw.className = "ew-factor-swatch";
          sw.style.background = css(CATEGORICAL[c % CATEGORICAL.length]);
          lines.push(item([sw, d.factorLabels[c] || `Factor ${c}`, bar(v / (maxOf[c] || 1), CATEGORICAL[c % CATEGORICAL.length]), num(v)], { factor: c }));
        }
        lines.push(note("bar: the value over the factor's largest value in the text"));
      }
    }
    if (hasN) {
      lines.push(note(`strongest neurons (raw activation), top ${K}`));
      const base = k * K;
      let top = 0;
      for (let j = 0; j < K; j++) top = Math.max(top, Math.abs(d.neuronValues.data[base + j]));
      for (let j = 0; j < K; j++) {
        const layer = d.neuronIds.data[(base + j) * 2];
        const neuron = d.neuronIds.data[(base + j) * 2 + 1];
        const v = d.neuronValues.data[base + j];
        lines.push(item([`layer ${layer} \u00b7 neuron ${neuron}`, bar(Math.abs(v) / (top || 1)), num(v)], { neuronRank: j, layer, neuron }));
      }
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
  f.show = (k) => {
    last = k;
    f.heading(["Attention of ", ...named(d, k), ` (${d.attentionLabel || "one layer"}, ${d.headLabels[head] || ""})`]);
    const lines = [note("the keys it attends to most")];
    const base = (head * N + k) * K;
    for (let j = 0; j < K; j++) {
      const key = d.attentionKeys.data[base + j];
      if (key < 0) continue;
      const w = d.attentionValues.data[base + j];
      lines.push(item([`#${key}`, tok(d.tokens[key]), bar(w), num(w, `${formatNumber(w * 100, 3)}%`), key === 0 ? "first token" : null], { key }));
    }
    f.fill(lines);
  };
  return f;
}
