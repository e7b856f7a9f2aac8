// Issue 14 (points 3, 4, 5, 7): the neuron heatmap's labelled columns and robust scale, the attention sink set
// aside (heatmap, attention toggle, factor explorer legend), the factor explorer's isolation and dominant factors,
// the compact layer predictions with a layer choice.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import neuronHeatmap, { scaleLimit } from "../src/neuron_heatmap.js";
import factorExplorer, { dominantFactors, shade, stackBar } from "../src/factor_explorer.js";
import layerPredictions from "../src/layer_predictions.js";
import attention, { headImage, headMaxOf } from "../src/attention.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  view.render({ model, el });
  return { model, el, root: el.querySelector(".ew-root") };
}

// a sink: 190 at token 0, everything else within +-3
const sinkActs = () => {
  const v = Array.from({ length: 2 * 6 }, (_, i) => ((i % 6) - 2.5) * (i < 6 ? 1 : -1.2));
  v[0] = 190;
  return arr(v, "float32", [2, 6]);
};

test("scaleLimit: max |v| over the columns from `first` on", () => {
  assert.equal(scaleLimit([190, 1, -2, 3, -4, 0.5], 3, 0), 190);
  assert.equal(scaleLimit([190, 1, -2, 3, -4, 0.5], 3, 1), 4);
});

test("neuron_heatmap: a token label per column, the sink set aside from the scale and named in the legend", () => {
  const s = { ...viewStates(TOKENS).neuron_heatmap, activations: sinkActs() };
  const m = mount(neuronHeatmap, s);
  const labels = [...m.root.querySelectorAll(".ew-heat-axis > .ew-tok")];
  assert.deepEqual(labels.map((l) => l.style.width), Array(6).fill("34px"), "one label per 34 px column");
  assert.equal(labels[1].textContent.includes("cat"), true);
  const lg = m.root.querySelector(".ew-legend");
  assert.equal(lg.querySelector(".ew-legend-max").textContent, "3"); // 2.5 * 1.2, not 190
  assert.match(lg.textContent, /first token "The" set aside/);
  assert.match(lg.textContent, /up to 190/);
  const sink = m.root.querySelector('.ew-cell[data-r="0"][data-c="0"]');
  const top = m.root.querySelector('.ew-cell[data-r="1"][data-c="0"]'); // 3.0 = the scale's end
  fire(w, sink, "mouseover");
  assert.match(m.el.querySelector(".ew-tooltip").textContent, /beyond the scale/);
  assert.notEqual(sink.style.backgroundColor, "");
  void top;
  const off = mount(neuronHeatmap, { ...s, exclude_first: false });
  assert.equal(off.root.querySelector(".ew-legend-max").textContent, "190");
  assert.doesNotMatch(off.root.querySelector(".ew-legend").textContent, /set aside/);
});

test("neuron_heatmap: focus_token outlines its column and names its label", () => {
  const m = mount(neuronHeatmap, { ...viewStates(TOKENS).neuron_heatmap, focus_token: 4 });
  const mark = m.root.querySelector(".ew-heat-focus-col");
  assert.equal(mark.style.left, `${4 * 34}px`);
  assert.ok(m.root.querySelectorAll(".ew-heat-axis > .ew-tok")[4].classList.contains("ew-heat-focus"));
});

test("factor_explorer: hover dims the other sparklines; each sparkline in its factor's colour with a y scale", () => {
  const m = mount(factorExplorer, viewStates(TOKENS).factor_explorer);
  const list = m.root.querySelector(".ew-factor-list");
  const strokes = [...m.root.querySelectorAll(".ew-spark-line")].map((l) => l.style.stroke);
  assert.equal(new Set(strokes).size, 3, `three colours, got ${strokes}`);
  assert.ok(strokes.every((x) => x !== ""));
  const ys = [...m.root.querySelectorAll(".ew-spark-y")];
  assert.equal(ys.length, 3);
  assert.deepEqual([...ys[0].children].map((c) => c.textContent), ["0.8", "0"]);
  const rows = [...m.root.querySelectorAll(".ew-factor")];
  fire(w, rows[1], "mouseover");
  assert.ok(list.classList.contains("ew-isolating"));
  assert.ok(rows[1].classList.contains("ew-active") && !rows[0].classList.contains("ew-active"));
  fire(w, list, "mouseleave");
  assert.ok(!list.classList.contains("ew-isolating"));
});

