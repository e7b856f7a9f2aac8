// Per-view behaviour with a fake model: committed selections call set + save_changes with the
// right value; hover and keyboard focus never call save_changes; tooltips show numbers.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, tick, viewStates, installFakeCanvas, loadViews, VIEW_BUNDLES } from "./helpers.js";
import saliency from "../src/saliency.js";
import rankGrid from "../src/rank_grid.js";
import rankWatch from "../src/rank_watch.js";
import layerPredictions from "../src/layer_predictions.js";
import factorExplorer from "../src/factor_explorer.js";
import neuronHeatmap from "../src/neuron_heatmap.js";
import attention from "../src/attention.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
const VIEWS = await loadViews(); // every view of ecco_widgets/views/registry.json
function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root"), tip: () => el.querySelector(".ew-tooltip") };
}
const visibleTip = (m) => (m.tip().hidden ? null : m.tip().textContent);

test("viewStates (helpers.js) has a state for exactly the views of the registry", () => {
  assert.deepEqual(Object.keys(viewStates(TOKENS)).sort(), [...VIEW_BUNDLES].sort());
});

test("every view: styles injected once, theme class, title, cleanup removes root and listeners", () => {
  const states = viewStates(TOKENS);
  for (const [name, view] of Object.entries(VIEWS)) {
    const m = mount(view, { ...states[name], title: `T-${name}`, theme: "dark" });
    assert.equal(m.root.dataset.ewView, name);
    assert.ok(m.root.classList.contains("ew-dark"), name);
    assert.equal(m.root.querySelector(".ew-title").textContent, `T-${name}`);
    assert.ok(m.root.querySelector(".ew-legend"), `${name} has a legend`);
    assert.equal(typeof m.cleanup, "function");
    assert.ok(m.model.listenerCount() > 0);
    m.model.set("theme", "light");
    assert.ok(m.root.classList.contains("ew-light"), `${name} reacts to theme`);
    m.cleanup();
    assert.equal(m.el.querySelector(".ew-root"), null);
    assert.equal(m.model.listenerCount(), 0, `${name} unsubscribed`);
  }
  assert.equal(document.querySelectorAll("style#ew-style-v1").length, 1);
});

test("rank_grid: click and Enter commit selected_cell; hover/focus only show tooltip", async () => {
  const s = viewStates(TOKENS).rank_grid;
  const m = mount(rankGrid, s);
  const grid = m.root.querySelector(".ew-grid");
  assert.ok(grid.classList.contains("ew-grid-dom"));
  const cell = grid.querySelector('[data-r="1"][data-c="2"]');
  // ranks are 1..15 row-major over (3, 5): [1, 2] -> 1 * 5 + 2 + 1 = 8
  assert.equal(cell.textContent, "8");
  fire(w, cell, "mouseover");
  assert.equal(m.model.saves(), 0);
  const tip = visibleTip(m);
  assert.match(tip, /l1/);
  assert.match(tip, /rank8/);
  assert.match(tip, /top 2 at l1/);
  assert.match(tip, /25%/);
  cell.focus();
  assert.equal(m.model.saves(), 0, "focus does not save");
  fire(w, cell, "click");
  assert.deepEqual(m.model.sets("selected_cell"), [[1, 2]]);
  assert.equal(m.model.saves(), 1);
  assert.ok(cell.classList.contains("ew-selected"));
  fire(w, cell, "keydown", { key: "ArrowRight" });
  const next = grid.querySelector('[data-r="1"][data-c="3"]');
  assert.equal(document.activeElement, next);
  assert.match(visibleTip(m), /rank9/);
  fire(w, next, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [1, 3]);
  assert.equal(m.model.saves(), 2);
  fire(w, next, "click");
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [], "clicking the selected cell clears it");
  // Python-side change of the selection updates without a rebuild
  m.model.state.selected_cell = [2, 0];
  m.model.set("selected_cell", [2, 0]);
  assert.ok(grid.querySelector('[data-r="2"][data-c="0"]').classList.contains("ew-selected"));
  assert.equal(m.root.querySelector(".ew-grid"), grid, "same grid element");
  // data change re-renders
  m.model.set("ranks", arr([5, 5, 5, 5, 5, 5, 5, 5, 5, 5], "int32", [2, 5]));
  await tick();
  const g2 = m.root.querySelector(".ew-grid");
  assert.notEqual(g2, grid);
  assert.equal(g2.querySelectorAll(".ew-cell").length, 10);
  assert.equal(m.root.querySelector(".ew-legend-max").textContent, "5");
});

