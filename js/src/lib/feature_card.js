// A feature's dashboard card, drawn by the FeatureDashboard (one per feature) and by the FeatureExplorer (the card of
// the clicked feature): `#index`, label, density, the activation histogram (log bins), the top contexts and the
// quantile-band samples (each token's background its activation on the card's scale, the context's own token
// outlined) and the promoted / suppressed tokens. Token text only through textContent (lib/tokens.js fillToken).
// No module-level mutable state: everything lives in the object cardDrawer returns.
import { decodeArray } from "./arrays.js";
import { strengthScale, formatNumber, formatPercent, css, textColorFor } from "./colors.js";
import { fillToken } from "./tokens.js";
import { get } from "./model.js";
import { injectStyleSheet } from "./styles.js";

export const N_BANDS = 4; // quantile bands of the sample, as in results/feature_dashboard.py
const SVG = "http://www.w3.org/2000/svg";
const STYLE_ID = "ew-style-feature-card-v1";
const CSS = `
.ew-fd-card { border: 1px solid var(--ew-border); border-radius: 6px; padding: 6px 8px; background: var(--ew-bg); }
.ew-fd-card:focus-visible { outline: 2px solid var(--ew-focus); outline-offset: 1px; }
.ew-fd-card.ew-selected { box-shadow: 0 0 0 2px var(--ew-select); }
.ew-fd-head { display: flex; flex-wrap: wrap; gap: 10px; align-items: baseline; }
.ew-fd-index { font-weight: 700; }
.ew-fd-label { font-style: italic; }
.ew-fd-stats, .ew-fd-note, .ew-fd-sub { color: var(--ew-muted); font-size: 12px; }
.ew-fd-sub { margin: 6px 0 2px; font-weight: 600; }
.ew-fd-ctx { display: flex; gap: 8px; align-items: baseline; font-family: var(--ew-mono, ui-monospace, monospace); font-size: 12px; margin: 1px 0; }
.ew-fd-val { min-width: 4.5em; text-align: right; color: var(--ew-muted); }
.ew-fd-ctx .ew-tokens { display: inline-flex; flex-wrap: wrap; gap: 1px; }
.ew-fd-ctx .ew-tok { padding: 0 2px; border-radius: 2px; white-space: pre; }
.ew-fd-ctx .ew-tok:hover, .ew-fd-logit:hover { outline: 2px solid var(--ew-focus); outline-offset: 0; }
.ew-fd-ctx .ew-tok.ew-fd-center { outline: 1.5px solid var(--ew-focus); font-weight: 700; }
.ew-fd-hist rect.ew-fd-bar { fill: var(--ew-bar); }
.ew-fd-hist text { fill: var(--ew-muted); font-size: 10px; }
.ew-fd-logits { display: flex; flex-wrap: wrap; gap: 4px; font-size: 12px; }
.ew-fd-logit { border: 1px solid var(--ew-border); border-radius: 3px; padding: 0 3px; white-space: pre; }
`;

/** Add the card's style sheet once per document or shadow root of `node`. */
export function injectCardStyles(node) {
  injectStyleSheet(node, STYLE_ID, CSS);
}

export const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = String(text);
  return node;
};

/** The dashboard arrays a card reads: {name: {data, shape}} for the traits `${prefix}${name}` (empty when absent). */
export const CARD_ARRAYS = ["feature_ids", "fire_counts", "top_values", "top_docs", "top_positions", "top_tokens", "top_acts",
  "sample_values", "sample_docs", "sample_positions", "sample_tokens", "sample_acts", "hist", "hist_edges",
  "promoted_tokens", "promoted_values", "suppressed_tokens", "suppressed_values"];
export function readCardArrays(model, prefix = "") {
  const a = {};
  for (const n of CARD_ARRAYS) {
    const f = model.get(prefix + n);
    a[n] = f ? decodeArray(f, prefix + n) : { data: [], shape: [0], empty: true };
  }
  return a;
}

