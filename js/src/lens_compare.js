// LensComparison: one rank grid per lens (logit lens, tuned lens, ...), stacked on the same columns.
// ranks[i, l, p] = rank of token p+1 under lens i at layer l, position p (optional metrics of the same shape).
// One colour scale for every lens (its domain covers all lenses), one metric switcher, linked hover: hovering
// (or focusing) a cell marks the same (layer, position) in every grid and the tooltip lists each lens's value.
// Left of each grid a summary per layer (computed in Python): mean KL to the final layer and share of rank-1 cells.
import { decodeArray } from "./lib/arrays.js";
import { formatNumber } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels, layerName } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";
import { readMetrics, availableMetrics, pickMetric, metricScale, metricLegend, cellText, valueText, metricSwitcher, metricTable, METRIC_INFO } from "./lib/metrics.js";

/** The (n_lenses, n_layers) summary array `name`, or null. */
function readSummary(model, name, N, L) {
  const a = decodeArray(model.get(name), name);
  return !a.empty && a.shape.length === 2 && a.shape[0] === N && a.shape[1] === L ? a : null;
}

/** One small bar with its number: `frac` in [0, 1] of the width, `text` written over it. */
function bar(frac, text, title) {
  const s = document.createElement("span");
  s.className = "ew-sbar";
  s.title = title;
  const fill = document.createElement("span");
  fill.className = "ew-sbar-fill";
  fill.style.width = `${(100 * Math.max(0, Math.min(1, frac))).toFixed(1)}%`;
  const val = document.createElement("span");
  val.className = "ew-sbar-val";
  val.textContent = text;
  s.appendChild(fill);
  s.appendChild(val);
  return s;
}

/** The per-layer summary of lens i: rows of [mean KL bar][top-1 bar], each cellH high. */
function summaryColumn(i, L, cellH, meanKl, klMax, top1, labels) {
  const el = document.createElement("div");
  el.className = "ew-summary";
  el.setAttribute("aria-hidden", "true");
  const rows = [];
  for (let l = 0; l < L; l++) {
    const row = document.createElement("div");
    row.className = "ew-summary-row";
    row.style.height = `${cellH}px`;
    if (meanKl) {
      const v = meanKl.data[i * L + l];
      row.appendChild(bar(v / klMax, formatNumber(v, 2), `${labels[l]}: mean KL to the final layer ${formatNumber(v, 4)} nats`));
    }
    const t = top1.data[i * L + l];
    row.appendChild(bar(t, `${Math.round(t * 100)}%`, `${labels[l]}: next token ranked 1 at ${formatNumber(t * 100, 3)}% of positions`));
    el.appendChild(row);
    rows.push(row);
  }
  let active = -1;
  const setActive = (l) => {
    if (active >= 0 && rows[active]) rows[active].classList.remove("ew-active");
    active = l;
    if (l >= 0 && rows[l]) rows[l].classList.add("ew-active");
  };
  return { el, rows, setActive };
}

function summaryHead(meanKl) {
  const el = document.createElement("div");
  el.className = "ew-summary-head";
  const add = (text, title) => {
    const s = document.createElement("span");
    s.textContent = text;
    s.title = title;
    el.appendChild(s);
  };
  if (meanKl) add("mean KL", "mean KL(p_final \u2016 p_layer) over the positions, nats");
  add("top-1", "share of positions where the next token is ranked 1");
  return el;
}

