// The explorer's context-mixing panel: for an explained token k, how its context was mixed, as a compact layers x
// source-tokens heat map (rows = layers, columns = the tokens before k), per layer or rolled out (a select), for the
// method chosen (a select when several were computed). The colours as the ContextMixingView's (attributionScale:
// a strength scale from 0 for the non-negative methods), but alti_logit (signed) always on a diverging scale centred
// on 0. The grid (lib/grid.js) is one tab stop, arrows move its cell; a hover or focus shows layer, source token
// (textContent) and value in the tooltip. Cells carry data-value.
import { attributionScale, divergingScale, legend, formatNumber } from "./colors.js";
import { createGrid } from "./grid.js";
import { extent } from "./arrays.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./axis.js";
import { panelFrame, named, note, setText } from "./panels.js";

const MODES = { layer: "per layer", rolled: "rolled out" };
/** The methods whose values are signed (an update of the logit), shown on a diverging scale centred on 0. */
export const SIGNED_MIXING = new Set(["alti_logit"]);

/** The colour scale of one grid: diverging for a signed method (or any negative value), else from 0 to the largest. */
export function mixingScale(method, lo, hi, theme) {
  return SIGNED_MIXING.has(method) ? divergingScale(Math.max(-lo, hi), theme) : attributionScale(lo, hi, theme);
}

/** A cell's width for k source tokens: wide for a short context (up to 40 px), 16 px from 35 tokens on. */
export function mixingCellWidth(k) {
  return Math.max(16, Math.min(40, Math.floor(560 / Math.max(1, k))));
}

function choice(className, label, entries, onChange) {
  const select = document.createElement("select");
  select.className = className;
  select.setAttribute("aria-label", label);
  for (const [value, text] of entries) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }
  select.addEventListener("change", () => onChange(select.value));
  return select;
}

/**
 * Context mixing. d: {tokens, unit, theme, tooltip, layerLabels, mixingMethods, mixingTargets (Int32Array, T),
 * mixingLayers / mixingRolled ({data, shape: [M, L, T, N]})}. show(k): token k's grid, or why there is none.
 */
export function mixingPanel(d) {
  const f = panelFrame("mixing", "context mixing");
  const [M, L, T, N] = d.mixingLayers.shape;
  const rowOf = new Map();
  Array.from(d.mixingTargets).forEach((t, r) => rowOf.set(t, r));
  const labels = Array.from({ length: L }, (_, l) => (d.layerLabels && d.layerLabels[l] != null ? String(d.layerLabels[l]) : String(l)));
  const tok = (i) => (d.tokens[i] != null ? String(d.tokens[i]) : "");
  let method = 0;
  let mode = "layer";
  let last = 0;
  let drawn = "";
  if (M > 1) {
    f.methodSelect = choice("ew-ex-mix-method", "context-mixing method", d.mixingMethods.map((m, i) => [String(i), m]), (v) => {
      method = Number(v);
      f.show(last);
    });
    f.tools.appendChild(f.methodSelect);
  }
  f.modeSelect = choice("ew-ex-mix-mode", "per layer or rolled out", Object.entries(MODES), (v) => {
    mode = v in MODES ? v : "layer";
    f.show(last);
  });
  f.tools.appendChild(f.modeSelect);
  const missing = note("");
  const slot = document.createElement("div");
  slot.className = "ew-ex-mix";
  const legendSlot = document.createElement("div");
  legendSlot.className = "ew-ex-mix-legend";
  const value = (r, l, j) => (mode === "rolled" ? d.mixingRolled : d.mixingLayers).data[((method * L + l) * T + r) * N + j];

  function draw(k, r) {
    const name = d.mixingMethods[method] || "context mixing";
    const shown = Float32Array.from({ length: L * k }, (_, i) => value(r, Math.floor(i / k), i % k));
    const [lo, hi] = extent(shown);
    const scale = mixingScale(name, Math.min(0, lo), Math.max(0, hi), d.theme);
    const cellW = mixingCellWidth(k);
    const axis = tokenAxis(Array.from({ length: k }, (_, j) => tok(j)), null, cellW, { side: "bottom", vertical: true, height: 40 });
    const rows = rowLabels(labels, 14);
    const grid = createGrid({
      nRows: L,
      nCols: k,
      cellW,
      cellH: 14,
      ariaLabel: `${name} ${MODES[mode]}: layers x source ${d.unit}s of ${d.unit} ${k}`,
      color: (l, j) => scale(value(r, l, j)),
      label: (l, j) => `${layerName(labels[l])}, source ${j} ${JSON.stringify(tok(j))}: ${formatNumber(value(r, l, j))}`,
      onHover(l, j, how, ev) {
        axis.setActive(j);
        rows.setActive(l);
        if (l < 0) return d.tooltip.hide();
        d.tooltip.show([layerName(labels[l]), { label: `source ${j}`, token: tok(j) }, { label: `target ${k}`, token: tok(k) },
          [`${name} (${MODES[mode]})`, formatNumber(value(r, l, j))]], how === "focus" ? grid.anchor(l, j) : ev);
      },
    });
    if (grid.cellElement) for (let l = 0; l < L; l++) for (let j = 0; j < k; j++) {
      const c = grid.cellElement(l, j);
      if (c) c.dataset.value = String(value(r, l, j));
    }
    const g = document.createElement("div");
    g.className = "ew-ex-mix-grid";
    g.appendChild(axisTitle("layer \u2193", { className: "ew-layer-title" }));
    g.appendChild(document.createElement("div"));
    g.appendChild(rows.el);
    g.appendChild(grid.el);
    g.appendChild(document.createElement("div"));
    g.appendChild(axis.el);
    slot.textContent = "";
    slot.appendChild(g);
    slot.dataset.target = String(k);
    slot.dataset.method = name;
    slot.dataset.mode = mode;
    legendSlot.textContent = "";
    legendSlot.appendChild(legend(scale, { label: `${name} (${MODES[mode]}) \u2192 ${d.unit} ${k}` }));
  }

  f.show = (k) => {
    last = k;
    const r = rowOf.has(k) ? rowOf.get(k) : -1;
    const name = d.mixingMethods[method] || "context mixing";
    f.heading(["Context mixing of ", ...named(d, k), ` (${name}, ${MODES[mode]})`]);
    if (r < 0 || k < 1) {
      const t = Array.from(d.mixingTargets);
      setText(missing, r < 0 ? `${d.unit} ${k} is not explained: context mixing explains ${t.length} ${d.unit}s (${t.slice(0, 8).join(", ")}${t.length > 8 ? ", \u2026" : ""}).` : `${d.unit} 0 has no context before it.`);
      f.fill([missing]);
      drawn = "";
      return;
    }
    const key = `${k}|${method}|${mode}`;
    if (key !== drawn) {
      draw(k, r);
      drawn = key;
    }
    f.fill([slot, legendSlot]);
  };
  return f;
}
