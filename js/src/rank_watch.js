// RankWatch: ranks of a few watched tokens at one position, per layer.
import { decodeArray } from "./lib/arrays.js";
import { rankScale, legend, formatRank } from "./lib/colors.js";
import { createGrid } from "./lib/grid.js";
import { createTokenRow } from "./lib/tokens.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, get, hint } from "./lib/model.js";

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const tokens = get(model, "tokens", []);
  const position = Number(get(model, "position", tokens.length - 1));
  const watch = get(model, "watch_tokens", []).map(String);
  const ranks = decodeArray(model.get("ranks"), "ranks");

  const context = createTokenRow({
    tokens,
    rawTokens: tokens,
    nInput: tokens.length,
    className: "ew-context",
    label: "context",
    onHover(i, span, how, ev) {
      if (i < 0) return tooltip.hide();
      tooltip.show([{ label: `token ${i}`, token: tokens[i] }, i === position ? "predicting the next token here" : "context"], how === "focus" ? span : ev);
    },
  });
  const ctxIdx = position >= 0 && position < tokens.length ? position : tokens.length - 1;
  if (ctxIdx >= 0) context.spans[ctxIdx].classList.add("ew-active");
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(context.el);

  if (ranks.empty || ranks.shape.length !== 2) {
    body.appendChild(scroll);
    hint(body, "No ranks to show.");
    return {};
  }
  const [L, W] = ranks.shape;
  const given = get(model, "layer_labels", []);
  const labels = Array.from({ length: L }, (_, i) => (given[i] != null ? String(given[i]) : `layer ${i}`));
  let maxRank = 2;
  for (let i = 0; i < ranks.data.length; i++) if (ranks.data[i] > maxRank) maxRank = ranks.data[i];
  const scale = rankScale(maxRank, ctx.theme);
  const cellW = 72;
  const cellH = 22;
  const rankAt = (l, w) => ranks.data[l * W + w];
  const wname = (w) => (watch[w] != null ? watch[w] : `#${w}`);
  const axis = tokenAxis(Array.from({ length: W }, (_, w) => wname(w)), null, cellW, { side: "top" });
  const rows = rowLabels(labels, cellH);
  const grid = createGrid({
    nRows: L,
    nCols: W,
    cellW,
    cellH,
    ariaLabel: "rank of each watched token per layer",
    color: (l, w) => scale(rankAt(l, w)),
    text: (l, w) => formatRank(rankAt(l, w)),
    label: (l, w) => `${labels[l]}: ${JSON.stringify(wname(w))} rank ${rankAt(l, w)}`,
    onHover(l, w, how, ev) {
      if (l < 0) {
        axis.setActive(-1);
        rows.setActive(-1);
        return tooltip.hide();
      }
      axis.setActive(w);
      rows.setActive(l);
      tooltip.show([layerName(labels[l]), { label: "watched", token: wname(w) }, ["rank", rankAt(l, w)], ["position", position]], how === "focus" ? grid.anchor(l, w) : ev);
    },
  });
  const g = document.createElement("div");
  g.style.display = "grid";
  g.style.gridTemplateColumns = "max-content max-content";
  g.style.width = "max-content"; // as wide as the cells: the sticky layer labels may travel its whole width
  g.style.marginTop = "6px";
  const corner = axisTitle("layer \u2193", { sticky: true, className: "ew-layer-title" });
  corner.style.alignSelf = "end";
  g.appendChild(corner);
  g.appendChild(axis.el);
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  scroll.appendChild(g);
  body.appendChild(scroll);
  ctx.setLegend(legend(scale, { label: "rank", format: (v) => String(Math.round(v)) }));
  return { grid };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "rank_watch",
    traits: ["tokens", "position", "layer_labels", "watch_tokens", "ranks"],
    build,
  });
}

export default { render };