/** Marks one cell of a grid without touching its own hover / selection: a class (DOM) or a box (canvas). */
function linkedMark(grid) {
  let cur = null;
  let box = null;
  if (grid.mode === "canvas") {
    box = document.createElement("div");
    box.className = "ew-grid-linked";
    box.hidden = true;
    box.style.width = `${grid.cellW}px`;
    box.style.height = `${grid.cellH}px`;
    grid.el.appendChild(box);
  }
  return (l, p) => {
    if (box) {
      box.hidden = l < 0;
      if (l >= 0) box.style.transform = `translate(${p * grid.cellW}px, ${l * grid.cellH}px)`;
      return;
    }
    if (cur) cur.classList.remove("ew-linked");
    cur = l >= 0 ? grid.cellElement(l, p) : null;
    if (cur) cur.classList.add("ew-linked");
  };
}

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const ranks = decodeArray(model.get("ranks"), "ranks");
  if (ranks.empty || ranks.shape.length !== 3) {
    hint(body, "No ranks to show.");
    return {};
  }
  const [N, L, P] = ranks.shape;
  const givenNames = get(model, "lens_names", []);
  const names = Array.from({ length: N }, (_, i) => (givenNames[i] != null ? String(givenNames[i]) : `lens ${i}`));
  const givenLabels = get(model, "layer_labels", []);
  const labels = Array.from({ length: L }, (_, i) => (givenLabels[i] != null ? String(givenLabels[i]) : `layer ${i}`));
  const arrays = readMetrics(model, [N, L, P]);
  const metrics = availableMetrics(arrays);
  const scales = {};
  // one scale per metric over every lens, so that equal colours mean equal values across the grids
  const scaleOf = (m) => scales[m] || (scales[m] = metricScale(m, arrays[m].data, ctx.theme));
  let metric = pickMetric(get(model, "metric", "rank"), metrics);
  const top1 = readSummary(model, "summary_top1", N, L);
  const meanKl = readSummary(model, "summary_mean_kl", N, L);
  let klMax = 0;
  if (meanKl) for (const v of meanKl.data) if (v > klMax) klMax = v;
  klMax = klMax > 0 ? klMax : 1;

  const mode = gridMode(N * L, P); // bounds the DOM cells of all grids together
  const cellW = mode === "dom" ? 44 : 14;
  const cellH = mode === "dom" ? 22 : 14;
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  const rawOf = (i) => (raw[i] != null ? String(raw[i]) : tok(i));
  const valueAt = (m, i, l, p) => arrays[m].data[(i * L + l) * P + p];
  const kindOf = (i) => (i < nInput ? "ew-tok-prompt" : "ew-tok-gen") + marks.classOf(i);
  const vertical = mode === "canvas";
  const top = tokenAxis(Array.from({ length: P }, (_, p) => tok(p + 1)), Array.from({ length: P }, (_, p) => rawOf(p + 1)), cellW, { side: "top", vertical, kindOf: (p) => kindOf(p + 1) });
  const bottom = tokenAxis(Array.from({ length: P }, (_, p) => tok(p)), Array.from({ length: P }, (_, p) => rawOf(p)), cellW, { side: "bottom", vertical, kindOf });

  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  const g = document.createElement("div");
  g.className = "ew-lens-grids";
  g.style.display = "grid";
  g.style.gridTemplateColumns = "max-content max-content max-content"; // labels | summary | grid: same columns for every lens
  g.style.width = "max-content"; // the sticky layer labels may travel the whole width
  g.style.alignItems = "stretch";
  const add = (...nodes) => nodes.forEach((n) => g.appendChild(n || document.createElement("div")));
  const title = (text, cls = "ew-axis-title") => {
    const d = document.createElement("div");
    d.className = cls;
    d.textContent = text;
    return d;
  };
  const topTitle = title("output \u2192");
  topTitle.style.alignSelf = "end";
  add(topTitle, null, top.el);

  const lenses = [];
  const setActive = (l, p) => {
    top.setActive(p);
    bottom.setActive(p);
    for (const lens of lenses) {
      lens.mark(l, p);
      lens.rows.setActive(l);
      if (lens.summary) lens.summary.setActive(l);
    }
  };
  // every lens's values at (l, p): a table, one row per lens, the current metric first
  const tooltipLines = (l, p) => [layerName(labels[l]), ["position", p], { label: "input", token: tok(p) }, { label: "target", token: tok(p + 1) },
    metricTable(names, metrics, metric, (m, i) => valueAt(m, i, l, p))];
  for (let i = 0; i < N; i++) {
    const describe = (l, p) => {
      const values = metrics.map((m) => `${METRIC_INFO[m].key} ${valueText(m, valueAt(m, i, l, p))}`).join(", ");
      return `${names[i]}, ${labels[l]}, position ${p}: ${JSON.stringify(tok(p))} \u2192 ${JSON.stringify(tok(p + 1))}, ${values}`;
    };
    const grid = createGrid({
      nRows: L,
      nCols: P,
      cellW,
      cellH,
      mode,
      ariaLabel: `${names[i]}: the next token per layer and position`,
      color: (l, p) => scaleOf(metric)(valueAt(metric, i, l, p)),
      text: mode === "dom" ? (l, p) => cellText(metric, valueAt(metric, i, l, p)) : null,
      label: describe,
      onHover(l, p, how, ev) {
        if (l < 0) {
          tooltip.hide();
          setActive(-1, -1);
          return;
        }
        setActive(l, p);
        tooltip.show([`lens: ${names[i]}`, ...tooltipLines(l, p)], how === "focus" ? grid.anchor(l, p) : ev);
      },
      onCommit(l, p) {
        const cur = get(model, "selected_cell", []);
        const same = Array.isArray(cur) && cur.length === 2 && cur[0] === l && cur[1] === p;
        commit(model, "selected_cell", same ? [] : [l, p]);
      },
    });
    grid.el.dataset.lens = String(i);
    const rows = rowLabels(labels, cellH);
    const summary = top1 ? summaryColumn(i, L, cellH, meanKl, klMax, top1, labels) : null;
    add(title(names[i], "ew-lens-name"), top1 ? summaryHead(meanKl) : null, null);
    add(rows.el, summary && summary.el, grid.el);
    lenses.push({ grid, rows, summary, mark: linkedMark(grid) });
  }
  add(title("input \u2192"), null, bottom.el);
  wrap.appendChild(g);
  body.appendChild(wrap);

  const switcher = metrics.length > 1 ? metricSwitcher(metrics, metric, (m) => {
    show(m);
    if (get(model, "metric", "rank") !== m) commit(model, "metric", m);
  }) : null;
  if (switcher) controls.appendChild(switcher.el);
  const show = (m) => {
    const next = pickMetric(m, metrics);
    if (switcher) switcher.set(next);
    if (next === metric) return;
    metric = next;
    ctx.setLegend(metricLegend(metric, scaleOf(metric)));
    for (const lens of lenses) lens.grid.refresh();
    tooltip.hide();
  };
  ctx.setLegend(metricLegend(metric, scaleOf(metric)));

  const syncSelected = () => {
    const sel = get(model, "selected_cell", []);
    const ok = Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < P;
    for (const lens of lenses) lens.grid.setSelected(ok ? sel[0] : -1, ok ? sel[1] : -1);
  };
  syncSelected();
  return { grids: lenses.map((x) => x.grid), onTrait: { selected_cell: syncSelected, metric: () => show(get(model, "metric", "rank")) } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "lens_compare",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "lens_names", "layer_labels", "ranks", "target_probs", "kl_to_final",
      "entropy", "summary_mean_kl", "summary_top1"],
    localTraits: ["selected_cell", "metric"],
    build,
  });
}

export default { render };
