// FeatureDashboard: one card per feature of a sparse dictionary over a dataset: its top-activating contexts (the
// token and a window either side, each token's background its activation on the card's scale), samples from its
// activation quantiles, the histogram of its activations (log bins), its firing density, and the tokens its decoder
// direction promotes and suppresses. A search box filters the cards by index or label; arrow keys move between
// cards, Enter / Space / click select one (selected_feature; again: none). Token text only through textContent (lib/tokens.js).
import { decodeArray } from "./lib/arrays.js";
import { strengthScale, legend, formatNumber, formatPercent, css, textColorFor, strongWord } from "./lib/colors.js";
import { fillToken } from "./lib/tokens.js";
import { mountView, commit, get, hint } from "./lib/model.js";

const PAGE = 24; // cards built at a time ("show more" adds the next ones)
const N_BANDS = 4; // quantile bands of the sample, as in results/feature_dashboard.py
const SVG = "http://www.w3.org/2000/svg";
const STYLE_ID = "ew-style-feature-dashboard-v1";
const CSS = `
.ew-fd-search { background: var(--ew-bg); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; padding: 2px 6px; font: inherit; min-width: 16em; }
.ew-fd-cards { display: flex; flex-direction: column; gap: 10px; }
.ew-fd-card { border: 1px solid var(--ew-border); border-radius: 6px; padding: 6px 8px; background: var(--ew-bg); }
.ew-fd-card:focus-visible { outline: 2px solid var(--ew-focus); outline-offset: 1px; }
.ew-fd-card.ew-selected { box-shadow: 0 0 0 2px var(--ew-select); }
.ew-fd-card { cursor: pointer; }
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
.ew-fd-more { background: var(--ew-bg2); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; font: inherit; cursor: pointer; }
`;