test("dominantFactors, shade, stackBar", () => {
  assert.deepEqual(dominantFactors((k) => [0.2, 0.9, 0.5][k], 3), [[1, 0.9], [2, 0.5]]);
  assert.deepEqual(dominantFactors((k) => [0, 0, 0][k], 3), []);
  assert.deepEqual(dominantFactors((k) => [0.4, 0.9, 0.5, 0.3][k], 4, 2), [[1, 0.9], [2, 0.5]]);
  assert.deepEqual(shade([0, 0, 0], 1), [0, 0, 0]);
  assert.deepEqual(shade([0, 0, 0], 0), [217, 217, 217]);
  assert.equal(stackBar([["red", 3], ["blue", 1]]), "linear-gradient(to right, red 0.0% 75.0%, blue 75.0% 100.0%)");
});

test("factor_explorer: tokens coloured by their dominant factors at once; excluded tokens hatched and named", () => {
  // token 1: factor 0 strong, factor 2 half; token 3: factor 1 alone
  const f = [0, 1, 0, 0, 0, 0.2, 0, 0, 0, 1, 0, 0, 0, 0.5, 0, 0, 0, 0.1];
  const m = mount(factorExplorer, { ...viewStates(TOKENS).factor_explorer, factors: arr(f, "float32", [3, 6]), excluded_tokens: [0] });
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  assert.match(spans[1].style.backgroundImage, /linear-gradient/);
  assert.equal((spans[1].style.backgroundImage.match(/rgb|#/g) || []).length, 2, "two factors in token 1's bar");
  assert.equal(spans[0].style.backgroundColor, "");
  assert.ok(spans[0].classList.contains("ew-excluded"));
  assert.match(m.root.querySelector(".ew-legend").textContent, /token 0 "The" left out of the factorisation/);
});

test("layer_predictions: one compact line per layer; `layers` and the picker choose the layers shown", () => {
  const s = viewStates(TOKENS).layer_predictions; // 3 layers x 3
  const m = mount(layerPredictions, { ...s, layers: [0, 2] });
  const lines = [...m.root.querySelectorAll(".ew-lp-line")];
  assert.equal(lines.length, 3);
  assert.deepEqual(lines.map((l) => l.hidden), [false, true, false]);
  assert.ok(m.root.querySelector(".ew-lp-table").classList.contains("ew-lp-compact"));
  const pick = m.root.querySelector("select.ew-lp-pick");
  pick.value = "last 8";
  fire(w, pick, "change");
  assert.deepEqual(lines.map((l) => l.hidden), [false, true, false]);
  const all = mount(layerPredictions, s);
  const p2 = all.root.querySelector("select.ew-lp-pick");
  p2.value = "every 2nd";
  fire(w, p2, "change");
  assert.deepEqual([...all.root.querySelectorAll(".ew-lp-line")].map((l) => l.hidden), [false, true, false]);
  assert.equal(all.model.saves(), 0);
});

test("headMaxOf / headImage: key 0 left out of the scale and drawn grey while set aside", () => {
  // 1 head, 2 x 2: query 0 -> key 0 = 1; query 1 -> 0.9 / 0.1
  const d = new Float32Array([1, 0, 0.9, 0.1]);
  assert.equal(headMaxOf(d, 0, 2, 0), 1);
  assert.equal(headMaxOf(d, 0, 2, 1), Math.fround(0.1));
  const img = headImage(d, 0, 2, 2, headMaxOf(d, 0, 2, 1), true);
  assert.deepEqual([...img.slice(0, 4)], [160, 160, 160, 255]);
  const plain = headImage(d, 0, 2, 2, 1, false);
  assert.notDeepEqual([...plain.slice(0, 4)], [160, 160, 160, 255]);
  assert.deepEqual([...img.slice(12, 15)], [...headImage(d, 0, 2, 2, 0.1, false).slice(12, 15)], "0.1 at the top of the scale");
});

test("attention: the sink toggle is on by default, named in the legend, and writes exclude_first back", () => {
  const m = mount(attention, viewStates(TOKENS).attention);
  const btn = m.root.querySelector("button.ew-exclude-first");
  assert.equal(btn.getAttribute("aria-pressed"), "true");
  assert.match(m.root.querySelector(".ew-legend").textContent, /first token "The" set aside/);
  const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
  fire(w, spans[3], "mouseover");
  assert.equal(spans[0].style.backgroundColor, "");
  fire(w, btn, "click");
  assert.equal(btn.getAttribute("aria-pressed"), "false");
  assert.deepEqual(m.model.sets("exclude_first"), [false]);
  fire(w, spans[3], "mouseover");
  assert.notEqual(spans[0].style.backgroundColor, "", "key 0 coloured again");
  assert.doesNotMatch(m.root.querySelector(".ew-legend").textContent, /set aside/);
  m.model.set("exclude_first", true);
  assert.equal(btn.getAttribute("aria-pressed"), "true", "a value set from Python updates the view");
});

test("layer_predictions: a chip's label names its place as an ordinal ('3rd prediction'), not 'top 3'", () => {
  const s = viewStates(TOKENS).layer_predictions;
  const m = mount(layerPredictions, s);
  const chips = [...m.root.querySelectorAll(".ew-lp-chip")];
  const labels = chips.map((c) => c.getAttribute("aria-label"));
  assert.ok(labels.some((l) => l.includes("1st prediction")), labels[0]);
  assert.ok(labels.some((l) => l.includes("3rd prediction")), labels.join(" | "));
  assert.ok(!labels.some((l) => /top \d/.test(l)));
});

test("neuron_heatmap: scaleLimit with a percentile is numpy's inverted_cdf percentile of |v| over the scale's columns", async () => {
  const { scaleLimit } = await import("../src/neuron_heatmap.js");
  // 2 rows x 3 columns; first = 1 leaves column 0 out: |v| over columns 1, 2 = [1, 2, 3, 10] (sorted)
  const d = Float32Array.of(100, 1, -10, 50, 2, -3);
  assert.equal(scaleLimit(d, 3, 1), 10);
  assert.equal(scaleLimit(d, 3, 1, 50), 2); // ceil(0.5 * 4) - 1 = index 1
  assert.equal(scaleLimit(d, 3, 1, 75), 3);
  assert.equal(scaleLimit(d, 3, 1, 100), 10);
  assert.equal(scaleLimit(d, 3, 0, 50), 3); // [1, 2, 3, 10, 50, 100]
});

test("colour scales: the strong end is the darkest on light and the brightest on dark; dark diverging centre", async () => {
  const { strengthScale, attributionScale, divergingScale, luminance } = await import("../src/lib/colors.js");
  for (const theme of ["light", "dark"]) {
    const s = strengthScale(0, 2, theme);
    const [lo, hi] = [luminance(s(0)), luminance(s(2))];
    assert.ok(theme === "light" ? hi < lo : hi > lo, `${theme}: ${lo} -> ${hi}`);
    assert.equal(attributionScale(0, 2, theme)(2).join(), s(2).join());
    assert.equal(attributionScale(-1, 2, theme).kind, "diverging");
  }
  const dark = divergingScale(1, "dark");
  assert.ok(luminance(dark(0)) < 0.05, "the centre is near a dark background");
  assert.ok(luminance(dark(1)) > 0.4 && luminance(dark(-1)) > 0.4, "both ends bright");
  assert.ok(luminance(divergingScale(1)(0)) > 0.9, "light: the centre near white");
});
