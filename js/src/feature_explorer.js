// FeatureExplorer: a sparse dictionary's features over a text. The token row; for the hovered (else the selected,
// else the one with the largest |attribution|, else the last) token its strongest features: index, label, an activation bar and, when given, a signed bar of the
// feature's attribution to one output. Hover or focus a feature to colour the tokens by its activation (data-value on
// each token) and draw it as a sparkline over the text; click / Enter pins it (selected_feature). Click / Enter on a
// token selects it (selected_token). Arrays are sparse rows: per-token offsets + latent indices + values (CSR).
// With a dashboard (has_dashboard; card_* arrays: the dashboard cards of this text's features only), click / Enter on
// a feature also opens its card under the list (lib/feature_card.js, as the FeatureDashboard draws it); Escape or
// the close button closes it; a feature the dashboard does not cover says so.
import { decodeArray } from "./lib/arrays.js";
import { strengthScale, legend, formatNumber, formatCompact, css } from "./lib/colors.js";
import { createTokenRow, piecesRow, tokenSpan } from "./lib/tokens.js";
import { sparkline } from "./lib/sparkline.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";
import { cardPanel } from "./lib/feature_card.js";
import { injectStyleSheet } from "./lib/styles.js";

const STYLE_ID = "ew-style-feature-explorer-v1";
const FX_CSS = `
.ew-fx-spark-row { display: flex; align-items: center; gap: 8px; margin: 6px 0; min-height: 30px; font-size: 12px; color: var(--ew-muted); }
.ew-fx-spark-row .ew-spark-line { stroke: var(--ew-accent); stroke-width: 1.5; }
.ew-fx-head { font-size: 12px; font-weight: 600; margin: 6px 0 4px 0; overflow-wrap: anywhere; }
.ew-fx-head .ew-tok { font-family: var(--jp-code-font-family, ui-monospace, monospace); background: var(--ew-bg2); }
.ew-fx-list { display: flex; flex-direction: column; gap: 1px; font-size: 12px; }
.ew-fx-feat, .ew-fx-cols { display: grid; grid-template-columns: 4.5em minmax(6em, 18em) minmax(40px, 9em) 5em; gap: 0 8px; align-items: center; padding: 0 5px; }
.ew-fx-with-attr .ew-fx-feat, .ew-fx-with-attr .ew-fx-cols { grid-template-columns: 4.5em minmax(6em, 18em) minmax(40px, 9em) 5em minmax(40px, 8em) 5em; }
.ew-fx-feat { cursor: pointer; border-radius: 3px; padding: 1px 5px; }
.ew-fx-feat > span { padding: 1px 2px; }
.ew-fx-feat:focus { outline: none; }
.ew-fx-feat:focus-visible, .ew-fx-feat.ew-active { outline: 2px solid var(--ew-focus); outline-offset: -1px; }
.ew-fx-feat.ew-selected { box-shadow: inset 0 0 0 2px var(--ew-select); }
.ew-fx-feat.ew-active, .ew-fx-feat.ew-selected { background: var(--ew-bg2); }
.ew-fx-idx { font-variant-numeric: tabular-nums; font-family: var(--jp-code-font-family, ui-monospace, monospace); }
.ew-fx-label { overflow-wrap: anywhere; }
.ew-fx-label.ew-fx-nolabel { color: var(--ew-muted); font-style: italic; }
.ew-fx-track { position: relative; display: block; height: 10px; border: 1px solid var(--ew-border); border-radius: 2px; }
.ew-fx-fill { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ew-bar); }
.ew-fx-attr-fill { position: absolute; top: 0; bottom: 0; }
.ew-fx-attr-fill.ew-fx-pos { left: 50%; background: var(--ew-pos); }
.ew-fx-attr-fill.ew-fx-neg { right: 50%; background: var(--ew-neg); }
.ew-fx-zero { position: absolute; left: 50%; top: -1px; bottom: -1px; border-left: 1px solid var(--ew-muted); }
.ew-fx-val { font-variant-numeric: tabular-nums; text-align: right; }
.ew-fx-colhead { color: var(--ew-muted); font-size: 11px; font-weight: 400; }
/* a quoted token of the attribution target kept on one line (a long one cut with an ellipsis; its title holds it) */
.ew-fx-colhead .ew-fx-target { display: inline-block; max-width: 100%; vertical-align: bottom; white-space: pre; overflow: hidden; text-overflow: ellipsis; unicode-bidi: isolate; }
.ew-fx-card { margin-top: 8px; }
.ew-fx-card:focus { outline: none; }
.ew-fx-card:focus-visible { outline: 2px solid var(--ew-focus); outline-offset: 1px; }
.ew-fx-card-bar { display: flex; align-items: baseline; gap: 8px; font-size: 12px; color: var(--ew-muted); margin-bottom: 2px; }
.ew-fx-card-close { background: var(--ew-bg2); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; font: inherit; cursor: pointer; margin-left: auto; }
`;

