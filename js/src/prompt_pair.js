// PromptPairView: two prompts on aligned columns (a gap where one prompt has no token there). Differing columns are
// marked (data-differs="1", `.ew-pp-diff`) in both token rows. Below, the rank-grid difference: rows = layers,
// cell [l, k] = log10(rank in B) - log10(rank in A) of each prompt's next token in column k, diverging scale
// centred on 0 (hatched, ew-nocell: one prompt has no cell there, a gap or its last token, which has no next token to
// rank; a legend item says so). Hovering a token or a cell shows both prompts' values. Clicking
// commits `selected` (an aligned column): the saliency of that column's output token in A and in B, side by side,
// on one scale. With components, the direct logit attribution difference A − B after one column (layers x heads + MLP).
import { decodeArray, at } from "./lib/arrays.js";
import { divergingScale, attributionScale, legend, formatNumber, formatCompact, formatRank, noValueColor } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get, hint } from "./lib/model.js";
import { createTokenRow } from "./lib/tokens.js";

const GAP = "\u2205"; // ∅: no token in this prompt here

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const tokens = { a: get(model, "tokens_a", []).map(String), b: get(model, "tokens_b", []).map(String) };
  const raws = { a: get(model, "raw_tokens_a", tokens.a), b: get(model, "raw_tokens_b", tokens.b) };
  const unit = get(model, "unit", "token") === "word" ? "word" : "token";
  const al = decodeArray(model.get("alignment"), "alignment");
  const K = al.empty ? 0 : al.shape[0];
  if (!K) {
    hint(body, "Nothing to compare.");
    return {};
  }
  const col = { a: (k) => at(al, k, 0), b: (k) => at(al, k, 1) };
  const differsArr = decodeArray(model.get("differs"), "differs");
  const differs = (k) => !differsArr.empty && differsArr.data[k] !== 0;
  const rankA = decodeArray(model.get("ranks_a"), "ranks_a");
  const rankB = decodeArray(model.get("ranks_b"), "ranks_b");
  const diff = decodeArray(model.get("rank_diff"), "rank_diff");
  const L = diff.empty || diff.shape.length !== 2 ? 0 : diff.shape[0];
  const labels = Array.from({ length: L }, (_, i) => String(get(model, "layer_labels", [])[i] ?? i));
  const tokenAt = (side, k) => (col[side](k) >= 0 ? tokens[side][col[side](k)] : GAP);
  const hasCell = (l, k) => at(rankA, l, k) > 0 && at(rankB, l, k) > 0;
  // why a column has no cell in a prompt: a gap there, or that prompt's last token (nothing after it to rank)
  const nTok = { a: tokens.a.length, b: tokens.b.length };
  const noCellWhy = (l, k) => ["a", "b"].flatMap((side) => {
    const S = side.toUpperCase();
    if (col[side](k) < 0) return [`a gap in ${S}`];
    if (at(side === "a" ? rankA : rankB, l, k) > 0) return [];
    return [col[side](k) === nTok[side] - 1 ? `${S}'s last ${unit}, no next ${unit}` : `no rank in ${S}`];
  }).join("; ");
  let maxAbs = 0;
  for (let l = 0; l < L; l++) for (let k = 0; k < K; k++) if (hasCell(l, k)) maxAbs = Math.max(maxAbs, Math.abs(at(diff, l, k)));
  const scale = divergingScale(maxAbs || 1, ctx.theme);
  const nDiff = Array.from({ length: K }, (_, k) => differs(k)).filter(Boolean).length;

  const summary = document.createElement("span");
  summary.className = "ew-pp-summary";
  summary.textContent = `${K} aligned ${unit}s, ${nDiff} differ`;
  summary.style.marginRight = "12px";
  controls.appendChild(summary);

  // ----- aligned token rows and the rank-difference grid -----
  const mode = gridMode(Math.max(L, 1), K);
  const cellW = mode === "dom" ? 52 : 14;
  const cellH = mode === "dom" ? 22 : 14;
  const vertical = mode === "canvas";
  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  const g = document.createElement("div");
  g.style.cssText = "display:grid;grid-template-columns:max-content max-content;width:max-content;align-items:stretch";
  const axes = {};
  for (const side of ["a", "b"]) {
    const texts = Array.from({ length: K }, (_, k) => tokenAt(side, k));
    const rawOf = Array.from({ length: K }, (_, k) => (col[side](k) >= 0 ? raws[side][col[side](k)] : "no token"));
    const axis = tokenAxis(texts, rawOf, cellW, { side: "top", vertical, kindOf: (k) => (differs(k) ? "ew-pp-diff" : "") });
    axis.el.classList.add("ew-pp-prompt");
    axis.el.dataset.prompt = side;
    axis.el.removeAttribute("aria-hidden");
    axis.spans.forEach((s, k) => {
      s.dataset.column = String(k);
      if (col[side](k) < 0) s.classList.add("ew-pp-gap");
      if (!differs(k)) return;
      s.dataset.differs = "1";
      s.style.fontWeight = "700";
      s.style.boxShadow = "inset 0 -2px 0 var(--ew-accent)";
    });
    const title = axisTitle(`prompt ${side.toUpperCase()}`, { sticky: true });
    title.style.alignSelf = "end";
    g.appendChild(title);
    g.appendChild(axis.el);
    axes[side] = axis;
  }
  const rankText = (r) => (r > 0 ? formatRank(r) : "\u2013");
  const columnLines = (k) => [
    [`column ${k}`, differs(k) ? "differs" : "same"],
    { label: `A ${col.a(k) >= 0 ? `${unit} ${col.a(k)}` : "(gap)"}`, token: tokenAt("a", k) },
    { label: `B ${col.b(k) >= 0 ? `${unit} ${col.b(k)}` : "(gap)"}`, token: tokenAt("b", k) },
  ];
  const cellLines = (l, k) => [layerName(labels[l]), ...columnLines(k), ["rank in A", rankText(at(rankA, l, k))],
    ["rank in B", rankText(at(rankB, l, k))],
    ["log10 rank B \u2212 A", hasCell(l, k) ? formatNumber(at(diff, l, k), 3) : `\u2013 (no cell in one prompt: ${noCellWhy(l, k)})`]];
  const setActive = (l, k) => {
    axes.a.setActive(k);
    axes.b.setActive(k);
    if (rows) rows.setActive(l);
  };
  for (const side of ["a", "b"]) {
    axes[side].el.addEventListener("mouseover", (ev) => {
      const k = axes[side].spans.indexOf(ev.target.closest ? ev.target.closest(".ew-tok") : ev.target);
      if (k < 0) return;
      setActive(-1, k);
      const lines = columnLines(k);
      if (L) lines.push([`rank in A / B (${layerName(labels[L - 1])})`, `${rankText(at(rankA, L - 1, k))} / ${rankText(at(rankB, L - 1, k))}`]);
      tooltip.show(lines, ev);
    });
    axes[side].el.addEventListener("mouseleave", () => tooltip.hide());
    axes[side].el.addEventListener("click", (ev) => {
      const k = axes[side].spans.indexOf(ev.target.closest ? ev.target.closest(".ew-tok") : ev.target);
      if (k >= 0) select(k);
    });
  }
  let rows = null;
  let grid = null;
  if (L) {
    rows = rowLabels(labels, cellH);
    grid = createGrid({
      nRows: L,
      nCols: K,
      cellW,
      cellH,
      mode,
      ariaLabel: "log10 rank in B minus log10 rank in A, layers by aligned columns",
      color: (l, k) => (hasCell(l, k) ? scale(at(diff, l, k)) : noValueColor(ctx.theme)),
      noValue: (l, k) => !hasCell(l, k),
      text: mode === "dom" ? (l, k) => (hasCell(l, k) ? formatCompact(at(diff, l, k), 5, 2) : "") : null,
      label: (l, k) => `${layerName(labels[l])}, column ${k}: rank ${rankText(at(rankA, l, k))} in A, ${rankText(at(rankB, l, k))} in B`,
      onHover(l, k, how, ev) {
        if (l < 0) {
          tooltip.hide();
          setActive(-1, -1);
          return;
        }
        setActive(l, k);
        tooltip.show(cellLines(l, k), how === "focus" ? grid.anchor(l, k) : ev);
      },
      onCommit: (l, k) => select(k),
    });
    g.appendChild(rows.el);
    g.appendChild(grid.el);
  }
  wrap.appendChild(g);
  body.appendChild(wrap);
  ctx.setLegend(L ? rankLegend(scale) : null);

  // ----- direct logit attribution difference A − B after one column (pair.view() with components) -----
  const dla = dlaSection(model, ctx, labels);
  if (dla) {
    body.appendChild(dla.el);
    const k = Number(get(model, "dla_column", -1));
    for (const side of ["a", "b"]) {
      const span = axes[side].spans[k];
      if (!span) continue;
      span.dataset.dla = "1"; // the column whose next token is attributed: outlined
      span.style.outline = "1px dashed var(--ew-accent)";
      span.style.outlineOffset = "-1px";
    }
  }

  // ----- saliency of the selected column's output token, A and B side by side -----
  const methods = get(model, "methods", []).map(String);
  const attr = { a: decodeArray(model.get("attributions_a"), "attributions_a"), b: decodeArray(model.get("attributions_b"), "attributions_b") };
  const targets = { a: Array.from(decodeArray(model.get("targets_a"), "targets_a").data), b: Array.from(decodeArray(model.get("targets_b"), "targets_b").data) };
  const hasSal = methods.length && !attr.a.empty && !attr.b.empty;
  const sal = document.createElement("div");
  sal.className = "ew-pp-saliency";
  sal.style.marginTop = "8px";
  body.appendChild(sal);
  let methodIdx = Math.max(0, methods.indexOf(String(get(model, "method", methods[0] || ""))));
  if (methods.length > 1) {
    const select = document.createElement("select");
    select.className = "ew-method";
    for (const m of methods) {
      const o = document.createElement("option");
      o.value = m;
      o.textContent = m;
      select.appendChild(o);
    }
    select.value = methods[methodIdx];
    select.addEventListener("change", () => commit(model, "method", select.value));
    const lab = document.createElement("label");
    lab.textContent = "method ";
    lab.appendChild(select);
    controls.appendChild(lab);
  }
  const rowOf = (side, k) => targets[side].indexOf(col[side](k));
  const explained = (k) => rowOf("a", k) >= 0 || rowOf("b", k) >= 0;
  const tokenRows = {};
  const heads = {};
  for (const side of ["a", "b"]) {
    const head = document.createElement("div");
    head.className = "ew-pp-sal-head";
    head.dataset.prompt = side;
    sal.appendChild(head);
    heads[side] = head;
    const row = createTokenRow({
      tokens: tokens[side],
      rawTokens: raws[side],
      nInput: Number(get(model, `n_input_tokens_${side}`, tokens[side].length)),
      label: `prompt ${side.toUpperCase()}`,
      onHover(i, span, how, ev) {
        if (i < 0) return tooltip.hide();
        const v = shownValue[side] ? shownValue[side][i] : null;
        tooltip.show([{ label: `${side.toUpperCase()} ${unit} ${i}`, token: tokens[side][i] }, v == null ? "not an input of the selected token" : ["attribution", formatNumber(v)]], how === "focus" ? span : ev);
      },
    });
    row.el.dataset.prompt = side;
    row.el.classList.add("ew-pp-sal-row");
    sal.appendChild(row.el);
    tokenRows[side] = row;
  }
  const shownValue = { a: null, b: null };
  const defaultColumn = () => {
    for (let k = K - 1; k >= 0; k--) if (rowOf("a", k) >= 0 && rowOf("b", k) >= 0) return k;
    for (let k = K - 1; k >= 0; k--) if (explained(k)) return k;
    return -1;
  };
  const paint = () => {
    const sel = Number(get(model, "selected", -1));
    const k = sel >= 0 && sel < K ? sel : defaultColumn();
    for (const side of ["a", "b"]) axes[side].spans.forEach((s, j) => s.classList.toggle("ew-selected", j === k));
    if (!hasSal || k < 0) {
      for (const side of ["a", "b"]) heads[side].textContent = hasSal ? "" : side === "a" ? "No attributions to compare." : "";
      return;
    }
    const values = {};
    let hi = 0;
    let lo = 0;
    for (const side of ["a", "b"]) {
      const r = rowOf(side, k);
      const [, T, N] = attr[side].shape;
      values[side] = r < 0 ? null : Array.from({ length: N }, (_, p) => attr[side].data[(methodIdx * T + r) * N + p]);
      if (values[side]) for (let p = 0; p < col[side](k); p++) {
        hi = Math.max(hi, values[side][p]);
        lo = Math.min(lo, values[side][p]);
      }
    }
    const sc = attributionScale(lo, hi, ctx.theme);
    for (const side of ["a", "b"]) {
      const t = col[side](k);
      heads[side].textContent = values[side] ? `${side.toUpperCase()}: attribution \u2192 ${unit} ${t} ${JSON.stringify(tokens[side][t])} (${methods[methodIdx]})` : `${side.toUpperCase()}: ${t < 0 ? "no token in this column" : `${unit} ${t} is not explained`}`;
      shownValue[side] = values[side] ? values[side].map((v, p) => (p < t ? v : null)) : null;
      tokenRows[side].spans.forEach((s, p) => {
        s.classList.toggle("ew-active", p === t);
        tokenRows[side].setColor(p, values[side] && p < t ? sc(values[side][p]) : null);
      });
    }
  };
  const select = (k) => {
    const cur = Number(get(model, "selected", -1));
    commit(model, "selected", cur === k ? -1 : k);
  };
  paint();
  return { grid, onTrait: { selected: paint, method: () => {
    methodIdx = Math.max(0, methods.indexOf(String(get(model, "method", ""))));
    paint();
  } } };
}