test("rank_grid: axes — output tokens on top, input tokens at the bottom; layer 0 on top", () => {
  const m = mount(rankGrid, viewStates(TOKENS).rank_grid);
  const top = m.root.querySelector(".ew-axis-top");
  const bottom = m.root.querySelector(".ew-axis-bottom");
  assert.deepEqual([...top.children].map((s) => s.title), TOKENS.slice(1));
  assert.deepEqual([...bottom.children].map((s) => s.title), TOKENS.slice(0, -1));
  assert.deepEqual([...m.root.querySelectorAll(".ew-rowlabels span")].map((s) => s.textContent), ["l0", "l1", "l2"]);
  assert.equal(m.root.querySelector('.ew-cell[data-r="0"][data-c="0"]').textContent, "1");
});

test("rank_grid: 48 x 1000 uses one canvas and keyboard commits", () => {
  const L = 48;
  const P = 1000;
  const tokens = Array.from({ length: P + 1 }, (_, i) => ` t${i}`);
  const m = mount(rankGrid, {
    tokens, raw_tokens: tokens, n_input_tokens: 10, layer_labels: [], title: "", theme: "light",
    ranks: arr(Array.from({ length: L * P }, (_, i) => 1 + (i % 3000)), "int32", [L, P]),
    topk_vocab: [], topk_index: arr([], "int32", [0]), topk_probs: arr([], "float32", [0]), selected_cell: [],
  });
  const grid = m.root.querySelector(".ew-grid");
  assert.ok(grid.classList.contains("ew-grid-canvas"));
  assert.equal(m.root.querySelectorAll("canvas").length, 1);
  assert.equal(m.root.querySelectorAll(".ew-cell").length, 0);
  fire(w, grid, "mousemove", { clientX: 14 * 10 + 2, clientY: 14 * 5 + 2 });
  assert.match(visibleTip(m), /layer 5/);
  assert.equal(m.model.saves(), 0);
  grid.focus();
  fire(w, grid, "keydown", { key: "ArrowDown" });
  fire(w, grid, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell"), [[1, 0]]);
  assert.equal(m.model.saves(), 1);
});

test("saliency: hover a target colours the inputs before it; click/Enter commit selected_token; method switcher", () => {
  const s = viewStates(TOKENS).saliency; // targets [4, 5], methods a (positive), b (negative)
  const m = mount(saliency, s);
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  assert.equal(spans.length, 6);
  // default: last target shown
  assert.ok(spans[5].classList.contains("ew-active"));
  fire(w, spans[4], "mouseover");
  assert.ok(spans[4].classList.contains("ew-active"));
  for (let p = 0; p < 4; p++) assert.notEqual(spans[p].style.backgroundColor, "", `input ${p} coloured`);
  assert.equal(spans[5].style.backgroundColor, "", "after the target: not coloured");
  assert.ok(spans[5].classList.contains("ew-dim"));
  // detailed style shows the value of each input under it
  assert.equal(spans[0].querySelector(".ew-bar-val").textContent, "0.17"); // (0 + 1) / 6, 2 significant digits
  assert.match(visibleTip(m), /explained token 4/);
  fire(w, spans[1], "mouseover");
  assert.match(visibleTip(m), /attribution → 40\.333/);
  fire(w, spans[1], "click");
  assert.equal(m.model.saves(), 0, "hover and click on a non-target do not save");
  fire(w, spans[4], "click");
  assert.deepEqual(m.model.sets("selected_token"), [4]);
  assert.equal(m.model.saves(), 1);
  assert.ok(spans[4].classList.contains("ew-selected"));
  spans[5].focus();
  fire(w, spans[5], "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_token").at(-1), 5);
  assert.equal(m.model.saves(), 2);
  // method switcher
  const sel = m.root.querySelector("select.ew-method");
  assert.deepEqual([...sel.options].map((o) => o.textContent), ["a", "b"]);
  sel.value = "b";
  fire(w, sel, "change");
  assert.deepEqual(m.model.sets("method"), ["b"]);
  assert.equal(m.model.saves(), 3);
  assert.equal(m.root.querySelector(".ew-legend-mid").textContent, "0", "negative values -> diverging legend");
});

test("saliency minimal style has no bars; single method has no select", () => {
  const s = viewStates(TOKENS).saliency;
  const m = mount(saliency, { ...s, saliency_style: "minimal", methods: ["a"], attributions: arr(new Array(2 * 6).fill(0.5), "float32", [1, 2, 6]) });
  assert.equal(m.root.querySelectorAll(".ew-bar").length, 0);
  assert.equal(m.root.querySelector("select"), null);
  assert.match(m.root.querySelector(".ew-controls").textContent, /method: a/);
});