function injectFxStyles(el) {
  injectStyleSheet(el, STYLE_ID, FX_CSS);
}

/**
 * Sparse rows (CSR) over n tokens: row(t) -> {indices, values} (subarrays, in the order sent), valueOf(t, f) (0 when
 * f is not in row t), column(f) -> Float32Array(n) (f's value at every token), max (the largest |value|).
 * Example: sparseRows([0, 2, 3], [1, 3, 2], [2, 0.5, 1]).column(3) -> Float32Array [0.5, 0].
 */
export function sparseRows(offsets, indices, values) {
  const n = Math.max(0, offsets.length - 1);
  const cache = new Map();
  let max = 0;
  for (let k = 0; k < values.length; k++) max = Math.max(max, Math.abs(values[k]));
  const row = (t) => (t >= 0 && t < n ? { indices: indices.subarray(offsets[t], offsets[t + 1]), values: values.subarray(offsets[t], offsets[t + 1]) } : { indices: [], values: [] });
  const valueOf = (t, f) => {
    if (t < 0 || t >= n) return 0;
    for (let k = offsets[t]; k < offsets[t + 1]; k++) if (indices[k] === f) return values[k];
    return 0;
  };
  const column = (f) => {
    if (cache.has(f)) return cache.get(f);
    const out = new Float32Array(n);
    for (let t = 0; t < n; t++) out[t] = valueOf(t, f);
    cache.set(f, out);
    return out;
  };
  return { n, row, valueOf, column, max };
}

function rowsOf(model, prefix, n) {
  const off = decodeArray(model.get(`${prefix}_offsets`), `${prefix}_offsets`);
  const idx = decodeArray(model.get(`${prefix}_indices`), `${prefix}_indices`);
  const val = decodeArray(model.get(`${prefix}_values`), `${prefix}_values`);
  if (off.empty || off.data.length !== n + 1) return null;
  return sparseRows(off.data, idx.empty ? new Int32Array(0) : idx.data, val.empty ? new Float32Array(0) : val.data);
}

/**
 * A text split around its quoted parts (Python reprs: '...' or "...", backslash escapes inside).
 * Example: quotedParts("logit of ' dog'") -> [{text: "logit of ", quoted: false}, {text: "' dog'", quoted: true}].
 */
