// RankGrid: rows = layers (0 at top), columns = positions. Cell [l, p] = rank of token p+1
// predicted at position p by layer l. Input tokens along the bottom, output tokens on top.
// Optional metrics of the same shape (target_probs, kl_to_final, entropy): a switcher recolours the grid in the
// browser and writes `metric` back. Optional first_layer (n_positions,): the first layer from which the next
// token stays in the top first_layer_k (-1 = never), drawn as a row under the grid and a mark on that cell.
import { decodeArray, at } from "./lib/arrays.js";
import { formatNumber, formatPercent } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits } from "./lib/model.js";
import { piecesRow } from "./lib/tokens.js";
import { readMetrics, availableMetrics, pickMetric, metricScale, metricLegend, cellText, valueText, metricRows, metricSwitcher, METRIC_INFO } from "./lib/metrics.js";

function layerLabelsFor(model, n) {
  const given = get(model, "layer_labels", []);
  return Array.from({ length: n }, (_, i) => (given[i] != null ? String(given[i]) : `layer ${i}`));
}

/** first_layer as an array of P layer indices (-1 = never), or null when absent / malformed. */
function readFirstLayer(model, L, P) {
  const f = decodeArray(model.get("first_layer"), "first_layer");
  if (f.empty || f.shape.length !== 1 || f.shape[0] !== P) return null;
  return Array.from(f.data, (v) => (v >= 0 && v < L ? v : -1));
}

