// The explorer's components and features panels, one token each (all precomputed in Python).
// components: the direct logit attribution of token k where the model predicted it (at position k - 1): per layer the
// attention and MLP shares (signed bars on a diverging scale), the logit read after each block (a curve and the
// numbers) and, for the explained tokens, the strongest heads. features: per sparse dictionary, the strongest active
// latents at token k (index, label when known, activation bar). Elements are built once and rewritten in place;
// numbers carry data-value; text only through textContent.
import { divergingScale, css } from "./colors.js";
import { layerName } from "./axis.js";
import { injectStyleSheet } from "./styles.js";
import { panelFrame, named, note, bar, setBar, setText, num, setNum, key, item, rows, pool, setData, fillChildren } from "./panels.js";
// (setBar: the features' unsigned bars; setSigned below: the components' signed ones)

const SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
};
const span = (className, text = "") => {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  return s;
};

/**
 * A signed bar: the track spans [-top, top] with 0 in its middle; the fill paints from 0 to v (right when positive,
 * left when negative), as a left-to-right gradient between --ew-a and --ew-b (so a figure redraws it).
 */
export function setSigned(fill, v, top, rgb) {
  const f = Math.min(1, Math.abs(v) / (top || 1)) * 50;
  const a = `${(v < 0 ? 50 - f : 50).toFixed(1)}%`;
  const b = `${(v < 0 ? 50 : 50 + f).toFixed(1)}%`;
  if (fill.__ewA !== a) fill.style.setProperty("--ew-a", (fill.__ewA = a));
  if (fill.__ewB !== b) fill.style.setProperty("--ew-b", (fill.__ewB = b));
  const bg = rgb ? css(rgb) : "";
  if (fill.__ewBg !== bg) fill.style.setProperty("--ew-fill", (fill.__ewBg = bg));
  fill.dataset.sign = v < 0 ? "neg" : "pos";
}

/**
 * Components. d: {tokens, unit, theme, layerLabels, componentTokens (Int32Array, m), componentAttn / componentMlp
 * ({data, shape: [m, L]}), componentAccumulated ({shape: [m, L + 1]}), componentLogit (Float32Array, m),
 * componentHeadTokens (Int32Array, h), componentHeads ({shape: [h, K, 2]}), componentHeadValues ({shape: [h, K]}),
 * componentNote}. show(k): token k's logit where it was predicted, by layer, and its strongest heads.
 */
