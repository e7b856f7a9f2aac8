// NeuronHeatmap: neurons x tokens, diverging scale centred on 0, every column labelled with its token (in the same
// scroller as the grid, so labels and columns line up). exclude_first: the first token (the attention sink) is left
// out of the scale; clip_percentile: the limit is that percentile of |v| (not the largest); values beyond the scale
// are drawn at its ends and the legend says how many. focus_token: a column
// scrolled into view and outlined. Hover shows the value; click / Enter selects a neuron.
import { decodeArray } from "./lib/arrays.js";
import { divergingScale, legend, formatNumber, formatCompact } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { rowLabels, tokenAxis } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";
import { piecesRow } from "./lib/tokens.js";

/**
 * The scale's limit over columns from `first` on of a row-major (n x T) array: the largest |v|, or with `percentile`
 * (50..100) the smallest |v| that at least that share of them do not exceed (numpy's "inverted_cdf" percentile).
 * @example scaleLimit(Float32Array.of(1, -4, 2, 3), 2, 0, 50) // 2
 */
export function scaleLimit(data, T, first = 0, percentile = null) {
  if (percentile == null) {
    let m = 0;
    for (let i = 0; i < data.length; i++) if (i % T >= first) m = Math.max(m, Math.abs(data[i]));
    return m;
  }
  const abs = [];
  for (let i = 0; i < data.length; i++) if (i % T >= first) abs.push(Math.abs(data[i]));
  if (!abs.length) return 0;
  const sorted = Float64Array.from(abs).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1))];
}

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const a = decodeArray(model.get("activations"), "activations");
  if (a.empty || a.shape.length !== 2) {
    hint(body, "No activations to show.");
    return {};
  }
  const [Nn, T] = a.shape;
  const given = get(model, "neuron_labels", []);
  const labels = Array.from({ length: Nn }, (_, i) => (given[i] != null ? String(given[i]) : `neuron ${i}`));
  const excludeFirst = Boolean(get(model, "exclude_first", true)) && T > 1;
  const pct = get(model, "clip_percentile", null);
  const percentile = typeof pct === "number" && pct >= 50 && pct <= 100 ? pct : null;
  const limit = scaleLimit(a.data, T, excludeFirst ? 1 : 0, percentile);
  const full = scaleLimit(a.data, T, 0);
  const scale = divergingScale(limit, ctx.theme);
  const m = scale.domain[1];
  const val = (n, t) => a.data[n * T + t];
  const clamp = (v) => Math.max(-m, Math.min(m, v));
  const mode = gridMode(Nn, T);
  const cellW = mode === "dom" ? 34 : 10;
  const cellH = mode === "dom" ? 20 : 12;
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  const clipped = (v) => Math.abs(v) > m;

  const axis = tokenAxis(Array.from({ length: T }, (_, i) => tok(i)), raw, cellW, {
    side: "top",
    vertical: true,
    kindOf: (i) => (i < nInput ? "ew-input" : "ew-output") + marks.classOf(i),
  });
  axis.el.classList.add("ew-heat-axis");
  let hovered = -1;
  const selected = () => {
    const s = Number(get(model, "selected_neuron", -1));
    return s >= 0 && s < Nn ? s : -1;
  };

  const rows = rowLabels(labels, cellH);
  const grid = createGrid({
    nRows: Nn,
    nCols: T,
    cellW,
    cellH,
    mode,
    ariaLabel: "activation per neuron and token",
    color: (n, t) => scale(clamp(val(n, t))),
    text: mode === "dom" ? (n, t) => formatCompact(val(n, t), 5, 2) : null, // fits a 34 px cell; full value in tooltip / aria-label
    label: (n, t) => `${labels[n]}, token ${t} ${JSON.stringify(tok(t))}: ${formatNumber(val(n, t))}`,
    onHover(n, t, how, ev) {
      if (n < 0) {
        hovered = -1;
        rows.setActive(-1);
        axis.setActive(-1);
        return tooltip.hide();
      }
      hovered = n;
      rows.setActive(n);
      axis.setActive(t);
      const lines = [labels[n], { label: `token ${t}`, token: tok(t) }, piecesRow(model, raw, t), ["activation", formatNumber(val(n, t))]];
      if (clipped(val(n, t))) lines.push(`beyond the scale (\u00b1${formatNumber(m)}): drawn at its end`);
      tooltip.show(lines, how === "focus" ? grid.anchor(n, t) : ev);
    },
    onCommit(n) {
      commit(model, "selected_neuron", selected() === n ? -1 : n);
    },
  });
  // two flex lines (corner + token labels, row labels + cells) rather than one CSS grid: a sticky grid item is held
  // inside its own grid column, so the row labels would scroll away; a flex item sticks across the whole scroller
  const g = document.createElement("div");
  g.className = "ew-heat";
  g.style.width = "max-content";
  const width = `calc(${Math.max(...labels.map((l) => l.length), 2)}ch + 12px)`;
  rows.el.style.width = width;
  rows.el.style.flex = "none";
  const corner = document.createElement("div");
  corner.className = "ew-heat-corner ew-rowlabels ew-sticky-col";
  corner.style.width = width;
  corner.style.flex = "none";
  const line1 = document.createElement("div");
  line1.style.display = "flex";
  line1.style.alignItems = "flex-end";
  line1.appendChild(corner);
  line1.appendChild(axis.el);
  const line2 = document.createElement("div");
  line2.style.display = "flex";
  line2.appendChild(rows.el);
  const cells = document.createElement("div");
  cells.className = "ew-heat-cells";
  cells.appendChild(grid.el);
  line2.appendChild(cells);
  g.appendChild(line1);
  g.appendChild(line2);
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(g);
  body.appendChild(scroll);

  const focus = Number(get(model, "focus_token", -1));
  if (focus >= 0 && focus < T) {
    axis.spans[focus].classList.add("ew-heat-focus");
    const mark = document.createElement("div");
    mark.className = "ew-heat-focus-col";
    mark.style.left = `${focus * cellW}px`;
    mark.style.width = `${cellW}px`;
    cells.appendChild(mark);
    // centre the named column once laid out (the scroller's width is known then)
    const centre = () => {
      scroll.scrollLeft = Math.max(0, rows.el.offsetWidth + focus * cellW + cellW / 2 - scroll.clientWidth / 2);
    };
    centre();
    if (typeof requestAnimationFrame === "function") requestAnimationFrame(centre);
  }
  const notes = [];
  if (excludeFirst) notes.push(`first token ${JSON.stringify(tok(0))} set aside from the scale`);
  let beyond = 0;
  for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i]) > m) beyond++;
  if (percentile != null) notes.push(`scale clipped at the ${formatNumber(percentile)}th percentile of |activation|`);
  if (full > m) notes.push(`${beyond} of ${a.data.length} cells beyond \u00b1${formatNumber(m)} (up to ${formatNumber(full)}) drawn at the ends`);
  const lg = legend(scale, { label: "activation", note: notes.join("; ") || undefined });
  lg.dataset.limit = String(m);
  lg.dataset.beyond = String(beyond);
  if (notes.length) {
    const n = document.createElement("span");
    n.className = "ew-legend-note";
    n.textContent = notes.join("; ");
    lg.appendChild(n);
  }
  ctx.setLegend(lg);

  const syncSelected = () => {
    const s = selected();
    rows.spans.forEach((sp, i) => sp.classList.toggle("ew-selected", i === s));
  };
  syncSelected();
  void hovered;
  return { grid, onTrait: { selected_neuron: syncSelected } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "neuron_heatmap",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "activations", "neuron_labels", "exclude_first", "focus_token", "clip_percentile"],
    localTraits: ["selected_neuron"],
    build,
  });
}

export default { render };
