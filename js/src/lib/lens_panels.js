// The explorer's lens panels, one position each: the lens column (rank of the next token per layer and the other
// metrics), the layer predictions (top k per layer) and the watched tokens' ranks, all after the shown token.
// Rows are built once and updated in place on every hover (no rebuild). Numbers carry data-value.
import { rankScale, formatRank, css, textColorFor, formatPercent } from "./colors.js";
import { METRIC_INFO, valueText } from "./metrics.js";
import { fillToken, columnWidth } from "./tokens.js";
import { ordinal, layerName } from "./axis.js";
import { panelFrame, named, note, bar, setBar, setText, setToken } from "./panels.js";

const cell = (className = "ew-ex-cell") => {
  const c = document.createElement("span");
  c.className = className;
  return c;
};
const label = (text) => {
  const s = document.createElement("span");
  s.className = "ew-ex-layer";
  s.textContent = text;
  return s;
};
/** Colour a rank cell (and its text) on the log scale; data-value holds the rank. Only what changed is written. */
const paintRank = (c, rank, scale) => {
  const value = String(rank);
  if (c.dataset.value === value) return;
  const rgb = scale(rank);
  const bg = css(rgb);
  if (c.__ewBg !== bg) {
    c.__ewBg = bg;
    c.style.backgroundColor = bg;
    c.style.color = textColorFor(rgb);
  }
  c.dataset.value = value;
  setText(c, formatRank(rank));
};

/**
 * The lens panel's heading parts for column k: "Lens after token 5 ' are': rank of token 6 ':' per layer" (the next
 * token named with its position: a bare "rank of the next, :" read as a broken sentence when that token was ":").
 */
export function lensHeading(d, k) {
  return ["Lens after ", ...named(d, k), `: rank of ${d.unit} ${k + 1} `, { token: d.tokens[k + 1] }, " per layer"];
}

/**
 * The lens column. d: {tokens, unit, layerLabels, ranks ({data, shape: [L, P]}), metrics ({prob?, kl?, entropy?}),
 * firstLayer (Int32Array | null), theme}. show(k): column k (after token k, the rank of token k + 1 per layer).
 */
export function lensPanel(d) {
  const f = panelFrame("lens", "logit lens");
  const [L, P] = d.ranks.shape;
  let maxRank = 2;
  for (let i = 0; i < d.ranks.data.length; i++) if (d.ranks.data[i] > maxRank) maxRank = d.ranks.data[i];
  const scale = rankScale(maxRank, d.theme);
  const extra = ["prob", "kl", "entropy"].filter((m) => d.metrics[m]);
  const table = document.createElement("div");
  table.className = "ew-ex-table";
  table.style.gridTemplateColumns = `max-content 52px${" max-content".repeat(extra.length)}`;
  for (const h of ["layer", "rank", ...extra.map((m) => METRIC_INFO[m].key)]) table.appendChild(label(h)).classList.add("ew-ex-colhead");
  const cells = [];
  for (let l = 0; l < L; l++) {
    table.appendChild(label(d.layerLabels[l] || String(l)));
    const row = [cell(), ...extra.map(() => cell("ew-ex-num"))];
    row.forEach((c, j) => {
      c.dataset.layer = String(l);
      c.dataset.metric = j ? extra[j - 1] : "rank";
      table.appendChild(c);
    });
    cells.push(row);
  }
  const found = note("");
  const last = note("");
  f.legendScale = scale;
  f.show = (k) => {
    if (k >= P) {
      f.heading(["Lens after ", ...named(d, k)]);
      setText(last, `${d.unit} ${k} is the last: there is no next ${d.unit} to rank.`);
      f.fill([last]);
      return;
    }
    f.heading(lensHeading(d, k));
    for (let l = 0; l < L; l++) {
      paintRank(cells[l][0], d.ranks.data[l * P + k], scale);
      extra.forEach((m, j) => {
        const v = d.metrics[m].data[l * P + k];
        const c = cells[l][j + 1];
        if (c.dataset.value !== String(v)) {
          c.dataset.value = String(v);
          setText(c, valueText(m, v));
        }
      });
    }
    if (d.firstLayer) {
      const first = d.firstLayer[k];
      setText(found, first >= 0 ? `found at layer ${d.layerLabels[first] || first}: the top prediction from there on` : "never the top prediction");
      if (found.dataset.value !== String(first)) found.dataset.value = String(first);
    }
    f.fill([table, d.firstLayer ? found : null]);
  };
  return f;
}

/**
 * Layer predictions. d: {tokens, unit, layerLabels, topkIndex ({data, shape: [L, N, K]}), topkProbs, vocab}.
 * show(k): what each layer predicts after token k, as a line of chips (token, bar, percentage) behind the layer's
 * label. Chips keep their width (a narrow panel once squeezed its tokens to a few pixels and cut the percentages);
 * the panel scrolls sideways, the layer labels sticky at its left edge.
 */