/** The "found at (top k)" row: one label per column, each cellW wide. */
function foundRow(first, labels, cellW, short) {
  const el = document.createElement("div");
  el.className = "ew-found-row";
  el.setAttribute("aria-hidden", "true");
  const spans = first.map((f, p) => {
    const s = document.createElement("span");
    s.dataset.index = String(p);
    s.style.width = `${cellW}px`;
    s.textContent = f < 0 ? "\u2013" : short ? String(f) : labels[f];
    s.title = f < 0 ? "never" : labels[f];
    if (f < 0) s.classList.add("ew-never");
    el.appendChild(s);
    return s;
  });
  let active = -1;
  const setActive = (i) => {
    if (active >= 0 && spans[active]) spans[active].classList.remove("ew-active");
    active = i;
    if (i >= 0 && spans[i]) spans[i].classList.add("ew-active");
  };
  return { el, spans, setActive };
}

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const ranks = decodeArray(model.get("ranks"), "ranks");
  if (ranks.empty || ranks.shape.length !== 2) {
    const p = document.createElement("div");
    p.className = "ew-hint";
    p.textContent = "No ranks to show.";
    body.appendChild(p);
    return {};
  }
  const [L, P] = ranks.shape;
  const topIdx = decodeArray(model.get("topk_index"), "topk_index");
  const topProb = decodeArray(model.get("topk_probs"), "topk_probs");
  const vocab = get(model, "topk_vocab", []);
  const hasTop = !topIdx.empty && topIdx.shape.length === 3 && topIdx.shape[0] === L && topIdx.shape[1] === P;
  const K = hasTop ? topIdx.shape[2] : 0;
  const labels = layerLabelsFor(model, L);
  const arrays = readMetrics(model, [L, P]);
  const metrics = availableMetrics(arrays);
  const scales = {};
  const scaleOf = (m) => scales[m] || (scales[m] = metricScale(m, arrays[m].data, ctx.theme));
  let metric = pickMetric(get(model, "metric", "rank"), metrics);
  const first = readFirstLayer(model, L, P);
  const foundK = Math.max(1, Number(get(model, "first_layer_k", 1)) || 1);
  const foundKey = `found at (top ${foundK})`;
  const mode = gridMode(L, P);
  const cellW = mode === "dom" ? 44 : 14;
  const cellH = mode === "dom" ? 22 : 14;
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  const rawOf = (i) => (raw[i] != null ? String(raw[i]) : tok(i));
  const valueAt = (m, l, p) => arrays[m].data[l * P + p];
  const foundText = (p) => (first[p] < 0 ? "never" : labels[first[p]]);

  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  const g = document.createElement("div");
  g.style.display = "grid";
  g.style.gridTemplateColumns = "max-content max-content";
  g.style.width = "max-content"; // as wide as the cells: the sticky layer labels may travel its whole width
  g.style.alignItems = "stretch";
  const inTexts = Array.from({ length: P }, (_, p) => tok(p));
  const outTexts = Array.from({ length: P }, (_, p) => tok(p + 1));
  const kindOf = (i) => (i < nInput ? "ew-tok-prompt" : "ew-tok-gen") + marks.classOf(i);
  const vertical = mode === "canvas";
  const top = tokenAxis(outTexts, Array.from({ length: P }, (_, p) => rawOf(p + 1)), cellW, { side: "top", vertical, kindOf: (p) => kindOf(p + 1) });
  const bottom = tokenAxis(inTexts, Array.from({ length: P }, (_, p) => rawOf(p)), cellW, { side: "bottom", vertical, kindOf });
  const rows = rowLabels(labels, cellH);
  const found = first ? foundRow(first, labels, cellW, mode === "canvas") : null;
  // top-left corner: "output →" (the top axis) over "layer" (the row labels under it)
  const topTitle = document.createElement("div");
  topTitle.className = "ew-sticky-col ew-corner";
  topTitle.style.alignSelf = "end";
  topTitle.appendChild(axisTitle("output \u2192"));
  topTitle.appendChild(axisTitle("layer \u2193", { className: "ew-layer-title" }));
  const bottomTitle = axisTitle("input \u2192", { sticky: true });

  const describe = (l, p) => {
    const values = metrics.map((m) => `${METRIC_INFO[m].key} ${valueText(m, valueAt(m, l, p))}`).join(", ");
    return `${labels[l]}, position ${p}: ${JSON.stringify(tok(p))} \u2192 ${JSON.stringify(tok(p + 1))}, ${values}` + (first ? `, ${foundKey} ${foundText(p)}` : "");
  };
  const setActive = (l, p) => {
    top.setActive(p);
    bottom.setActive(p);
    rows.setActive(l);
    if (found) found.setActive(p);
  };
  const grid = createGrid({
    nRows: L,
    nCols: P,
    cellW,
    cellH,
    mode,
    ariaLabel: "the next token per layer and position",
    color: (l, p) => scaleOf(metric)(valueAt(metric, l, p)),
    text: mode === "dom" ? (l, p) => cellText(metric, valueAt(metric, l, p)) : null,
    label: describe,
    onHover(l, p, how, ev) {
      if (l < 0) {
        tooltip.hide();
        setActive(-1, -1);
        return;
      }
      setActive(l, p);
      const lines = [layerName(labels[l]), ["position", p], { label: "input", token: tok(p) }, piecesRow(model, raw, p), { label: "target", token: tok(p + 1) }, ...metricRows(arrays, l * P + p, metric)];
      if (get(model, "unit", "token") === "word") lines.push("a word's cell: its last piece, predicting the next word's first");
      if (first) lines.push([foundKey, foundText(p)]);
      if (hasTop) {
        lines.push(`top ${K} at ${layerName(labels[l])}`);
        for (let k = 0; k < K; k++) {
          const vi = at(topIdx, l, p, k);
          const pr = topProb.empty ? null : at(topProb, l, p, k);
          lines.push({ label: `${k + 1}.`, token: vocab[vi] != null ? String(vocab[vi]) : `#${vi}`, value: pr == null ? "" : formatPercent(pr) });
        }
      }
      tooltip.show(lines, how === "focus" ? grid.anchor(l, p) : ev);
    },
    onCommit(l, p) {
      const cur = get(model, "selected_cell", []);
      const same = Array.isArray(cur) && cur.length === 2 && cur[0] === l && cur[1] === p;
      commit(model, "selected_cell", same ? [] : [l, p]);
    },
  });
  if (first && mode === "dom") first.forEach((f, p) => f >= 0 && grid.cellElement(f, p).classList.add("ew-found"));
  g.appendChild(topTitle);
  g.appendChild(top.el);
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  g.appendChild(bottomTitle);
  g.appendChild(bottom.el);
  if (found) {
    const title = document.createElement("div");
    title.className = "ew-found-title ew-sticky-col";
    title.textContent = foundKey;
    g.appendChild(title);
    g.appendChild(found.el);
    found.el.addEventListener("mouseover", (ev) => {
      const p = ev.target && ev.target.dataset ? Number(ev.target.dataset.index) : NaN;
      if (!(p >= 0 && p < P)) return;
      setActive(-1, p);
      tooltip.show([["position", p], { label: "input", token: tok(p) }, { label: "target", token: tok(p + 1) }, [foundKey, foundText(p)]], ev);
    });
    found.el.addEventListener("mouseleave", () => {
      tooltip.hide();
      setActive(-1, -1);
    });
  }
  wrap.appendChild(g);
  body.appendChild(wrap);

  const switcher = metrics.length > 1 ? metricSwitcher(metrics, metric, (m) => {
    show(m);
    if (get(model, "metric", "rank") !== m) commit(model, "metric", m);
  }) : null;
  if (switcher) controls.appendChild(switcher.el);
  // Recolour in place: no rebuild, no round trip to Python.
  const show = (m) => {
    const next = pickMetric(m, metrics);
    if (switcher) switcher.set(next);
    if (next === metric) return;
    metric = next;
    ctx.setLegend(metricLegend(metric, scaleOf(metric)));
    grid.refresh();
    tooltip.hide();
  };
  ctx.setLegend(metricLegend(metric, scaleOf(metric)));

  const syncSelected = () => {
    const sel = get(model, "selected_cell", []);
    if (Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < P) grid.setSelected(sel[0], sel[1]);
    else grid.setSelected(-1, -1);
  };
  syncSelected();
  return { grid, onTrait: { selected_cell: syncSelected, metric: () => show(get(model, "metric", "rank")) } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "rank_grid",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "layer_labels", "ranks", "topk_vocab", "topk_index", "topk_probs",
      "target_probs", "kl_to_final", "entropy", "first_layer", "first_layer_k"],
    localTraits: ["selected_cell", "metric"],
    build,
  });
}

export default { render };
