// RankGrid's metric switcher and first_layer row, and LensComparison (linked hover, one scale, summaries).
// Expected colours are the palette constants of lib/colors.js written out by hand: viridis(0) = #440154,
// viridis(1) = #fde725, cividis(0) = #00224e, cividis(1) = #fee838.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import rankGrid from "../src/rank_grid.js";
import lensCompare from "../src/lens_compare.js";

let w;
let canvasLog;
beforeEach(() => {
  w = setupDom();
  canvasLog = installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on"]; // 3 positions
const VIRIDIS_0 = "rgb(68, 1, 84)";
const VIRIDIS_1 = "rgb(253, 231, 37)";
const CIVIDIS_0 = "rgb(0, 34, 78)";
const CIVIDIS_1 = "rgb(254, 232, 56)";

function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  const root = el.querySelector(".ew-root");
  return { model, el, cleanup, root, tip: () => (root.querySelector(".ew-tooltip").hidden ? null : root.querySelector(".ew-tooltip").textContent) };
}
const cell = (root, r, c, scope = root) => scope.querySelector(`.ew-cell[data-r="${r}"][data-c="${c}"]`);
const bgOf = (d) => d.style.backgroundColor;
const buttons = (root) => [...root.querySelectorAll(".ew-seg-btn")];

// 2 layers x 3 positions
function gridState(extra = {}) {
  return {
    tokens: TOKENS, raw_tokens: TOKENS, n_input_tokens: 2, title: "", theme: "light", layer_labels: ["L0", "L1"],
    ranks: arr([50, 3, 1, 1, 1, 2], "uint8", [2, 3]),
    topk_vocab: [], topk_index: arr([], "int32", [0, 0, 0]), topk_probs: arr([], "float32", [0, 0, 0]), selected_cell: [],
    target_probs: arr([0, 0.25, 0.5, 1, 0.75, 0.5], "float32", [2, 3]),
    kl_to_final: arr([2, 0.5, 1, 0, 0, 0], "float32", [2, 3]),
    entropy: arr([], "float32", [0, 0]),
    metric: "rank",
    first_layer: arr([1, 0, -1], "int8", [3]), first_layer_k: 3,
    ...extra,
  };
}

test("rank_grid: the switcher shows only metrics with data; clicking one recolours, swaps legend and text, writes metric", () => {
  const m = mount(rankGrid, gridState());
  const bs = buttons(m.root);
  assert.deepEqual(bs.map((b) => b.dataset.metric), ["rank", "prob", "kl"], "no entropy button: entropy not given");
  assert.deepEqual(bs.map((b) => b.getAttribute("aria-pressed")), ["true", "false", "false"]);
  assert.equal(m.root.querySelector(".ew-seg").getAttribute("role"), "group");
  assert.equal(m.root.querySelector(".ew-legend").dataset.metric, "rank");
  const grid = m.root.querySelector(".ew-grid");
  assert.equal(cell(m.root, 0, 0).textContent, "50");
  assert.equal(bgOf(cell(m.root, 0, 2)), VIRIDIS_0, "rank 1 darkest");
  fire(w, bs[1], "click");
  assert.deepEqual(m.model.sets("metric"), ["prob"]);
  assert.equal(m.model.saves(), 1);
  assert.equal(m.root.querySelector(".ew-grid"), grid, "recoloured in place, no rebuild");
  assert.equal(bgOf(cell(m.root, 1, 0)), VIRIDIS_0, "p = 1: darkest");
  assert.equal(bgOf(cell(m.root, 0, 0)), VIRIDIS_1, "p = 0: lightest");
  assert.equal(cell(m.root, 0, 1).textContent, "25%");
  assert.equal(cell(m.root, 1, 0).textContent, "100%");
  const leg = m.root.querySelector(".ew-legend");
  assert.equal(leg.dataset.metric, "prob");
  assert.match(leg.querySelector(".ew-legend-label").textContent, /probability of the next token/);
  assert.equal(leg.querySelector(".ew-legend-min").textContent, "0%");
  assert.equal(leg.querySelector(".ew-legend-max").textContent, "100%");
  assert.match(leg.getAttribute("aria-label"), /linear, high probability darkest/);
  assert.deepEqual(buttons(m.root).map((b) => b.getAttribute("aria-pressed")), ["false", "true", "false"]);
  // KL: 0 .. max over the grid (2 nats), 0 darkest
  fire(w, bs[2], "click");
  assert.deepEqual(m.model.sets("metric"), ["prob", "kl"]);
  assert.equal(bgOf(cell(m.root, 0, 0)), CIVIDIS_1, "KL = max: lightest");
  assert.equal(bgOf(cell(m.root, 1, 1)), CIVIDIS_0, "KL = 0: darkest");
  assert.equal(cell(m.root, 0, 1).textContent, "0.5");
  assert.match(m.root.querySelector(".ew-legend-label").textContent, /KL\(p_final ‖ p_layer\), nats/);
  assert.equal(m.root.querySelector(".ew-legend-max").textContent, "2");
  // clicking the current metric again writes nothing
  fire(w, buttons(m.root)[2], "click");
  assert.equal(m.model.saves(), 2);
});

test("rank_grid: metric set from Python updates the view; unknown or absent metrics fall back to rank", () => {
  const m = mount(rankGrid, gridState());
  m.model.set("metric", "kl");
  assert.equal(m.root.querySelector(".ew-legend").dataset.metric, "kl");
  assert.equal(bgOf(cell(m.root, 0, 0)), CIVIDIS_1);
  assert.equal(buttons(m.root)[2].getAttribute("aria-pressed"), "true");
  m.model.set("metric", "entropy"); // no data: shown as rank
  assert.equal(m.root.querySelector(".ew-legend").dataset.metric, "rank");
  assert.equal(cell(m.root, 0, 0).textContent, "50");
  const fresh = mount(rankGrid, gridState({ metric: "prob" }));
  assert.equal(fresh.root.querySelector(".ew-legend").dataset.metric, "prob", "the initial metric comes from the model");
  assert.equal(fresh.model.saves(), 0);
});

test("rank_grid: the switcher is one tab stop; arrow keys move between buttons, Enter chooses", () => {
  const m = mount(rankGrid, gridState());
  const bs = buttons(m.root);
  assert.deepEqual(bs.map((b) => b.tabIndex), [0, -1, -1]);
  bs[0].focus();
  fire(w, bs[0], "keydown", { key: "ArrowRight" });
  assert.equal(document.activeElement, bs[1]);
  fire(w, bs[1], "keydown", { key: "End" });
  assert.equal(document.activeElement, bs[2]);
  fire(w, bs[2], "keydown", { key: "ArrowRight" });
  assert.equal(document.activeElement, bs[0], "wraps around");
  assert.equal(m.model.saves(), 0, "moving focus chooses nothing");
  // a native <button> turns Enter / Space into a click
  assert.equal(bs[1].tagName, "BUTTON");
  assert.equal(bs[1].type, "button");
});

test("rank_grid: the tooltip lists every metric of the cell, first_layer and the top-k", () => {
  const m = mount(rankGrid, gridState({
    entropy: arr([3, 2, 1, 0.5, 0.25, 0], "float32", [2, 3]),
    topk_vocab: [" a", " b"], topk_index: arr([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], "int32", [2, 3, 2]),
    topk_probs: arr(new Array(12).fill(0.4), "float32", [2, 3, 2]),
  }));
  assert.equal(buttons(m.root).length, 4);
  fire(w, cell(m.root, 0, 1), "mouseover");
  const tip = m.tip();
  assert.match(tip, /rank3/);
  assert.match(tip, /p\(target\)25%/);
  assert.match(tip, /KL to final0\.5 nats/);
  assert.match(tip, /entropy2 nats/);
  assert.match(tip, /found at \(top 3\)L0/);
  assert.match(tip, /top 2 at L0/);
  assert.match(tip, /40%/);
  assert.match(cell(m.root, 0, 1).getAttribute("aria-label"), /rank 3, p\(target\) 25%, KL to final 0\.5 nats, entropy 2 nats, found at \(top 3\) L0/);
  // the current metric comes first
  fire(w, buttons(m.root)[3], "click");
  fire(w, cell(m.root, 1, 0), "mouseover");
  assert.match(m.tip(), /L1position0.*entropy0\.5 nats.*rank1/);
});

test("rank_grid: first_layer row under the grid, and a mark on that cell of each column", () => {
  const m = mount(rankGrid, gridState());
  const row = m.root.querySelector(".ew-found-row");
  assert.ok(row);
  assert.deepEqual([...row.children].map((s) => s.textContent), ["L1", "L0", "\u2013"]);
  assert.ok(row.children[2].classList.contains("ew-never"));
  assert.equal(m.root.querySelector(".ew-found-title").textContent, "found at (top 3)");
  const marked = [...m.root.querySelectorAll(".ew-cell.ew-found")].map((d) => [d.dataset.r, d.dataset.c]);
  assert.deepEqual(marked, [["0", "1"], ["1", "0"]]);
  fire(w, row.children[2], "mouseover");
  assert.match(m.tip(), /found at \(top 3\)never/);
  assert.ok(m.root.querySelectorAll(".ew-axis-bottom .ew-tok")[2].classList.contains("ew-active"), "column highlighted");
  fire(w, row, "mouseleave");
  assert.equal(m.tip(), null);
  // the marks survive a change of metric
  fire(w, buttons(m.root)[1], "click");
  assert.equal(m.root.querySelectorAll(".ew-cell.ew-found").length, 2);
});

test("rank_grid without the new traits: no switcher, no found row, rank legend (older states)", () => {
  const m = mount(rankGrid, viewStates(["a", "b", "c", "d"]).rank_grid);
  assert.equal(m.root.querySelector(".ew-seg"), null);
  assert.equal(m.root.querySelector(".ew-controls").hidden, true);
  assert.equal(m.root.querySelector(".ew-found-row"), null);
  assert.equal(m.root.querySelector(".ew-legend").dataset.metric, "rank");
  assert.match(m.root.querySelector(".ew-legend").getAttribute("aria-label"), /log scale, rank 1 brightest/); // this state is dark
});

test("rank_grid canvas mode: a change of metric redraws the canvas once and the tooltip follows", () => {
  const L = 10;
  const P = 500;
  const tokens = Array.from({ length: P + 1 }, (_, i) => ` t${i}`);
  const m = mount(rankGrid, {
    ...gridState(), tokens, raw_tokens: tokens, layer_labels: [], first_layer: arr([], "int8", [0]),
    ranks: arr(Array.from({ length: L * P }, (_, i) => 1 + (i % 7)), "uint8", [L, P]),
    target_probs: arr(Array.from({ length: L * P }, (_, i) => (i % 5) / 4), "float32", [L, P]),
    kl_to_final: arr([], "float32", [0, 0]),
  });
  assert.ok(m.root.querySelector(".ew-grid-canvas"));
  const draws = () => canvasLog.filter((c) => c[0] === "putImageData").length;
  const before = draws();
  fire(w, buttons(m.root)[1], "click");
  assert.equal(draws(), before + 1);
  const grid = m.root.querySelector(".ew-grid");
  fire(w, grid, "mousemove", { clientX: 14 * 3 + 2, clientY: 2 }); // [0, 3]: i = 3 -> p = 0.75, rank 4
  assert.match(m.tip(), /p\(target\)75%.*rank4/);
});

// ------------------------------------------------------------------------------------------ LensComparison

// 2 lenses x 2 layers x 3 positions
function lensState(extra = {}) {
  return {
    tokens: TOKENS, raw_tokens: TOKENS, n_input_tokens: 2, title: "", theme: "light", lens_names: ["logit", "tuned"],
    layer_labels: ["L0", "L1"],
    ranks: arr([9, 2, 1, 1, 1, 1, /* tuned */ 2, 1, 30, 1, 1, 1], "uint8", [2, 2, 3]),
    target_probs: arr([0, 0.5, 0.9, 1, 1, 1, 0.4, 0.6, 0, 1, 1, 1], "float32", [2, 2, 3]),
    kl_to_final: arr([3, 1, 0.5, 0, 0, 0, 1, 0.5, 4, 0, 0, 0], "float32", [2, 2, 3]),
    entropy: arr([], "float32", [0, 0, 0]),
    metric: "rank", selected_cell: [],
    summary_top1: arr([1 / 3, 1, 1 / 3, 1], "float32", [2, 2]),
    summary_mean_kl: arr([1.5, 0, 11 / 6, 0], "float32", [2, 2]),
    ...extra,
  };
}
const gridOf = (root, i) => root.querySelector(`.ew-grid[data-lens="${i}"]`);
/** The tooltip's table of lenses as rows of cell texts (header first). */
function tipTable(root) {
  const t = root.querySelector(".ew-tooltip .ew-tt-table");
  const cells = [...t.children].map((c) => c.textContent);
  const n = t.style.gridTemplateColumns.match(/repeat\((\d+)/)[1] * 1 + 1;
  return Array.from({ length: cells.length / n }, (_, r) => cells.slice(r * n, (r + 1) * n));
}

test("lens_compare: one grid per lens on the same columns, hover links the same cell in every grid", () => {
  const m = mount(lensCompare, lensState());
  assert.deepEqual([...m.root.querySelectorAll(".ew-lens-name")].map((d) => d.textContent), ["logit", "tuned"]);
  const g0 = gridOf(m.root, 0);
  const g1 = gridOf(m.root, 1);
  assert.equal(g0.style.width, g1.style.width);
  assert.equal(m.root.querySelectorAll(".ew-axis-top .ew-tok").length, 3, "one token axis shared by the grids");
  fire(w, cell(m.root, 1, 2, g0), "mouseover");
  assert.ok(cell(m.root, 1, 2, g1).classList.contains("ew-linked"), "same (layer, position) marked in lens 2");
  assert.equal(m.root.querySelectorAll(".ew-linked").length, 2);
  assert.match(m.tip(), /lens: logit/);
  assert.deepEqual(tipTable(m.root), [["lens", "rank", "p(target)", "KL (nats)"], ["logit", "1", "100%", "0"], ["tuned", "1", "100%", "0"]]);
  assert.ok(m.root.querySelector(".ew-tt-table .ew-tt-cur").textContent === "rank", "the current metric is marked");
  fire(w, cell(m.root, 0, 2, g1), "mouseover"); // [0, 2]: logit rank 1, p 0.9, KL 0.5; tuned rank 30, p 0, KL 4
  assert.match(m.tip(), /lens: tuned/);
  assert.deepEqual(tipTable(m.root).slice(1), [["logit", "1", "90%", "0.5"], ["tuned", "30", "0%", "4"]]);
  assert.ok(cell(m.root, 0, 2, g0).classList.contains("ew-linked"));
  assert.ok(!cell(m.root, 1, 2, g0).classList.contains("ew-linked"), "the previous mark is cleared");
  assert.ok(m.root.querySelectorAll(".ew-rowlabels")[0].children[0].classList.contains("ew-active"));
  fire(w, g1, "mouseleave");
  assert.equal(m.root.querySelectorAll(".ew-linked").length, 0);
  assert.equal(m.tip(), null);
  assert.equal(m.model.saves(), 0, "hover saves nothing");
});

test("lens_compare: one colour scale for every lens, its domain the max over all lenses", () => {
  const m = mount(lensCompare, lensState());
  const g0 = gridOf(m.root, 0);
  const g1 = gridOf(m.root, 1);
  // rank 2 in both lenses -> the same colour; the legend runs to 30 (the tuned lens's max), not 9
  assert.equal(bgOf(cell(m.root, 0, 1, g0)), bgOf(cell(m.root, 0, 0, g1)));
  assert.equal(m.root.querySelector(".ew-legend-max").textContent, "30");
  assert.equal(bgOf(cell(m.root, 0, 2, g1)), VIRIDIS_1, "the largest rank of all lenses is the lightest");
  // KL: 0 .. 4 (tuned lens)
  fire(w, buttons(m.root)[2], "click");
  assert.deepEqual(m.model.sets("metric"), ["kl"]);
  assert.equal(bgOf(cell(m.root, 0, 2, g1)), CIVIDIS_1);
  assert.equal(bgOf(cell(m.root, 1, 0, g0)), CIVIDIS_0);
  assert.equal(bgOf(cell(m.root, 0, 1, g0)), bgOf(cell(m.root, 0, 0, g1)), "KL 1 in both lenses: one colour");
  assert.equal(m.root.querySelector(".ew-legend-max").textContent, "4");
  assert.equal(cell(m.root, 0, 0, g0).textContent, "3");
  fire(w, cell(m.root, 0, 0, g0), "mouseover");
  assert.deepEqual(tipTable(m.root), [["lens", "KL (nats)", "rank", "p(target)"], ["logit", "3", "9", "0%"], ["tuned", "1", "2", "40%"]],
    "the current metric comes first");
});

test("lens_compare: per-layer summaries next to each grid, with a header naming them", () => {
  const m = mount(lensCompare, lensState());
  const heads = [...m.root.querySelectorAll(".ew-summary-head")].map((h) => [...h.children].map((s) => s.textContent));
  assert.deepEqual(heads, [["mean KL", "top-1"], ["mean KL", "top-1"]]);
  const rows = [...m.root.querySelectorAll(".ew-summary")].map((s) => [...s.children].map((r) => [...r.querySelectorAll(".ew-sbar-val")].map((v) => v.textContent)));
  assert.deepEqual(rows, [[["1.5", "33%"], ["0", "100%"]], [["1.8", "33%"], ["0", "100%"]]]);
  // KL bars are relative to the largest mean KL (11/6), top-1 bars to 1
  const fills = [...m.root.querySelectorAll(".ew-summary")][0].querySelectorAll(".ew-sbar-fill");
  assert.equal(fills[0].style.width, `${((100 * 1.5) / Math.fround(11 / 6)).toFixed(1)}%`);
  assert.equal(fills[1].style.width, "33.3%");
  // without KL the summary has the top-1 column only
  const noKl = mount(lensCompare, lensState({ kl_to_final: arr([], "float32", [0, 0, 0]), summary_mean_kl: arr([], "float32", [0, 0]) }));
  assert.deepEqual([...noKl.root.querySelector(".ew-summary-head").children].map((s) => s.textContent), ["top-1"]);
  assert.deepEqual(buttons(noKl.root).map((b) => b.dataset.metric), ["rank", "prob"]);
});

test("lens_compare: click selects [layer, position] in every grid; Python-side selection and metric reach the view", () => {
  const m = mount(lensCompare, lensState());
  const g1 = gridOf(m.root, 1);
  fire(w, cell(m.root, 1, 0, g1), "click");
  assert.deepEqual(m.model.sets("selected_cell"), [[1, 0]]);
  assert.equal(m.model.saves(), 1);
  assert.deepEqual([...m.root.querySelectorAll(".ew-cell.ew-selected")].map((d) => d.closest(".ew-grid").dataset.lens), ["0", "1"]);
  m.model.set("selected_cell", []);
  assert.equal(m.root.querySelectorAll(".ew-selected").length, 0);
  m.model.set("metric", "prob");
  assert.equal(m.root.querySelector(".ew-legend").dataset.metric, "prob");
  assert.equal(bgOf(cell(m.root, 1, 0, g1)), VIRIDIS_0);
  assert.equal(buttons(m.root)[1].getAttribute("aria-pressed"), "true");
  // keyboard: Enter on a focused cell commits too
  const c = cell(m.root, 0, 1, gridOf(m.root, 0));
  c.focus();
  assert.ok(cell(m.root, 0, 1, g1).classList.contains("ew-linked"), "focus links like hover");
  fire(w, c, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [0, 1]);
});

test("lens_compare canvas mode: the other grids get a linked box at the hovered cell", () => {
  const N = 2;
  const L = 8;
  const P = 300;
  const tokens = Array.from({ length: P + 1 }, (_, i) => ` t${i}`);
  const n = N * L * P;
  const m = mount(lensCompare, {
    ...lensState(), tokens, raw_tokens: tokens, layer_labels: [],
    ranks: arr(Array.from({ length: n }, (_, i) => 1 + (i % 5)), "uint8", [N, L, P]),
    target_probs: arr([], "float32", [0, 0, 0]), kl_to_final: arr([], "float32", [0, 0, 0]),
    summary_top1: arr(new Array(N * L).fill(0.2), "float32", [N, L]), summary_mean_kl: arr([], "float32", [0, 0]),
  });
  const g0 = gridOf(m.root, 0);
  const g1 = gridOf(m.root, 1);
  assert.ok(g0.classList.contains("ew-grid-canvas"));
  fire(w, g0, "mousemove", { clientX: 14 * 7 + 3, clientY: 14 * 2 + 3 });
  const box = g1.querySelector(".ew-grid-linked");
  assert.equal(box.hidden, false);
  assert.equal(box.style.transform, `translate(${7 * 14}px, ${2 * 14}px)`);
  assert.match(m.tip(), /layer 2/);
  fire(w, g0, "mouseleave");
  assert.equal(box.hidden, true);
});
