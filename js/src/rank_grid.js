// RankGrid: rows = layers (0 at top), columns = positions. Cell [l, p] = rank of token p+1
// predicted at position p by layer l. Input tokens along the bottom, output tokens on top.
import { decodeArray, at } from "./lib/arrays.js";
import { rankScale, legend, formatRank, formatNumber } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits } from "./lib/model.js";

function layerLabelsFor(model, n) {
  const given = get(model, "layer_labels", []);
  return Array.from({ length: n }, (_, i) => (given[i] != null ? String(given[i]) : `layer ${i}`));
}

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput } = tokenTraits(model);
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
  let maxRank = 2;
  for (let i = 0; i < ranks.data.length; i++) if (ranks.data[i] > maxRank) maxRank = ranks.data[i];
  const scale = rankScale(maxRank);
  const mode = gridMode(L, P);
  const cellW = mode === "dom" ? 44 : 14;
  const cellH = mode === "dom" ? 22 : 14;
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  const rawOf = (i) => (raw[i] != null ? String(raw[i]) : tok(i));
  const rankAt = (l, p) => ranks.data[l * P + p];

  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  const g = document.createElement("div");
  g.style.display = "grid";
  g.style.gridTemplateColumns = "max-content max-content";
  g.style.alignItems = "stretch";
  const inTexts = Array.from({ length: P }, (_, p) => tok(p));
  const outTexts = Array.from({ length: P }, (_, p) => tok(p + 1));
  const kindOf = (i) => (i < nInput ? "ew-tok-prompt" : "ew-tok-gen");
  const vertical = mode === "canvas";
  const top = tokenAxis(outTexts, Array.from({ length: P }, (_, p) => rawOf(p + 1)), cellW, { side: "top", vertical, kindOf: (p) => kindOf(p + 1) });
  const bottom = tokenAxis(inTexts, Array.from({ length: P }, (_, p) => rawOf(p)), cellW, { side: "bottom", vertical, kindOf });
  const rows = rowLabels(labels, cellH);
  const topTitle = document.createElement("div");
  topTitle.className = "ew-axis-title";
  topTitle.textContent = "output \u2192";
  topTitle.style.alignSelf = "end";
  const bottomTitle = document.createElement("div");
  bottomTitle.className = "ew-axis-title";
  bottomTitle.textContent = "input \u2192";

  const describe = (l, p) => `${labels[l]}, position ${p}: ${JSON.stringify(tok(p))} \u2192 ${JSON.stringify(tok(p + 1))}, rank ${rankAt(l, p)}`;
  const grid = createGrid({
    nRows: L,
    nCols: P,
    cellW,
    cellH,
    mode,
    ariaLabel: "rank of the next token per layer and position",
    color: (l, p) => scale(rankAt(l, p)),
    text: mode === "dom" ? (l, p) => formatRank(rankAt(l, p)) : null,
    label: describe,
    onHover(l, p, how, ev) {
      if (l < 0) {
        tooltip.hide();
        top.setActive(-1);
        bottom.setActive(-1);
        rows.setActive(-1);
        return;
      }
      top.setActive(p);
      bottom.setActive(p);
      rows.setActive(l);
      const lines = [labels[l], ["position", p], { label: "input", token: tok(p) }, { label: "target", token: tok(p + 1) }, ["rank", rankAt(l, p)]];
      if (hasTop) {
        lines.push(`top ${K} at ${labels[l]}`);
        for (let k = 0; k < K; k++) {
          const vi = at(topIdx, l, p, k);
          const pr = topProb.empty ? null : at(topProb, l, p, k);
          lines.push({ label: `${k + 1}.`, token: vocab[vi] != null ? String(vocab[vi]) : `#${vi}`, value: pr == null ? "" : `${formatNumber(pr * 100, 3)}%` });
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
  g.appendChild(topTitle);
  g.appendChild(top.el);
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  g.appendChild(bottomTitle);
  g.appendChild(bottom.el);
  wrap.appendChild(g);
  body.appendChild(wrap);
  ctx.setLegend(legend(scale, { label: "rank of the next token", format: (v) => String(Math.round(v)) }));

  const syncSelected = () => {
    const sel = get(model, "selected_cell", []);
    if (Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < P) grid.setSelected(sel[0], sel[1]);
    else grid.setSelected(-1, -1);
  };
  syncSelected();
  return { grid, onTrait: { selected_cell: syncSelected } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "rank_grid",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "layer_labels", "ranks", "topk_vocab", "topk_index", "topk_probs"],
    localTraits: ["selected_cell"],
    build,
  });
}

export default { render };