/**
 * Draws cards from the arrays `A` (readCardArrays; F features, k top contexts of W tokens, S samples, B histogram
 * bins, n promoted tokens) and the strings table the token arrays index. Returns {F, ids, rowOf(f) (-1: no card),
 * peak(r), card(r, selected) -> the card's element (div.ew-fd-card[data-feature])}.
 * Example: cardDrawer({A, strings, rawStrings, labels, nTokens, theme, tooltip}).card(0).
 */
export function cardDrawer({ A, strings, rawStrings, labels, nTokens, theme, tooltip }) {
  const F = A.feature_ids.shape[0] || 0;
  const K = A.top_values.shape[1] || 0;
  const S = A.sample_values.empty ? 0 : A.sample_values.shape[1] || 0;
  const W = A.top_tokens.shape[2] || 1;
  const B = A.hist.shape[1] || 0;
  const N = A.promoted_tokens.empty ? 0 : A.promoted_tokens.shape[1] || 0;
  const ids = Array.from(A.feature_ids.data, Number);
  const text = (j) => (j >= 0 && j < strings.length ? strings[j] : "");
  const rawText = (j) => (j >= 0 && j < rawStrings.length ? rawStrings[j] : text(j));
  const peak = (r) => (K && Number(A.top_docs.data[r * K]) >= 0 ? A.top_values.data[r * K] : 0);

  const tokenRow = (table, r, j, top) => {
    const row = el("div", "ew-fd-ctx");
    const size = table === "top" ? K : S;
    const value = A[`${table}_values`].data[r * size + j];
    const v = el("span", "ew-fd-val", formatNumber(value, 3));
    v.dataset.value = String(value);
    row.appendChild(v);
    const toks = el("span", "ew-tokens");
    const scale = strengthScale(0, top > 0 ? top : 1, theme);
    const doc = Number(A[`${table}_docs`].data[r * size + j]);
    const pos = Number(A[`${table}_positions`].data[r * size + j]);
    for (let w = 0; w < W; w++) {
      const t = Number(A[`${table}_tokens`].data[(r * size + j) * W + w]);
      if (t < 0) continue;
      const act = A[`${table}_acts`].data[(r * size + j) * W + w];
      const span = el("span", "ew-tok" + (w === (W - 1) / 2 ? " ew-fd-center" : ""));
      fillToken(span, text(t));
      span.title = rawText(t);
      span.dataset.value = String(act);
      if (act > 0) {
        const rgb = scale(act);
        span.style.background = css(rgb);
        span.style.color = textColorFor(rgb);  // already a CSS colour ("#000000" or "#ffffff")
      }
      const where = pos + w - (W - 1) / 2;
      const tip = () => [{ label: `text ${doc}, token ${where}`, token: text(t) }, ["raw", rawText(t)], ["activation", formatNumber(act, 4)]];
      span.addEventListener("mouseover", (ev) => tooltip.show(tip(), ev));
      span.addEventListener("mouseout", () => tooltip.hide());
      toks.appendChild(span);
    }
    row.appendChild(toks);
    return row;
  };

  const histogram = (r) => {
    const counts = Array.from(A.hist.data.slice(r * B, (r + 1) * B), Number);
    const lo = counts.findIndex((c) => c > 0);
    const hi = B - 1 - [...counts].reverse().findIndex((c) => c > 0);
    if (lo < 0) return el("div", "ew-fd-note", "never fires in the dataset");
    const edges = Array.from(A.hist_edges.data, Number);
    const most = Math.max(...counts);
    const bw = Math.max(4, Math.min(14, Math.floor(360 / (hi - lo + 1))));
    const h = 48;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "ew-fd-hist");
    svg.setAttribute("width", String(bw * (hi - lo + 1) + 2));
    svg.setAttribute("height", String(h + 14));
    svg.setAttribute("role", "img");
    const edge = (b) => (b <= 0 ? 0 : edges[Math.min(b - 1, edges.length - 1)]);
    svg.setAttribute("aria-label", `activation histogram from ${formatNumber(edge(lo), 3)} to ` +
      `${hi >= B - 1 ? "above " + formatNumber(edge(hi), 3) : formatNumber(edge(hi + 1), 3)}, log bins`);
    for (let b = lo; b <= hi; b++) {
      const bar = document.createElementNS(SVG, "rect");
      const y = counts[b] ? Math.max(1, Math.round((h * counts[b]) / most)) : 0;
      bar.setAttribute("class", "ew-fd-bar");
      bar.setAttribute("x", String(1 + (b - lo) * bw));
      bar.setAttribute("y", String(h - y));
      bar.setAttribute("width", String(bw - 1));
      bar.setAttribute("height", String(y));
      bar.dataset.bin = String(b);
      bar.dataset.value = String(counts[b]);
      const range = b >= B - 1 ? `\u2265 ${formatNumber(edge(b), 3)}` : `${formatNumber(edge(b), 3)} \u2013 ${formatNumber(edge(b + 1), 3)}`;
      bar.addEventListener("mouseover", (ev) => tooltip.show([["activation", range], ["tokens", String(counts[b])]], ev));
      bar.addEventListener("mouseout", () => tooltip.hide());
      svg.appendChild(bar);
    }
    for (const [b, anchor] of [[lo, "start"], [hi, "end"]]) {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", String(anchor === "start" ? 1 : bw * (hi - lo + 1)));
      t.setAttribute("y", String(h + 11));
      t.setAttribute("text-anchor", anchor);
      t.textContent = formatNumber(anchor === "start" ? edge(b) : edge(Math.min(b + 1, B - 1)), 2);
      svg.appendChild(t);
    }
    return svg;
  };

  const logits = (name, r, title) => {
    const box = el("div", `ew-fd-logits ew-fd-${name}`);
    box.setAttribute("aria-label", title);
    box.appendChild(el("span", "ew-fd-stats", `${title}:`));
    for (let j = 0; j < N; j++) {
      const t = Number(A[`${name}_tokens`].data[r * N + j]);
      const v = A[`${name}_values`].data[r * N + j];
      const chip = el("span", "ew-fd-logit");
      chip.dataset.value = String(v);
      const tok = el("span", "ew-tok");
      fillToken(tok, text(t));
      tok.title = rawText(t);
      chip.appendChild(tok);
      chip.appendChild(document.createTextNode(` ${v >= 0 ? "+" : ""}${formatNumber(v, 3)}`));
      chip.addEventListener("mouseover", (ev) => tooltip.show([{ label: title, token: text(t) }, ["raw", rawText(t)], ["logit per unit", formatNumber(v, 4)]], ev));
      chip.addEventListener("mouseout", () => tooltip.hide());
      box.appendChild(chip);
    }
    return box;
  };

  const card = (r, selected = false) => {
    const f = ids[r];
    const c = el("div", "ew-fd-card" + (selected ? " ew-selected" : ""));
    c.dataset.feature = String(f);
    c.setAttribute("aria-label", `feature ${f}${labels[r] ? ": " + labels[r] : ""}`);
    const head = el("div", "ew-fd-head");
    head.appendChild(el("span", "ew-fd-index", `#${f}`));
    if (labels[r]) head.appendChild(el("span", "ew-fd-label", labels[r]));
    const fires = Number(A.fire_counts.data[r]);
    const stats = el("span", "ew-fd-stats", `density ${formatPercent(nTokens ? fires / nTokens : 0)} (${fires} of ` +
      `${nTokens} tokens) \u00b7 max ${formatNumber(peak(r), 3)}`);
    stats.dataset.density = String(nTokens ? fires / nTokens : 0);
    head.appendChild(stats);
    c.appendChild(head);
    c.appendChild(histogram(r));
    c.appendChild(el("div", "ew-fd-sub", `top ${K} contexts`));
    const top = el("div", "ew-fd-top");
    for (let j = 0; j < K; j++) if (Number(A.top_docs.data[r * K + j]) >= 0) top.appendChild(tokenRow("top", r, j, peak(r)));
    c.appendChild(top);
    if (S) {
      const n = Array.from({ length: S }, (_, j) => Number(A.sample_docs.data[r * S + j])).filter((d) => d >= 0).length;
      for (let b = 0; b < N_BANDS && n; b++) {
        const from = Math.floor((b * n) / N_BANDS);
        const to = Math.floor(((b + 1) * n) / N_BANDS);
        if (to <= from) continue;
        const band = el("div", "ew-fd-band");
        band.dataset.band = String(b);
        band.appendChild(el("div", "ew-fd-sub", `sampled, quantile band ${b + 1} of ${N_BANDS} (${b === 0 ? "strongest" : b === N_BANDS - 1 ? "weakest" : "middle"})`));
        for (let j = from; j < to; j++) band.appendChild(tokenRow("sample", r, j, peak(r)));
        c.appendChild(band);
      }
    }
    if (N) {
      c.appendChild(logits("promoted", r, "promotes"));
      c.appendChild(logits("suppressed", r, "suppresses"));
    }
    return c;
  };

  return { F, N, ids, rowOf: (f) => ids.indexOf(Number(f)), peak, card };
}