test("saliency causal=false (bidirectional): every token, before, at and after the target, is coloured", () => {
  const s = viewStates(TOKENS).saliency;
  const vals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
  const m = mount(saliency, { ...s, causal: false, targets: arr([1, 2], "int32", [2]), methods: ["a"],
    attributions: arr(vals, "float32", [1, 2, 6]) });
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  fire(w, spans[1], "mouseover");
  for (let p = 0; p < 6; p++) {
    assert.notEqual(spans[p].style.backgroundColor, "", `token ${p} coloured`);
    assert.ok(!spans[p].classList.contains("ew-dim"), `token ${p} not dimmed`);
  }
  assert.equal(spans[5].querySelector(".ew-bar-val").textContent, "0.6");
  assert.match(visibleTip(m), /strongest inputs/);
  fire(w, spans[4], "mouseover");
  assert.match(visibleTip(m), /attribution → 1/);
  // the default (causal) still leaves the tokens after the target uncoloured
  const c = mount(saliency, { ...s, targets: arr([1, 2], "int32", [2]), methods: ["a"], attributions: arr(vals, "float32", [1, 2, 6]) });
  const cs = [...c.root.querySelectorAll(".ew-tokens > .ew-tok")];
  fire(w, cs[1], "mouseover");
  assert.notEqual(cs[0].style.backgroundColor, "");
  for (let p = 2; p < 6; p++) assert.equal(cs[p].style.backgroundColor, "", `causal: token ${p} not coloured`);
});

test("saliency completeness_error: tooltip shows it, rows above 1 % are marked, per method", () => {
  const s = viewStates(TOKENS).saliency; // targets [4, 5], methods a, b
  // method a: target 4 converged (0.5 %), target 5 not (20 %); method b has none (NaN)
  const m = mount(saliency, { ...s, completeness_error: arr([0.005, 0.2, NaN, NaN], "float32", [2, 2]) });
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  assert.ok(spans[5].classList.contains("ew-unconverged"));
  assert.ok(!spans[4].classList.contains("ew-unconverged"));
  fire(w, spans[5], "mouseover");
  assert.match(visibleTip(m), /completeness error20\.0 %/);
  assert.match(visibleTip(m), /not converged/);
  fire(w, spans[4], "mouseover");
  assert.match(visibleTip(m), /completeness error0\.50 %/);
  assert.doesNotMatch(visibleTip(m), /not converged/);
  m.model.set("method", "b");
  assert.ok(!spans[5].classList.contains("ew-unconverged"), "method b has no completeness error");
  fire(w, spans[5], "mouseover");
  assert.doesNotMatch(visibleTip(m), /completeness/);
  // without the trait (older state, other methods): nothing is marked
  const plain = mount(saliency, s);
  assert.equal(plain.root.querySelectorAll(".ew-unconverged").length, 0);
});

test("factor_explorer: hover isolates a factor, leaving restores, click/Enter pin selected_factor", () => {
  const s = viewStates(TOKENS).factor_explorer;
  const m = mount(factorExplorer, s);
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  const rows = [...m.root.querySelectorAll(".ew-factor")];
  assert.equal(rows.length, 3);
  assert.equal(m.root.querySelectorAll("svg.ew-spark").length, 3);
  const before = spans.map((x) => x.style.backgroundColor);
  assert.match(m.root.querySelector(".ew-legend").textContent, /dominant factor/);
  fire(w, rows[1].querySelector("svg"), "mouseover");
  assert.ok(rows[1].classList.contains("ew-active"));
  assert.match(m.root.querySelector(".ew-legend-label").textContent, /f1/);
  const isolated = spans.map((x) => x.style.backgroundColor);
  assert.notDeepEqual(isolated, before);
  assert.equal(m.model.saves(), 0);
  fire(w, m.root.querySelector(".ew-factor-list"), "mouseleave");
  assert.deepEqual(spans.map((x) => x.style.backgroundColor), before, "leaving restores");
  fire(w, rows[2], "click");
  assert.deepEqual(m.model.sets("selected_factor"), [2]);
  assert.equal(m.model.saves(), 1);
  assert.ok(rows[2].classList.contains("ew-selected"));
  assert.match(m.root.querySelector(".ew-legend-label").textContent, /f2/, "pinned factor colours the tokens");
  rows[0].focus();
  assert.match(visibleTip(m), /max/);
  fire(w, rows[0], "keydown", { key: "ArrowDown" });
  assert.equal(document.activeElement, rows[1]);
  fire(w, rows[1], "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_factor").at(-1), 1);
  assert.equal(m.model.saves(), 2);
  fire(w, spans[3], "mouseover");
  assert.match(visibleTip(m), /f1/);
});