export function quotedParts(text) {
  const out = [];
  const re = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push({ text: text.slice(last, m.index), quoted: false });
    out.push({ text: m[0], quoted: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), quoted: false });
  return out;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function build(ctx) {
  const { model, body, tooltip } = ctx;
  injectFxStyles(ctx.root);
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const n = tokens.length;
  const F = rowsOf(model, "feature", n) || sparseRows(new Int32Array(n + 1), new Int32Array(0), new Float32Array(0));
  const A = rowsOf(model, "attribution", n);
  const labels = new Map(get(model, "feature_labels", []).map((r) => [Number(r.index), String(r.description)]));
  const labelOf = (f) => labels.get(Number(f)) || "";
  const name = (f) => `#${f}${labelOf(f) ? ` ${labelOf(f)}` : ""}`;
  const nTop = Math.max(1, Number(get(model, "n_top", 10)));
  const target = String(get(model, "attribution_target", ""));
  const dictionary = String(get(model, "dictionary", ""));

  let hoverTok = -1;
  let hoverFeat = -1;
  const selTok = () => {
    const s = Number(get(model, "selected_token", -1));
    return s >= 0 && s < n ? s : -1;
  };
  const selFeat = () => Number(get(model, "selected_feature", -1));
  // with none hovered or selected: the token of the largest |attribution| when there is one, else the last token
  let fallback = n - 1;
  if (A && A.max > 0) for (let t = 0; t < n; t++) if (Math.abs(A.row(t).values[0] || 0) === A.max) fallback = t;
  const shownToken = () => (hoverTok >= 0 ? hoverTok : selTok() >= 0 ? selTok() : fallback);
  const currentFeature = () => (hoverFeat >= 0 ? hoverFeat : selFeat());

  // ----- the token row
  const tokenRow = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    marks,
    label: "tokens",
    onHover(i, span, how, ev) {
      hoverTok = i;
      if (spark) spark.mark(i);
      renderList();
      if (i < 0) return tooltip.hide();
      const lines = [{ label: `token ${i}`, token: tokens[i] }, piecesRow(model, raw, i)];
      const c = currentFeature();
      if (c >= 0) lines.push([name(c), formatNumber(F.valueOf(i, c))]);
      const r = F.row(i);
      lines.push(["active features", String(r.indices.length)]);
      for (let k = 0; k < Math.min(3, r.indices.length); k++) lines.push([name(r.indices[k]), formatNumber(r.values[k])]);
      tooltip.show(lines, how === "focus" ? span : ev);
    },
    onCommit(i) {
      commit(model, "selected_token", i);
    },
  });
  const scroll = el("div", "ew-scroll");
  scroll.appendChild(tokenRow.el);

  // ----- the sparkline of the current feature over the text
  const sparkRow = el("div", "ew-fx-spark-row");
  let spark = null;
  let sparkFeature = null;
  function drawSpark(c) {
    if (c === sparkFeature) return;
    sparkFeature = c;
    sparkRow.textContent = "";
    spark = null;
    if (c < 0) {
      sparkRow.appendChild(el("span", "ew-fx-spark-label", "hover or select a feature: its activation colours the tokens and is drawn here"));
      return;
    }
    const col = F.column(c);
    let hi = 0;
    for (let t = 0; t < n; t++) hi = Math.max(hi, col[t]);
    sparkRow.appendChild(el("span", "ew-fx-spark-label", `${name(c)} over the text`));
    spark = sparkline(col, { width: Math.min(640, Math.max(160, n * 6)), height: 28, label: `feature ${name(c)}: activation over ${n} tokens`, domain: [0, hi || 1], yAxis: (v) => formatCompact(v, 5, 2) });
    spark.svg.dataset.feature = String(c);
    spark.svg.classList.add("ew-fx-spark");
    spark.svg.addEventListener("mousemove", (ev) => {
      const rect = spark.svg.getBoundingClientRect();
      const i = spark.indexAt(ev.clientX - rect.left);
      spark.mark(i);
      tooltip.show([name(c), { label: `token ${i}`, token: tokens[i] }, ["activation", formatNumber(col[i])]], ev);
    });
    spark.svg.addEventListener("mouseleave", () => {
      spark && spark.mark(-1);
      tooltip.hide();
    });
    sparkRow.appendChild(spark.el);
  }

  // ----- the shown token's strongest features
  const head = el("div", "ew-fx-head");
  const list = el("div", "ew-fx-list" + (A ? " ew-fx-with-attr" : ""));
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "features of the shown token");
  let rows = [];
  let listed = -2;
  function renderList() {
    const t = shownToken();
    if (t === listed) return;
    listed = t;
    head.textContent = "";
    list.textContent = "";
    rows = [];
    if (t < 0) return;
    const r = F.row(t);
    head.appendChild(document.createTextNode(`${r.indices.length} active feature${r.indices.length === 1 ? "" : "s"} at token ${t} `));
    head.appendChild(tokenSpan(tokens[t], { raw: raw[t] }));
    if (r.indices.length > nTop) head.appendChild(document.createTextNode(` (the ${nTop} strongest)`));
    if (!r.indices.length) return;
    const cols = ["feature", "label", "activation", ""];
    if (A) cols.push("attribution", "");
    const colRow = el("div", "ew-fx-cols");
    colRow.setAttribute("aria-hidden", "true");
    for (const c of cols) colRow.appendChild(el("span", "ew-fx-colhead", c));
    if (A && target) {
      // "attribution to logit of ' dog'": each quoted token of the target on one line (the header wraps around it)
      const h = colRow.children[4];
      h.textContent = "attribution to ";
      for (const part of quotedParts(target)) {
        if (!part.quoted) h.appendChild(document.createTextNode(part.text));
        else h.appendChild(el("span", "ew-fx-target", part.text)).title = part.text;
      }
    }
    list.appendChild(colRow);
    const attrMax = A ? A.max || 1 : 1;
    for (let k = 0; k < Math.min(nTop, r.indices.length); k++) {
      const f = r.indices[k];
      const v = r.values[k];
      const row = el("div", "ew-fx-feat");
      row.setAttribute("role", "option");
      row.dataset.feature = String(f);
      row.dataset.value = String(v);
      row.tabIndex = k === 0 ? 0 : -1;
      row.setAttribute("aria-label", `feature ${f}${labelOf(f) ? `: ${labelOf(f)}` : ""}, activation ${formatNumber(v)}`);
      row.appendChild(el("span", "ew-fx-idx", `#${f}`));
      row.appendChild(el("span", "ew-fx-label" + (labelOf(f) ? "" : " ew-fx-nolabel"), labelOf(f) || "no label"));
      const track = el("span", "ew-fx-track");
      const fill = el("span", "ew-fx-fill");
      fill.style.width = `${Math.max(0, Math.min(100, (100 * v) / (F.max || 1))).toFixed(1)}%`;
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "ew-fx-val", formatNumber(v)));
      if (A) {
        const a = A.valueOf(t, f);
        const at = el("span", "ew-fx-track ew-fx-attr");
        at.dataset.value = String(a);
        const af = el("span", `ew-fx-attr-fill ${a >= 0 ? "ew-fx-pos" : "ew-fx-neg"}`);
        af.style.width = `${Math.min(50, (50 * Math.abs(a)) / attrMax).toFixed(1)}%`;
        at.appendChild(af);
        at.appendChild(el("span", "ew-fx-zero"));
        row.appendChild(at);
        row.appendChild(el("span", "ew-fx-val ew-fx-attr-val", formatNumber(a)));
      }
      list.appendChild(row);
      rows.push(row);
    }
    markRows();
  }
  function markRows() {
    for (const row of rows) {
      const f = Number(row.dataset.feature);
      row.classList.toggle("ew-active", f === hoverFeat);
      row.classList.toggle("ew-selected", f === selFeat());
      if (f === selFeat()) row.setAttribute("aria-selected", "true");
      else row.removeAttribute("aria-selected");
    }
  }
  const featureOf = (node) => {
    while (node && node !== list) {
      if (node.dataset && node.dataset.feature !== undefined && node.parentNode === list) return Number(node.dataset.feature);
      node = node.parentNode;
    }
    return -1;
  };
  const featureTooltip = (f) => {
    const t = shownToken();
    const col = F.column(f);
    let arg = 0;
    for (let i = 1; i < n; i++) if (col[i] > col[arg]) arg = i;
    const lines = [`feature #${f}`];
    if (labelOf(f)) lines.push(["label", labelOf(f)]);
    lines.push([`at token ${t}`, formatNumber(F.valueOf(t, f))]);
    if (A) lines.push([target ? `attribution to ${target}` : "attribution", formatNumber(A.valueOf(t, f))]);
    lines.push(["max over the text", `${formatNumber(col[arg])} at token ${arg}`], { label: "", token: tokens[arg] });
    return lines;
  };

  // ----- colouring the tokens by the current feature
  function paint() {
    const c = currentFeature();
    drawSpark(c);
    markRows();
    for (let i = 0; i < n; i++) {
      const s = tokenRow.spans[i];
      s.classList.toggle("ew-selected", i === selTok());
      if (i === selTok()) s.setAttribute("aria-selected", "true");
      else s.removeAttribute("aria-selected");
    }
    if (c < 0) {
      for (let i = 0; i < n; i++) {
        tokenRow.setColor(i, null);
        delete tokenRow.spans[i].dataset.value;
      }
      // the scale a feature colours the tokens with (the hint to hover or select one is the sparkline row's, said once)
      ctx.setLegend(legend(strengthScale(0, 1, ctx.theme), { label: "token colour: a feature's activation", format: (v) => (v > 0 ? "its max" : "0") }));
      return;
    }
    const col = F.column(c);
    let hi = 0;
    for (let i = 0; i < n; i++) hi = Math.max(hi, col[i]);
    const scale = strengthScale(0, hi > 0 ? hi : 1, ctx.theme);
    for (let i = 0; i < n; i++) {
      tokenRow.spans[i].dataset.value = String(col[i]);
      tokenRow.setColor(i, col[i] > 0 ? scale(col[i]) : null);
    }
    ctx.setLegend(legend(scale, { label: `${name(c)}: activation (tokens where it is 0 uncoloured)` }));
  }

  const preview = (f) => {
    if (f === hoverFeat) return;
    hoverFeat = f;
    paint();
  };
  const pin = (f) => {
    // with a dashboard: a pinned feature whose card was closed opens it again; otherwise toggle, the card follows
    const next = hasCards && selFeat() === f && panel.current() !== f ? f : selFeat() === f ? -1 : f;
    if (next !== selFeat()) commit(model, "selected_feature", next);
    panel.open(next);
  };
  list.addEventListener("mouseover", (ev) => {
    const f = featureOf(ev.target);
    if (f < 0) return;
    preview(f);
    tooltip.show(featureTooltip(f), ev);
  });
  list.addEventListener("mouseleave", () => {
    tooltip.hide();
    preview(-1);
  });
  list.addEventListener("click", (ev) => {
    const f = featureOf(ev.target);
    if (f >= 0) pin(f);
  });
  list.addEventListener("focusin", (ev) => {
    const f = featureOf(ev.target);
    if (f < 0) return;
    rows.forEach((r) => (r.tabIndex = r === ev.target ? 0 : -1));
    preview(f);
    tooltip.show(featureTooltip(f), ev.target.firstChild || ev.target);
  });
  list.addEventListener("focusout", (ev) => {
    if (ev.relatedTarget && list.contains(ev.relatedTarget)) return;
    tooltip.hide();
    preview(-1);
  });
  list.addEventListener("keydown", (ev) => {
    const k = rows.indexOf(ev.target);
    if (k < 0) return;
    if (ev.key === "Escape" && panel.current() >= 0) {
      ev.preventDefault();
      panel.close();
      return;
    }
    let j = -1;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") j = Math.min(rows.length - 1, k + 1);
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") j = Math.max(0, k - 1);
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = rows.length - 1;
    else if ((ev.key === "Enter" || ev.key === " ") && !ev.shiftKey && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
      ev.preventDefault();
      pin(Number(ev.target.dataset.feature));
      return;
    } else return;
    ev.preventDefault();
    rows[j].focus();
  });

  // ----- the clicked feature's dashboard card (lib/feature_card.js); closing it gives the focus back to its row
  const panel = cardPanel(model, ctx, "card_", (f) => {
    const row = rows.find((r) => Number(r.dataset.feature) === f);
    if (row) row.focus();
  });
  const hasCards = panel.enabled;

  if (dictionary) {
    const d = el("div", "ew-hint ew-fx-dictionary", `dictionary ${dictionary}${get(model, "d_sae", 0) ? ` · ${get(model, "d_sae", 0)} latents` : ""}`);
    body.appendChild(d);
  }
  if (!n) hint(body, "No tokens to show.");
  body.appendChild(scroll);
  body.appendChild(sparkRow);
  body.appendChild(head);
  body.appendChild(list);
  body.appendChild(panel.el);
  renderList();
  paint();
  if (selTok() >= 0) tokenRow.setActive(selTok());
  return {
    onTrait: {
      selected_feature() {
        paint();
        panel.open(selFeat());
      },
      selected_token() {
        renderList();
        paint();
      },
    },
  };
}

export function render({ model, el: host }) {
  return mountView(model, host, {
    name: "feature_explorer",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "feature_offsets", "feature_indices", "feature_values", "feature_labels", "d_sae", "dictionary",
      "attribution_offsets", "attribution_indices", "attribution_values", "attribution_target", "n_top",
      "has_dashboard", "card_feature_ids", "card_labels", "card_strings", "card_raw_strings", "card_fire_counts", "card_n_tokens",
      "card_top_values", "card_top_docs", "card_top_positions", "card_top_tokens", "card_top_acts", "card_sample_values",
      "card_sample_docs", "card_sample_positions", "card_sample_tokens", "card_sample_acts", "card_hist", "card_hist_edges",
      "card_promoted_tokens", "card_promoted_values", "card_suppressed_tokens", "card_suppressed_values", "card_promoted_note"],
    localTraits: ["selected_feature", "selected_token"],
    build,
  });
}

export default { render };