/**
 * The panel a view opens a feature's card in (the FeatureExplorer): reads the dashboard arrays from the traits
 * `${prefix}*` (`has_dashboard` says whether there are any). Returns {el (div.ew-fx-card[data-feature], hidden
 * while closed), enabled, current() (-1: closed), open(f) (f < 0 closes; a feature without a card says so), close()}.
 * Escape inside the panel or its close button closes it, then calls onClosed(f).
 * Example: const p = cardPanel(model, ctx, "card_", (f) => rowOf(f).focus()); body.appendChild(p.el); p.open(12).
 */
export function cardPanel(model, ctx, prefix, onClosed) {
  const enabled = Boolean(get(model, "has_dashboard", false));
  const box = el("div", "ew-fx-card");
  box.setAttribute("role", "region");
  box.tabIndex = -1;
  box.hidden = true;
  const note = String(get(model, `${prefix}promoted_note`, ""));
  let shown = -1;
  let drawer = null;
  if (enabled) {
    injectCardStyles(ctx.root);
    drawer = cardDrawer({
      A: readCardArrays(model, prefix),
      strings: get(model, `${prefix}strings`, []).map(String),
      rawStrings: get(model, `${prefix}raw_strings`, []).map(String),
      labels: get(model, `${prefix}labels`, []).map(String),
      nTokens: Number(get(model, `${prefix}n_tokens`, 0)),
      theme: ctx.theme,
      tooltip: ctx.tooltip,
    });
  }
  const close = () => {
    const f = shown;
    open(-1);
    if (f >= 0 && onClosed) onClosed(f);
  };
  const open = (f) => {
    if (!enabled || f === shown) return;
    shown = f;
    box.textContent = "";
    box.hidden = f < 0;
    if (f < 0) return;
    const r = drawer.rowOf(f);
    box.dataset.feature = String(f);
    box.setAttribute("aria-label", `dashboard card of feature ${f}`);
    const bar = el("div", "ew-fx-card-bar");
    bar.appendChild(el("span", "", r >= 0 ? `dashboard card of #${f}` : `#${f}`));
    const button = el("button", "ew-fx-card-close", "close (Esc)");
    button.type = "button";
    button.setAttribute("aria-label", "close the card");
    button.addEventListener("click", close);
    bar.appendChild(button);
    box.appendChild(bar);
    if (r < 0) {
      box.appendChild(el("div", "ew-hint ew-fx-nocard", `feature #${f} has no card: the dashboard does not cover it`));
      return;
    }
    box.appendChild(drawer.card(r));
    if (drawer.N && note) box.appendChild(el("div", "ew-fd-note", note));
  };
  box.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    ev.preventDefault();
    ev.stopPropagation();
    close();
  });
  return { el: box, enabled, current: () => shown, open, close };
}