const NO_CELL_NOTE = `no cell: a gap (${GAP}) in one prompt, or its last token (no next token to rank)`;

/** The rank-difference legend, with a visible item for the hatched cells (ew-nocell) that have no value. */
function rankLegend(scale) {
  const lg = legend(scale, { label: "log10 rank in B \u2212 log10 rank in A (> 0: B ranks its next token lower)", note: `diverging, centred on 0; hatched: ${NO_CELL_NOTE}` });
  const item = document.createElement("span");
  item.className = "ew-legend-item ew-pp-nocell-note";
  item.style.marginLeft = "10px";
  const sw = document.createElement("span");
  sw.className = "ew-legend-swatch ew-nocell";
  item.appendChild(sw);
  item.appendChild(document.createTextNode(NO_CELL_NOTE));
  lg.appendChild(item);
  return lg;
}

/**
 * The layers x heads (+ MLP) grid of dla_heads (n_layers, n_heads) / dla_mlp (n_layers,): prompt A's minus prompt B's
 * direct share of one target's logit (difference) after column dla_column, on a diverging scale centred on 0; DOM
 * cells carry data-value; the logit after each block (dla_accumulated, A − B) is listed under it. null without data.
 */
export function dlaSection(model, ctx, lensLabels) {
  const heads = decodeArray(model.get("dla_heads"), "dla_heads");
  const mlp = decodeArray(model.get("dla_mlp"), "dla_mlp");
  const acc = decodeArray(model.get("dla_accumulated"), "dla_accumulated");
  if (heads.empty || heads.shape.length !== 2 || mlp.size !== heads.shape[0]) return null;
  const [DL, DH] = heads.shape;
  const value = (l, c) => (c < DH ? heads.data[l * DH + c] : mlp.data[l]);
  let m = 0;
  for (let l = 0; l < DL; l++) for (let c = 0; c <= DH; c++) m = Math.max(m, Math.abs(value(l, c)));
  const scale = divergingScale(m || 1, ctx.theme);
  const labels = lensLabels.length === DL ? lensLabels : Array.from({ length: DL }, (_, i) => String(i));
  const colName = (c) => (c < DH ? `head ${c}` : "MLP");
  const el = document.createElement("div");
  el.className = "ew-pp-dla";
  el.style.marginTop = "10px";
  const head = document.createElement("div");
  head.className = "ew-pp-dla-head";
  head.style.fontWeight = "600";
  head.textContent = `Direct logit attribution, prompt A \u2212 prompt B: ${String(get(model, "dla_label", ""))}`;
  el.appendChild(head);
  const mode = gridMode(DL, DH + 1);
  const cellW = mode === "dom" ? 44 : 12;
  const cellH = mode === "dom" ? 20 : 12;
  const g = document.createElement("div");
  g.style.cssText = "display:grid;grid-template-columns:max-content max-content;width:max-content";
  g.appendChild(document.createElement("span"));
  const cols = document.createElement("div");
  cols.className = "ew-pp-dla-cols";
  cols.style.cssText = `display:grid;grid-template-columns:repeat(${DH + 1}, ${cellW}px);font-size:10px;text-align:center`;
  for (let c = 0; c <= DH; c++) {
    const s = document.createElement("span");
    s.className = "ew-legend-label";
    s.textContent = c < DH ? (mode === "dom" ? `h${c}` : "") : "MLP";
    cols.appendChild(s);
  }
  g.appendChild(cols);
  const rows = rowLabels(labels, cellH);
  const grid = createGrid({
    nRows: DL,
    nCols: DH + 1,
    cellW,
    cellH,
    mode,
    ariaLabel: "direct logit attribution, prompt A minus prompt B, layers by heads and the MLP",
    color: (l, c) => scale(value(l, c)),
    text: mode === "dom" ? (l, c) => formatCompact(value(l, c), 5, 2) : null,
    label: (l, c) => `${layerName(labels[l])}, ${colName(c)}: A \u2212 B ${formatNumber(value(l, c))}`,
    onHover(l, c, how, ev) {
      if (l < 0) return ctx.tooltip.hide();
      ctx.tooltip.show([layerName(labels[l]), colName(c), ["A \u2212 B", formatNumber(value(l, c), 4)]], how === "focus" ? grid.anchor(l, c) : ev);
    },
    onCommit: () => {},
  });
  for (const cell of grid.el.querySelectorAll(".ew-cell")) cell.dataset.value = String(value(Number(cell.dataset.r), Number(cell.dataset.c)));
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  wrap.appendChild(g);
  el.appendChild(wrap);
  el.appendChild(legend(scale, { label: "A \u2212 B (> 0: the component writes more for the target on A)", note: "diverging, centred on 0" }));
  if (acc.size === DL + 1) {
    const line = document.createElement("div");
    line.className = "ew-pp-dla-acc";
    line.style.cssText = "font-size:11px;margin-top:14px";
    line.appendChild(document.createTextNode("logit (difference) after the embedding and each block, A \u2212 B: "));
    Array.from(acc.data).forEach((v, i) => {
      const s = document.createElement("span");
      s.dataset.value = String(v);
      s.dataset.after = String(i - 1);
      s.textContent = `${formatNumber(v)}${i < DL ? ", " : ""}`;
      line.appendChild(s);
    });
    el.appendChild(line);
  }
  return { el, grid };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "prompt_pair",
    traits: ["tokens_a", "tokens_b", "raw_tokens_a", "raw_tokens_b", "n_input_tokens_a", "n_input_tokens_b", "alignment", "differs",
      "layer_labels", "ranks_a", "ranks_b", "rank_diff", "methods", "targets_a", "targets_b", "attributions_a", "attributions_b", "unit",
      "dla_heads", "dla_mlp", "dla_accumulated", "dla_column", "dla_label"],
    localTraits: ["selected", "method"],
    build,
  });
}

export default { render };