function injectDashboardStyles(el) {
  if (typeof document === "undefined") return;
  const root = el && typeof el.getRootNode === "function" ? el.getRootNode() : document;
  const isShadow = typeof ShadowRoot !== "undefined" && root instanceof ShadowRoot;
  const container = isShadow ? root : document.head || document.documentElement;
  if (isShadow ? root.querySelector(`#${STYLE_ID}`) : document.getElementById(STYLE_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  container.appendChild(style);
}

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = String(text);
  return node;
};

/** The arrays of the view: {data, shape} per trait, F features. */
function readArrays(model) {
  const names = ["feature_ids", "fire_counts", "top_values", "top_docs", "top_positions", "top_tokens", "top_acts",
    "sample_values", "sample_docs", "sample_positions", "sample_tokens", "sample_acts", "hist", "hist_edges",
    "promoted_tokens", "promoted_values", "suppressed_tokens", "suppressed_values"];
  const a = {};
  for (const n of names) {
    const f = model.get(n);
    a[n] = f ? decodeArray(f, n) : { data: [], shape: [0], empty: true };
  }
  return a;
}

/** Does feature (index f, label) match the search text? "#12" or "12": the index; anything else: in the label. */
export function matches(query, f, label) {
  const q = String(query || "").trim().toLowerCase();
  if (!q) return true;
  const num = q.replace(/^#/, "");
  if (/^\d+$/.test(num) && String(f) === num) return true;
  return String(label || "").toLowerCase().includes(q);
}

function build(ctx) {
  const { model, body, controls, tooltip, root } = ctx;
  injectDashboardStyles(root);
  const A = readArrays(model);
  const strings = get(model, "strings", []).map(String);
  const rawStrings = get(model, "raw_strings", []).map(String);
  const labels = get(model, "labels", []).map(String);
  const nTokens = Number(get(model, "n_tokens", 0));
  const F = A.feature_ids.shape[0] || 0;
  const K = A.top_values.shape[1] || 0;
  const S = A.sample_values.empty ? 0 : A.sample_values.shape[1] || 0;
  const W = A.top_tokens.shape[2] || 1;
  const B = A.hist.shape[1] || 0;
  const N = A.promoted_tokens.empty ? 0 : A.promoted_tokens.shape[1] || 0;
  const ids = Array.from(A.feature_ids.data, Number);
  const text = (j) => (j >= 0 && j < strings.length ? strings[j] : "");
  const rawText = (j) => (j >= 0 && j < rawStrings.length ? rawStrings[j] : text(j));

  const search = el("input", "ew-fd-search");
  search.type = "search";
  search.placeholder = "feature index (#12) or label";
  search.setAttribute("aria-label", "search features by index or label");
  search.value = String(get(model, "query", ""));
  const count = el("span", "ew-fd-count");
  controls.appendChild(search);
  controls.appendChild(count);
  if (!F) {
    hint(body, "No features in this dashboard.");
    return {};
  }
  const cards = el("div", "ew-fd-cards");
  cards.setAttribute("role", "list");
  cards.setAttribute("aria-label", "features");
  body.appendChild(cards);
  const more = el("button", "ew-fd-more", "");
  more.type = "button";
  body.appendChild(more);
  const note = String(get(model, "promoted_note", ""));
  const key = legend(strengthScale(0, 1, ctx.theme), { label: `token background: the feature's activation, 0 to ` +
    `the card's largest (${strongWord(ctx.theme)}); the outlined token is the context's own`, format: (v) => formatNumber(v, 2) });
  ctx.setLegend(key);

  let shown = [];
  let limit = PAGE;
  let selected = Number(get(model, "selected_feature", -1));

  const tokenRow = (table, r, j, peak) => {
    const row = el("div", "ew-fd-ctx");
    const value = A[`${table}_values`].data[r * (table === "top" ? K : S) + j];
    const v = el("span", "ew-fd-val", formatNumber(value, 3));
    v.dataset.value = String(value);
    row.appendChild(v);
    const toks = el("span", "ew-tokens");
    const scale = strengthScale(0, peak > 0 ? peak : 1, ctx.theme);
    const size = table === "top" ? K : S;
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
        span.style.color = css(textColorFor(rgb));
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
    let lo = counts.findIndex((c) => c > 0);
    let hi = B - 1 - [...counts].reverse().findIndex((c) => c > 0);
    if (lo < 0) return el("div", "ew-fd-note", "never fires in the dataset");
    const edges = Array.from(A.hist_edges.data, Number);
    const peak = Math.max(...counts);
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
      const y = counts[b] ? Math.max(1, Math.round((h * counts[b]) / peak)) : 0;
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

  const card = (r) => {
    const f = ids[r];
    const c = el("div", "ew-fd-card" + (f === selected ? " ew-selected" : ""));
    c.dataset.feature = String(f);
    c.setAttribute("role", "listitem");
    c.setAttribute("aria-label", `feature ${f}${labels[r] ? ": " + labels[r] : ""}`);
    c.tabIndex = -1;
    const head = el("div", "ew-fd-head");
    head.appendChild(el("span", "ew-fd-index", `#${f}`));
    if (labels[r]) head.appendChild(el("span", "ew-fd-label", labels[r]));
    const fires = Number(A.fire_counts.data[r]);
    const peak = K && Number(A.top_docs.data[r * K]) >= 0 ? A.top_values.data[r * K] : 0;
    const stats = el("span", "ew-fd-stats", `density ${formatPercent(nTokens ? fires / nTokens : 0)} (${fires} of ` +
      `${nTokens} tokens) \u00b7 max ${formatNumber(peak, 3)}`);
    stats.dataset.density = String(nTokens ? fires / nTokens : 0);
    head.appendChild(stats);
    c.addEventListener("click", () => select(f, c));
    const summary = () => [`feature ${f}`, labels[r] ? ["label", labels[r]] : null, ["density", formatPercent(nTokens ? fires / nTokens : 0)],
      ["fires on", `${fires} of ${nTokens} tokens`], ["max", formatNumber(peak, 4)]];
    c.addEventListener("focus", () => tooltip.show(summary(), c));
    c.addEventListener("blur", () => tooltip.hide());
    c.appendChild(head);
    c.appendChild(histogram(r));
    c.appendChild(el("div", "ew-fd-sub", `top ${K} contexts`));
    const top = el("div", "ew-fd-top");
    for (let j = 0; j < K; j++) if (Number(A.top_docs.data[r * K + j]) >= 0) top.appendChild(tokenRow("top", r, j, peak));
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
        for (let j = from; j < to; j++) band.appendChild(tokenRow("sample", r, j, peak));
        c.appendChild(band);
      }
    }
    if (N) {
      c.appendChild(logits("promoted", r, "promotes"));
      c.appendChild(logits("suppressed", r, "suppresses"));
    }
    return c;
  };

  const select = (f, c) => { // a second click / Enter on the selected card clears the selection
    selected = selected === f ? -1 : f;
    for (const other of cards.querySelectorAll(".ew-fd-card.ew-selected")) other.classList.remove("ew-selected");
    if (c && selected === f) c.classList.add("ew-selected");
    commit(model, "selected_feature", selected);
  };

  const render = () => {
    shown = [];
    for (let r = 0; r < F; r++) if (matches(search.value, ids[r], labels[r])) shown.push(r);
    cards.textContent = "";
    for (const r of shown.slice(0, limit)) cards.appendChild(card(r));
    const first = cards.querySelector(".ew-fd-card.ew-selected") || cards.firstChild;
    if (first) first.tabIndex = 0;
    count.textContent = `${shown.length} of ${F} features` + (shown.length > limit ? `, first ${limit} shown` : "");
    more.hidden = shown.length <= limit;
    more.textContent = `show ${Math.min(PAGE, shown.length - limit)} more`;
    if (note && N) {
      const n = el("div", "ew-fd-note", note);
      cards.appendChild(n);
    }
  };
  search.addEventListener("input", () => {
    limit = PAGE;
    render();
  });
  more.addEventListener("click", () => {
    limit += PAGE;
    render();
  });
  cards.addEventListener("keydown", (ev) => {
    const list = [...cards.querySelectorAll(".ew-fd-card")];
    const i = list.indexOf(ev.target);
    if (i < 0 || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    let j = i;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") j = Math.min(list.length - 1, i + 1);
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") j = Math.max(0, i - 1);
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = list.length - 1;
    else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      select(Number(list[i].dataset.feature), list[i]);
      return;
    } else return;
    ev.preventDefault();
    list[i].tabIndex = -1;
    list[j].tabIndex = 0;
    list[j].focus();
  });
  render();
  return {
    onTrait: {
      selected_feature: () => {
        selected = Number(get(model, "selected_feature", -1));
        for (const c of cards.querySelectorAll(".ew-fd-card")) c.classList.toggle("ew-selected", Number(c.dataset.feature) === selected);
      },
    },
  };
}

export function render({ model, el: host }) {
  return mountView(model, host, {
    name: "feature_dashboard",
    traits: ["feature_ids", "labels", "strings", "raw_strings", "fire_counts", "n_tokens", "n_docs", "top_values",
      "top_docs", "top_positions", "top_tokens", "top_acts", "sample_values", "sample_docs", "sample_positions",
      "sample_tokens", "sample_acts", "hist", "hist_edges", "promoted_tokens", "promoted_values", "suppressed_tokens",
      "suppressed_values", "promoted_note", "query"],
    localTraits: ["selected_feature"],
    build,
  });
}

export default { render };