test("neuron_heatmap: hover shows value, click/Enter commit selected_neuron", () => {
  const s = viewStates(TOKENS).neuron_heatmap;
  const m = mount(neuronHeatmap, s);
  const cell = m.root.querySelector('.ew-cell[data-r="2"][data-c="3"]');
  fire(w, cell, "mouseover");
  const v = Math.fround(Math.sin(2 * 6 + 3));
  assert.match(visibleTip(m), new RegExp(`activation${String(Number(v.toPrecision(3))).replace(".", "\\.")}`));
  assert.equal(m.model.saves(), 0);
  fire(w, cell, "click");
  assert.deepEqual(m.model.sets("selected_neuron"), [2]);
  assert.equal(m.model.saves(), 1);
  cell.focus();
  fire(w, cell, "keydown", { key: "ArrowUp" });
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_neuron").at(-1), 1);
  assert.equal(m.model.saves(), 2);
  assert.equal(m.root.querySelector(".ew-legend-mid").textContent, "0", "diverging legend");
});

test("attention: hover a query colours the keys; click/Enter commit selected_token; heads as canvases", () => {
  const s = viewStates(TOKENS).attention;
  const m = mount(attention, s);
  assert.equal(m.root.querySelectorAll(".ew-head canvas").length, 2);
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  assert.ok(spans.every((x) => x.style.backgroundColor === ""), "nothing selected: no colour");
  fire(w, spans[3], "mouseover");
  assert.equal(spans[0].style.backgroundColor, "", "the first token is set aside by default");
  assert.ok(spans[0].classList.contains("ew-excluded"));
  for (let k = 1; k < 3; k++) assert.notEqual(spans[k].style.backgroundColor, "", `key ${k} coloured`);
  assert.equal(spans[5].style.backgroundColor, "", "future keys not coloured");
  assert.match(visibleTip(m), /query 3/);
  assert.match(visibleTip(m), /0\.25/);
  assert.equal(m.model.saves(), 0);
  fire(w, spans[3], "click");
  assert.deepEqual(m.model.sets("selected_token"), [3]);
  assert.equal(m.model.saves(), 1);
  spans[3].focus();
  fire(w, spans[3], "keydown", { key: "ArrowRight" });
  fire(w, spans[4], "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_token").at(-1), 4);
  assert.equal(m.model.saves(), 2);
  const head = m.root.querySelector(".ew-head");
  fire(w, head, "click");
  assert.ok(head.classList.contains("ew-active"), "click on a head colours by that head (local only)");
  assert.equal(m.model.saves(), 2);
});

test("rank_watch: numbers on hover and focus; no selection trait, so nothing is saved", () => {
  const s = viewStates(TOKENS).rank_watch;
  const m = mount(rankWatch, s);
  const cells = m.root.querySelectorAll(".ew-cell");
  assert.equal(cells.length, 9);
  assert.equal(cells[4].textContent, "5");
  fire(w, cells[4], "mouseover");
  assert.match(visibleTip(m), /rank5/);
  cells[4].focus();
  fire(w, cells[4], "keydown", { key: "ArrowRight" });
  assert.match(visibleTip(m), /rank6/);
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  fire(w, cells[0], "click");
  assert.equal(m.model.saves(), 0);
  assert.ok(m.root.querySelectorAll(".ew-context .ew-tok")[5].classList.contains("ew-active"), "position highlighted");
});

test("layer_predictions: bars per layer, numbers on hover and focus; nothing saved", () => {
  const s = viewStates(TOKENS).layer_predictions;
  const m = mount(layerPredictions, s);
  const items = [...m.root.querySelectorAll(".ew-lp-item")];
  assert.equal(items.length, 9);
  assert.equal(items[1].querySelector(".ew-lp-bar").style.width, "20.0%");
  assert.equal(items[1].querySelector(".ew-lp-pct").textContent, "20%");
  fire(w, items[2], "mouseover");
  assert.match(visibleTip(m), /probability30%/);
  items[0].focus();
  fire(w, items[0], "keydown", { key: "ArrowDown" });
  assert.equal(document.activeElement, items[3], "down = same rank, next layer");
  assert.match(visibleTip(m), /probability40%/);
  fire(w, items[3], "keydown", { key: "Enter" });
  fire(w, items[3], "click");
  assert.equal(m.model.saves(), 0);
});

test("saliency baselines: the current method's baseline is named next to it and in the tooltip", () => {
  const s = viewStates(TOKENS).saliency; // targets [4, 5], methods a, b
  const m = mount(saliency, { ...s, baselines: ["zero, positions 0 kept", ""] });
  const note = m.root.querySelector(".ew-baseline");
  assert.equal(note.textContent, "baseline: zero, positions 0 kept");
  assert.equal(note.hidden, false);
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  fire(w, spans[5], "mouseover");
  assert.match(visibleTip(m), /baselinezero, positions 0 kept/);
  m.model.set("method", "b");
  assert.equal(note.hidden, true, "method b has no baseline");
  fire(w, spans[4], "mouseover");
  assert.match(visibleTip(m), /methodb/);
  assert.doesNotMatch(visibleTip(m), /baseline/);
  const plain = mount(saliency, s); // older state without the trait
  assert.equal(plain.root.querySelector(".ew-baseline").hidden, true);
});