export function componentsPanel(d) {
  const f = panelFrame("components", "direct logit attribution");
  const [m, L] = d.componentAttn.shape;
  const rowOf = new Map();
  Array.from(d.componentTokens).forEach((t, i) => rowOf.set(t, i));
  const headRowOf = new Map();
  Array.from(d.componentHeadTokens).forEach((t, i) => headRowOf.set(t, i));
  const K = d.componentHeads.empty ? 0 : d.componentHeads.shape[1];
  const labelOf = (l) => (d.layerLabels && d.layerLabels[l] != null ? String(d.layerLabels[l]) : String(l));
  const summary = note("");
  const missing = note("");
  const legendNote = note("bars: each sublayer's share of the logit (with its biases): right of the middle (orange) raises it, left (blue) lowers it; after: the logit read after the block");
  if (d.componentNote) legendNote.textContent += `. ${d.componentNote}`;
  // the per-layer table: layer | attention | MLP | after
  const table = document.createElement("div");
  table.className = "ew-ex-table ew-ex-dla";
  table.style.gridTemplateColumns = "max-content minmax(40px, 8em) max-content minmax(40px, 8em) max-content max-content";
  for (const h of ["layer", "attention", "", "MLP", "", "after"]) table.appendChild(span("ew-ex-layer ew-ex-colhead", h));
  const lines = [];
  for (let l = 0; l < L; l++) {
    table.appendChild(span("ew-ex-layer", labelOf(l)));
    const line = {};
    for (const part of ["attn", "mlp"]) {
      const track = bar(0);
      track.classList.add("ew-ex-signed");
      const v = num(0);
      setData(v, { layer: l, part });
      table.appendChild(track);
      table.appendChild(v);
      line[part] = { track, v };
    }
    line.acc = num(0);
    line.acc.classList.add("ew-ex-num");
    setData(line.acc, { layer: l, part: "after" });
    table.appendChild(line.acc);
    lines.push(line);
  }
  // the logit read after the embedding and after each block, as a curve
  const W = 160;
  const H = 36;
  const curve = svgEl("svg", { class: "ew-ex-curve", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  const zero = svgEl("line", { x1: 0, x2: W, stroke: "currentColor", "stroke-opacity": 0.3, "stroke-dasharray": "2 2" });
  const path = svgEl("polyline", { fill: "none", stroke: "currentColor", "stroke-width": 1.5 });
  curve.appendChild(zero);
  curve.appendChild(path);
  const curveBox = document.createElement("div");
  curveBox.className = "ew-ex-curve-box";
  const curveLabel = note("");
  curveBox.appendChild(curve);
  curveBox.appendChild(curveLabel);
  const headNote = note("");
  const headRows = rows("ew-ex-neuron-rows ew-ex-head-rows");
  const head = pool(() => {
    const parts = { k: key(""), track: bar(0), v: num(0) };
    parts.track.classList.add("ew-ex-signed");
    parts.el = item([parts.k, parts.track, parts.v]);
    return parts;
  });
  const drawCurve = (r) => {
    const acc = d.componentAccumulated.data.subarray(r * (L + 1), (r + 1) * (L + 1));
    let lo = 0;
    let hi = 0;
    for (const v of acc) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span_ = hi - lo || 1;
    const y = (v) => (H - 3 - ((v - lo) / span_) * (H - 6)).toFixed(1);
    const x = (i) => ((i / Math.max(1, L)) * (W - 4) + 2).toFixed(1);
    path.setAttribute("points", Array.from(acc, (v, i) => `${x(i)},${y(v)}`).join(" "));
    zero.setAttribute("y1", y(0));
    zero.setAttribute("y2", y(0));
    curve.setAttribute("aria-label", `the logit read after the embedding and after each of ${L} blocks: from ${acc[0].toFixed(3)} to ${acc[L].toFixed(3)}`);
  };
  f.show = (k) => {
    const r = rowOf.has(k) ? rowOf.get(k) : -1;
    f.heading(["Components of ", ...named(d, k), ": its logit by layer"]);
    if (r < 0) {
      setText(missing, k === 0 ? `${d.unit} 0 is the first: nothing predicted it.` : `${d.unit} ${k} has no direct logit attribution.`);
      f.fill([missing]);
      return;
    }
    const a = d.componentAttn.data;
    const mm = d.componentMlp.data;
    let top = 0;
    for (let l = 0; l < L; l++) top = Math.max(top, Math.abs(a[r * L + l]), Math.abs(mm[r * L + l]));
    const scale = divergingScale(top, d.theme);
    for (let l = 0; l < L; l++) {
      const line = lines[l];
      for (const [part, src] of [["attn", a], ["mlp", mm]]) {
        const v = src[r * L + l];
        setSigned(line[part].track.firstChild, v, top, scale(v));
        setNum(line[part].v, v);
      }
      setNum(line.acc, d.componentAccumulated.data[r * (L + 1) + l + 1]);
    }
    const logit = d.componentLogit.length > r ? d.componentLogit[r] : d.componentAccumulated.data[r * (L + 1) + L];
    setText(summary, `its logit where it was predicted (after ${d.unit} ${k - 1}): ${logit.toFixed(4)}; after the embedding ${d.componentAccumulated.data[r * (L + 1)].toFixed(4)}`);
    summary.dataset.value = String(logit);
    drawCurve(r);
    setText(curveLabel, `the logit after the embedding and each block (${layerName(labelOf(0))} \u2192 ${layerName(labelOf(L - 1))})`);
    const out = [summary, curveBox, table, legendNote];
    const h = headRowOf.has(k) ? headRowOf.get(k) : -1;
    if (h >= 0 && K) {
      setText(headNote, `strongest heads (by |share|), top ${K}`);
      let hTop = 0;
      for (let j = 0; j < K; j++) hTop = Math.max(hTop, Math.abs(d.componentHeadValues.data[h * K + j]));
      const hs = divergingScale(hTop, d.theme);
      const items = [];
      for (let j = 0; j < K; j++) {
        const layer = d.componentHeads.data[(h * K + j) * 2];
        const hd = d.componentHeads.data[(h * K + j) * 2 + 1];
        const v = d.componentHeadValues.data[h * K + j];
        const l = head(j);
        setData(l.el, { layer, head: hd });
        setText(l.k, `${layerName(labelOf(layer))} \u00b7 head ${hd}`);
        setSigned(l.track.firstChild, v, hTop, hs(v));
        setNum(l.v, v);
        items.push(l.el);
      }
      fillChildren(headRows, items);
      out.push(headNote, headRows);
    } else if (d.componentHeadTokens.length) {
      const t = Array.from(d.componentHeadTokens);
      setText(headNote, `heads: listed for the explained ${d.unit}s (${t.slice(0, 6).join(", ")}${t.length > 6 ? ", \u2026" : ""})`);
      out.push(headNote);
    }
    f.fill(out);
  };
  f.rows = m;
  return f;
}

/**
 * Features. d: {tokens, unit, featureNames, featureIndices ({data, shape: [S, N, K]}, -1 = none), featureValues,
 * featureActive ({shape: [S, N]}), featureLabels (one {latent: label} per dictionary)}. show(k): per dictionary the
 * strongest active latents at token k; bars relative to the dictionary's largest shown activation in the text.
 */
export function featuresPanel(d) {
  const f = panelFrame("features", "sparse dictionary features");
  const [S, N, K] = d.featureIndices.shape;
  const maxOf = new Float32Array(S);
  for (let s = 0; s < S; s++) {
    for (let i = 0; i < N * K; i++) maxOf[s] = Math.max(maxOf[s], Math.abs(d.featureValues.data[s * N * K + i]));
  }
  const blocks = [];
  for (let s = 0; s < S; s++) {
    const title = note("");
    title.classList.add("ew-ex-sae");
    title.dataset.sae = String(s);
    const list = rows("ew-ex-feature-rows");
    list.dataset.sae = String(s);
    const none = note("");
    const line = pool(() => {
      const parts = { k: key(""), label: span("ew-ex-flabel"), track: bar(0), v: num(0) };
      parts.el = item([parts.k, parts.label, parts.track, parts.v]);
      return parts;
    });
    blocks.push({ title, list, none, line });
  }
  const hint = note("bar: the activation over the dictionary's largest shown in the text");
  f.show = (k) => {
    f.heading(["Features at ", ...named(d, k)]);
    const out = [];
    for (let s = 0; s < S; s++) {
      const b = blocks[s];
      const active = d.featureActive.empty ? 0 : d.featureActive.data[s * N + k];
      setText(b.title, `${d.featureNames[s] || `dictionary ${s}`}: ${active} active`);
      b.title.dataset.active = String(active);
      out.push(b.title);
      const labels = d.featureLabels[s] || {};
      const items = [];
      for (let j = 0; j < K; j++) {
        const at = d.featureIndices.data[(s * N + k) * K + j];
        if (at < 0) continue;
        const v = d.featureValues.data[(s * N + k) * K + j];
        const l = b.line(items.length);
        setData(l.el, { sae: s, feature: at });
        setText(l.k, `#${at}`);
        const text = labels[String(at)];
        setText(l.label, text == null ? "\u2013" : String(text));
        l.label.classList.toggle("ew-ex-unlabelled", text == null);
        setBar(l.track.firstChild, Math.abs(v) / (maxOf[s] || 1));
        setNum(l.v, v);
        items.push(l.el);
      }
      if (items.length) {
        fillChildren(b.list, items);
        out.push(b.list);
      } else {
        setText(b.none, `no latent is active at ${d.unit} ${k}.`);
        out.push(b.none);
      }
    }
    out.push(hint);
    f.fill(out);
  };
  return f;
}

const STYLE_ID = "ew-style-explorer-components-v1";

/** Inject these panels' (and the context-mixing panel's, lib/mixing_panel.js) stylesheet once into the document (or the shadow root holding `el`). */
export function injectComponentStyles(el) {
  injectStyleSheet(el, STYLE_ID, COMPONENT_PANELS_CSS);
}

/** The CSS of these panels. */
const COMPONENT_PANELS_CSS = `
.ew-ex-dla { grid-auto-rows: 16px; }
.ew-ex-dla .ew-ex-track { height: 8px; }
.ew-ex-signed .ew-ex-bar { background: linear-gradient(to right, transparent var(--ew-a, 50%), var(--ew-fill, var(--ew-bar)) var(--ew-a, 50%),
  var(--ew-fill, var(--ew-bar)) var(--ew-b, 50%), transparent var(--ew-b, 50%)); }
.ew-ex-signed { border-left: 1px solid transparent; background: linear-gradient(to right, var(--ew-bg2) 49.5%, var(--ew-border) 49.5%, var(--ew-border) 50.5%, var(--ew-bg2) 50.5%); }
.ew-ex-curve-box { display: flex; align-items: center; gap: 8px; margin: 2px 0 4px 0; }
.ew-ex-curve { flex: none; color: var(--ew-accent); }
.ew-ex-feature-rows { grid-template-columns: max-content minmax(0, 14em) minmax(32px, 8em) max-content; }
.ew-ex-flabel { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ew-ex-flabel.ew-ex-unlabelled { color: var(--ew-muted); }
.ew-ex-sae { font-weight: 600; color: var(--ew-fg); margin-top: 4px; }
.ew-ex-mix { overflow-x: auto; max-width: 100%; padding-bottom: 2px; }
.ew-panel[data-panel="mixing"] .ew-panel-body { max-height: 680px; }
.ew-ex-mix-grid { display: grid; grid-template-columns: max-content max-content; width: max-content; color: var(--ew-fg); }
.ew-ex-mix-grid .ew-layer-title { align-self: end; font-size: 11px; color: var(--ew-muted); }
.ew-ex-mix-legend { margin-top: 4px; }
`;
