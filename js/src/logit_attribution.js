// LogitAttributionView: the logit (difference) of the target (− the foil) at one position split over the model's
// components. Rows = layers (0 at top); columns = the heads and, last, the layer's MLP; a diverging scale centred on
// 0. Beside each row: attention vs MLP as a signed stacked bar, and the logit read after each layer (a curve through
// the row boundaries). Below: the embedding and bias terms, and the text's tokens, coloured by the hovered (or
// selected) head's attention from the position. Hover a cell: its value and its head's strongest attended tokens;
// click / Enter: `selected_cell` and the side panel lists its most promoted tokens.
import { decodeArray, at } from "./lib/arrays.js";
import { divergingScale, strengthScale, legend, formatNumber, formatCompact, formatPercent, css, textColorFor, CATEGORICAL } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get, hint } from "./lib/model.js";
import { tokenSpan, describeToken } from "./lib/tokens.js";
import { layerBars, layerCurve } from "./lib/layer_bars.js";

const PARTS = [["attention", CATEGORICAL[2]], ["MLP", CATEGORICAL[6]]]; // bluish green, reddish purple
const curveColor = (theme) => (theme === "dark" ? CATEGORICAL[1] : CATEGORICAL[4]); // sky blue on dark, blue on light
const signed = (v) => (v > 0 ? "+" : "") + formatNumber(v, 3);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const heads = decodeArray(model.get("head_values"), "head_values");
  if (heads.empty || heads.shape.length !== 2) {
    hint(body, "No attribution to show.");
    return {};
  }
  const [L, H] = heads.shape;
  const C = H + 1; // the MLP is the last column
  const mlp = decodeArray(model.get("mlp_values"), "mlp_values");
  const vec = (name) => {
    const a = decodeArray(model.get(name), name);
    return a.empty ? [] : Array.from(a.data);
  };
  const attnT = vec("attn_totals");
  const mlpT = vec("mlp_totals");
  const acc = vec("accumulated");
  const termLabels = get(model, "term_labels", []).map(String);
  const termValues = vec("term_values");
  const tokens = get(model, "tokens", []).map(String);
  const raws = get(model, "raw_tokens", tokens).map(String);
  const position = Number(get(model, "position", -1));
  const labels = Array.from({ length: L }, (_, i) => String(get(model, "layer_labels", [])[i] ?? i));
  const vocab = get(model, "promoted_vocab", []).map(String);
  const pIdx = decodeArray(model.get("promoted_index"), "promoted_index");
  const pVal = decodeArray(model.get("promoted_values"), "promoted_values");
  const hasPromoted = !pIdx.empty && pIdx.shape[0] === L && pIdx.shape[1] === C;
  const att = decodeArray(model.get("attention"), "attention");
  const hasAtt = !att.empty && att.shape[0] === L && att.shape[1] === H && att.shape[2] === tokens.length;
  const target = String(get(model, "target", ""));
  const foil = String(get(model, "foil", ""));
  const what = foil ? `logit ${JSON.stringify(target)} \u2212 ${JSON.stringify(foil)}` : `logit of ${JSON.stringify(target)}`;

  const value = (l, c) => (c < H ? heads.data[l * H + c] : mlp.empty ? 0 : mlp.data[l]);
  const name = (l, c) => `${layerName(labels[l])}, ${c < H ? `head ${c}` : "MLP"}`;
  let maxAbs = 0;
  for (let l = 0; l < L; l++) for (let c = 0; c < C; c++) maxAbs = Math.max(maxAbs, Math.abs(value(l, c)));
  const scale = divergingScale(maxAbs || 1, ctx.theme);
  const narrow = C > 16;
  const mode = gridMode(L, C);
  const cellW = mode === "dom" && !narrow ? 44 : 16;
  const cellH = mode === "dom" && !narrow ? 22 : 14;

  // ---- summary line
  const summary = el("span", "ew-la-summary", `${what}${position >= 0 && tokens[position] != null ? ` after token ${position}` : ""}: ${formatNumber(Number(get(model, "logit", 0)), 4)}`);
  summary.style.marginRight = "12px";
  controls.appendChild(summary);
  const err = Number(get(model, "error", 0));
  if (err > 0) controls.appendChild(el("span", "ew-la-error", `components sum to it within ${formatNumber(err, 2)}`));
  const note = String(get(model, "note", ""));

  // ---- the grid with its column heads, row labels, the bars and the curve
  const wrap = el("div", "ew-scroll ew-la-main");
  const g = el("div");
  // (row-gap: the charts' first points, on their top edge, clear of the column titles above them)
  g.style.cssText = `display:grid;grid-template-columns:max-content max-content max-content max-content;column-gap:10px;row-gap:8px;width:max-content;align-items:start`;
  const head = el("div", "ew-axis ew-axis-top ew-la-heads");
  head.setAttribute("aria-hidden", "true");
  for (let c = 0; c < C; c++) {
    const s = el("span", "ew-la-head", c < H ? (narrow ? (c % 4 === 0 ? String(c) : "") : `h${c}`) : "MLP");
    s.style.cssText = `display:inline-block;width:${cellW}px;text-align:center;font-size:11px;color:var(--ew-muted)`;
    head.appendChild(s);
  }
  head.style.alignSelf = "end";
  const title = (t) => {
    const e = axisTitle(t);
    e.style.fontSize = "11px";
    e.style.alignSelf = "end";
    return e;
  };
  g.appendChild(title("layer"));
  g.appendChild(head);
  g.appendChild(title("attention + MLP"));
  g.appendChild(title(`${foil ? "difference" : "logit"} after the layer`));
  const rows = rowLabels(labels, cellH);
  const bars = layerBars(Array.from({ length: L }, (_, l) => [attnT[l] || 0, mlpT[l] || 0]), {
    rowH: cellH, width: 120, colors: PARTS.map((p) => css(p[1])), className: "ew-la-bars", label: "attention and MLP per layer" });
  const curve = layerCurve(acc.length === L + 1 ? acc : [0, ...Array(L).fill(0)], {
    rowH: cellH, width: 110, color: css(curveColor(ctx.theme)), label: `${what} after the embedding and after each layer` });
  const curveBox = el("div", "ew-la-curvebox");
  curveBox.appendChild(curve.el);
  // "0" under the dashed zero line
  const zero = el("div", "ew-la-zero");
  zero.style.cssText = `position:relative;height:12px;width:${curve.el.getAttribute("width")}px;font-size:10px;line-height:12px;color:var(--ew-muted)`;
  const zeroLabel = el("span", "ew-la-zero-label", "0");
  zeroLabel.style.cssText = `position:absolute;left:${curve.zeroX.toFixed(1)}px;top:0;transform:translateX(-50%)`;
  zero.appendChild(zeroLabel);
  curveBox.appendChild(zero);
  const domain = el("div", "ew-la-domain", `${formatNumber(curve.domain[0], 3)} \u2026 ${formatNumber(curve.domain[1], 3)}`);
  domain.style.cssText = "font-size:10px;color:var(--ew-muted)";
  curveBox.appendChild(domain);
  const reach = el("div", "ew-la-domain", `\u00b1${formatNumber(bars.reach, 3)}`);
  reach.style.cssText = "font-size:10px;color:var(--ew-muted);text-align:center";
  const barBox = el("div", "ew-la-barbox");
  barBox.appendChild(bars.el);
  barBox.appendChild(reach);

  // ---- the tokens (attention from the position) and the side panel
  const tokRow = el("div", "ew-tokens ew-la-tokens");
  const spans = tokens.map((t, i) => {
    const s = tokenSpan(t, { raw: raws[i] });
    s.dataset.index = String(i);
    if (i === position) s.style.boxShadow = "inset 0 -2px 0 var(--ew-accent)";
    tokRow.appendChild(s);
    return s;
  });
  const attAt = (l, h, i) => att.data[(l * H + h) * tokens.length + i];
  const attMax = (l, h) => {
    let m = 0;
    for (let i = 0; i <= position && i < tokens.length; i++) m = Math.max(m, attAt(l, h, i));
    return m > 0 ? m : 1;
  };
  let shownHead = null;
  const tokHint = el("div", "ew-hint ew-la-tokhint");
  const paintTokens = (cell) => {
    const h = cell && cell[1] < H && hasAtt ? cell : null;
    if (shownHead && h && shownHead[0] === h[0] && shownHead[1] === h[1]) return;
    shownHead = h;
    const attScale = h ? strengthScale(0, attMax(h[0], h[1]), ctx.theme) : null; // (the head's strongest darkest)
    spans.forEach((s, i) => {
      const rgb = h && i <= position ? attScale(attAt(h[0], h[1], i)) : null;
      s.style.backgroundColor = rgb ? css(rgb) : "";
      s.style.color = rgb ? textColorFor(rgb) : "";
    });
    tokHint.textContent = !hasAtt ? "Analyze with attention=True to see each head's pattern over these tokens."
      : h ? `${name(h[0], h[1])}: attention from token ${position}, the most attended (${formatPercent(attMax(h[0], h[1]))}) ${ctx.theme === "dark" ? "brightest" : "darkest"}`
        : `Hover a head to colour the tokens by its attention from token ${position}.`;
  };

  const setActive = (l) => {
    rows.setActive(l);
    bars.setActive(l);
    curve.setActive(l < 0 ? -1 : l + 1);
  };
  const topAttended = (l, h, k) => {
    const idx = [];
    for (let i = 0; i <= position && i < tokens.length; i++) idx.push(i);
    return idx.sort((a, b) => attAt(l, h, b) - attAt(l, h, a)).slice(0, k);
  };
  const selected = () => {
    const s = get(model, "selected_cell", []);
    return Array.isArray(s) && s.length === 2 && s[0] >= 0 && s[0] < L && s[1] >= 0 && s[1] < C ? s : null;
  };
  const grid = createGrid({
    nRows: L,
    nCols: C,
    cellW,
    cellH,
    mode,
    ariaLabel: `${what}: each head's and MLP's direct share, by layer`,
    color: (l, c) => scale(value(l, c)),
    text: cellW > 20 ? (l, c) => (Math.abs(value(l, c)) < 5e-4 ? "0" : formatCompact(value(l, c), 5, 2)) : null,
    label: (l, c) => `${name(l, c)}: ${signed(value(l, c))}`,
    onHover(l, c, how, ev) {
      if (l < 0) {
        tooltip.hide();
        setActive(-1);
        paintTokens(selected());
        return;
      }
      setActive(l);
      paintTokens([l, c]);
      const lines = [name(l, c), ["direct share", signed(value(l, c))]];
      if (c < H && hasAtt && tokens.length) {
        lines.push(`attention from token ${position}:`);
        for (const i of topAttended(l, c, 3)) lines.push({ label: `  ${i}`, token: tokens[i], value: formatPercent(attAt(l, c, i)) });
      } else if (c < H) lines.push("Analyze with attention=True to see this head's pattern.");
      if (hasPromoted && at(pIdx, l, c, 0) >= 0) lines.push({ label: "promotes", token: vocab[at(pIdx, l, c, 0)] ?? "", value: signed(at(pVal, l, c, 0)) });
      tooltip.show(lines, how === "focus" ? grid.anchor(l, c) : ev);
    },
    onCommit(l, c) {
      const cur = selected();
      commit(model, "selected_cell", cur && cur[0] === l && cur[1] === c ? [] : [l, c]);
    },
  });
  if (mode === "dom") for (let l = 0; l < L; l++) grid.cellElement(l, H).style.boxShadow = "-3px 0 0 var(--ew-bg)";
  bars.el.addEventListener("mousemove", (ev) => {
    const l = Number(ev.target && ev.target.dataset ? ev.target.dataset.layer : NaN);
    if (!Number.isInteger(l)) return;
    setActive(l);
    tooltip.show([layerName(labels[l]), ["attention", signed(attnT[l])], ["MLP", signed(mlpT[l])], ["together", signed(attnT[l] + mlpT[l])],
      ...(acc.length === L + 1 ? [[`${foil ? "difference" : "logit"} after it`, formatNumber(acc[l + 1], 4)]] : [])], ev);
  });
  bars.el.addEventListener("mouseleave", () => {
    tooltip.hide();
    setActive(-1);
  });
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  g.appendChild(barBox);
  g.appendChild(curveBox);
  const row = el("div", "ew-la-row");
  row.style.cssText = "display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start";
  // the panel takes the rest of the line beside the grid, and the whole line when it wraps under it (a narrow host:
  // marimo, a side panel), not a 260px column beside an empty area
  wrap.appendChild(g);
  row.appendChild(wrap);
  const detail = el("div", "ew-la-detail");
  detail.setAttribute("aria-live", "polite");
  detail.style.cssText = "flex:1 1 200px;min-width:180px";
  row.appendChild(detail);
  body.appendChild(row);

  // ---- the embedding and bias terms
  if (termLabels.length) {
    const terms = el("div", "ew-la-terms");
    terms.style.cssText = "margin-top:6px;font-size:12px;display:flex;flex-wrap:wrap;gap:2px 12px";
    terms.appendChild(el("span", "ew-la-terms-title", "not in the grid:"));
    termLabels.forEach((t, i) => {
      const item = el("span", "ew-la-term");
      item.dataset.term = String(i);
      item.appendChild(el("span", "ew-la-term-label", `${t === "embed" ? "embedding" : t} `));
      const v = el("span", "ew-la-term-value", signed(termValues[i] ?? 0));
      v.style.fontVariantNumeric = "tabular-nums";
      item.appendChild(v);
      terms.appendChild(item);
    });
    body.appendChild(terms);
  }
  if (note) body.appendChild(el("div", "ew-hint ew-la-note", note));
  if (tokens.length) {
    tokRow.style.marginTop = "8px";
    body.appendChild(tokRow);
    body.appendChild(tokHint);
    tokRow.addEventListener("mouseover", (ev) => {
      const i = Number(ev.target.closest && ev.target.closest(".ew-tok") ? ev.target.closest(".ew-tok").dataset.index : NaN);
      if (!Number.isInteger(i)) return;
      const h = shownHead;
      tooltip.show([describeToken(i, tokens[i], raws[i]), { label: "text", token: tokens[i] },
        i === position ? "the position explained" : null,
        h && i <= position ? [`attention (${name(h[0], h[1])})`, formatPercent(attAt(h[0], h[1], i))] : null], ev);
    });
    tokRow.addEventListener("mouseleave", () => tooltip.hide());
  }

  const showDetail = (cell) => {
    detail.textContent = "";
    if (!cell) {
      detail.appendChild(el("div", "ew-hint", hasPromoted ? "Click a cell for the tokens it promotes most." : "Promoted tokens were not computed."));
      return;
    }
    const [l, c] = cell;
    detail.appendChild(el("div", "ew-la-detail-title", `${name(l, c)}: ${signed(value(l, c))}`)).style.fontWeight = "600";
    if (!hasPromoted || at(pIdx, l, c, 0) < 0) {
      detail.appendChild(el("div", "ew-hint", c < H ? "Promoted tokens were not computed." : "Not computed for a mixture of experts."));
      return;
    }
    detail.appendChild(el("div", "ew-hint", "promotes most (its output through the frozen final norm and the unembedding):"));
    for (let k = 0; k < pIdx.shape[2]; k++) {
      const vi = at(pIdx, l, c, k);
      if (vi < 0) continue;
      const item = el("div", "ew-la-promoted-item");
      item.style.cssText = "display:flex;gap:4px;align-items:center;margin:1px 0";
      item.dataset.k = String(k);
      item.appendChild(el("span", null, `${k + 1}. `)).style.color = "var(--ew-muted)";
      item.appendChild(tokenSpan(vocab[vi] ?? "", { raw: vocab[vi] ?? "" }));
      const v = el("span", "ew-la-promoted-value", signed(at(pVal, l, c, k)));
      v.style.fontVariantNumeric = "tabular-nums";
      item.appendChild(v);
      detail.appendChild(item);
    }
  };
  const syncSelected = () => {
    const s = selected();
    grid.setSelected(s ? s[0] : -1, s ? s[1] : -1);
    showDetail(s);
    paintTokens(s);
  };

  const lg = el("div", "ew-la-legends");
  lg.style.cssText = "display:flex;flex-wrap:wrap;gap:4px 18px;align-items:center";
  lg.appendChild(legend(scale, { label: `direct share of the ${foil ? "logit difference" : "logit"}`, note: "diverging, centred on 0" }));
  lg.appendChild(legend(null, { label: "per layer", categories: [...PARTS.map(([l, c]) => ({ label: l, rgb: c })),
    { label: `${foil ? "difference" : "logit"} after the layer`, rgb: curveColor(ctx.theme) }] }));
  ctx.setLegend(lg);
  syncSelected();
  return { grid, onTrait: { selected_cell: syncSelected } };
}

export function render({ model, el: host }) {
  return mountView(model, host, {
    name: "logit_attribution",
    traits: ["tokens", "raw_tokens", "position", "layer_labels", "head_values", "mlp_values", "attn_totals", "mlp_totals",
      "accumulated", "term_labels", "term_values", "target", "foil", "logit", "error", "note", "promoted_vocab",
      "promoted_index", "promoted_values", "attention"],
    localTraits: ["selected_cell"],
    build,
  });
}

export default { render };