export function predictionsPanel(d) {
  const f = panelFrame("predictions", "layer predictions");
  const [L, N, K] = d.topkIndex.shape;
  const table = document.createElement("div");
  table.className = "ew-ex-lp";
  const chips = [];
  for (let l = 0; l < L; l++) {
    const line = document.createElement("div");
    line.className = "ew-lp-line";
    line.appendChild(label(d.layerLabels[l] || String(l))).classList.add("ew-ex-lp-layer");
    for (let j = 0; j < K; j++) {
      const chip = document.createElement("div");
      chip.className = "ew-lp-item ew-lp-chip";
      chip.dataset.layer = String(l);
      chip.dataset.rank = String(j + 1);
      const t = document.createElement("span");
      t.className = "ew-tok";
      const pct = document.createElement("span");
      pct.className = "ew-lp-pct";
      const track = bar(0);
      chip.appendChild(t);
      chip.appendChild(track);
      chip.appendChild(pct);
      line.appendChild(chip);
      chips.push({ chip, t, pct, fill: track.firstChild });
    }
    table.appendChild(line);
  }
  let shown = 0;
  const colWidths = new Array(K).fill("");
  table.addEventListener("mouseover", (ev) => {
    const chip = ev.target && ev.target.closest ? ev.target.closest(".ew-lp-chip") : null;
    if (!chip || !d.tooltip) return;
    const l = Number(chip.dataset.layer);
    d.tooltip.show([`${layerName(d.layerLabels[l] || String(l))}, after ${d.unit} ${shown}`, { label: `${ordinal(Number(chip.dataset.rank))} prediction`, token: chip.dataset.token },
      ["probability", formatPercent(Number(chip.dataset.value))]], ev);
  });
  table.addEventListener("mouseleave", () => d.tooltip && d.tooltip.hide());
  f.show = (k) => {
    shown = k;
    f.heading(["Layer predictions after ", ...named(d, k)]);
    for (let l = 0; l < L; l++) {
      for (let j = 0; j < K; j++) {
        const o = (l * N + k) * K + j;
        const vi = d.topkIndex.data[o];
        const p = d.topkProbs.empty ? 0 : d.topkProbs.data[o];
        const c = chips[l * K + j];
        const word = d.vocab[vi] != null ? String(d.vocab[vi]) : `#${vi}`;
        if (c.chip.dataset.token !== word) {
          setToken(c.t, word);
          c.chip.dataset.token = word;
          c.chip.setAttribute("aria-label", `${layerName(d.layerLabels[l] || String(l))}, ${ordinal(j + 1)} prediction: ${JSON.stringify(word)}`);
        }
        const value = String(p);
        if (c.chip.dataset.value !== value) {
          c.chip.dataset.value = value;
          setBar(c.fill, p);
          setText(c.pct, formatPercent(p));
        }
      }
    }
    // a column's tokens share one width, so that its bars and percentages line up from layer to layer
    for (let j = 0; j < K; j++) {
      const w = columnWidth(Array.from({ length: L }, (_, l) => chips[l * K + j].chip.dataset.token));
      if (w === colWidths[j]) continue;
      colWidths[j] = w;
      for (let l = 0; l < L; l++) chips[l * K + j].t.style.minWidth = w;
    }
    f.fill([table]);
  };
  return f;
}

/**
 * Watched tokens. d: {tokens, unit, layerLabels, watchTokens, watchRanks ({data, shape: [L, N, W]}), theme}.
 * show(k): the rank of each watched token in every layer's prediction after token k.
 */
export function watchPanel(d) {
  const f = panelFrame("watch", "watched tokens");
  const [L, N, W] = d.watchRanks.shape;
  let maxRank = 2;
  for (let i = 0; i < d.watchRanks.data.length; i++) if (d.watchRanks.data[i] > maxRank) maxRank = d.watchRanks.data[i];
  const scale = rankScale(maxRank, d.theme);
  const table = document.createElement("div");
  table.className = "ew-ex-table";
  table.style.gridTemplateColumns = `max-content${" 60px".repeat(W)}`;
  table.appendChild(label("layer")).classList.add("ew-ex-colhead");
  for (let w = 0; w < W; w++) {
    const h = document.createElement("span");
    h.className = "ew-tok ew-tok-clip ew-ex-colhead"; // clipped to its column (explorer tokens overflow unless clipped)
    fillToken(h, d.watchTokens[w] || `#${w}`);
    h.title = d.watchTokens[w] || `#${w}`; // a long token is cut to its column; the whole of it on hover
    table.appendChild(h);
  }
  const cells = [];
  for (let l = 0; l < L; l++) {
    table.appendChild(label(d.layerLabels[l] || String(l)));
    for (let w = 0; w < W; w++) {
      const c = cell();
      c.dataset.layer = String(l);
      c.dataset.watch = String(w);
      table.appendChild(c);
      cells.push(c);
    }
  }
  const hint = note("rank in each layer's prediction of the next token (1 = top)");
  f.show = (k) => {
    f.heading(["Watched tokens after ", ...named(d, k)]);
    for (let l = 0; l < L; l++) for (let w = 0; w < W; w++) paintRank(cells[l * W + w], d.watchRanks.data[(l * N + k) * W + w], scale);
    f.fill([table, hint]);
  };
  return f;
}
