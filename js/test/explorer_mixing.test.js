// The explorer's context-mixing panel with a fake model: present only with its arrays, the shown (explained) token's
// layers x source-tokens cells with their values (data-value), per layer / rolled out and the method switched by the
// panel's selects, a hover's tooltip (source token as text), a clear message for a token that is not explained.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire } from "./helpers.js";
import explorer from "../src/explorer.js";
import { mixingScale } from "../src/lib/mixing_panel.js";
import { formatNumber } from "../src/lib/colors.js";

let w;
beforeEach(() => void (w = setupDom()));
afterEach(() => teardownDom(w));

const N = 6;
const L = 3;
const M = 2;
const TARGETS = [3, 5];
const T = TARGETS.length;
// value of (method m, layer l, target row r, source j): distinct per block (+100 rolled), signed for method 1
const at = (rolled, m, l, r, j) => (rolled ? 100 : 0) + (m ? -1 : 1) * (1 + m * 1000 + l * 10 + r * 0.5 + j * 0.01);
const block = (rolled) => {
  const out = [];
  for (let m = 0; m < M; m++) for (let l = 0; l < L; l++) for (let r = 0; r < T; r++) for (let j = 0; j < N; j++) out.push(at(rolled, m, l, r, j));
  return out;
};

function state(extra = {}) {
  return {
    title: "", theme: "light", tokens: ["A", " b", "<img src=x onerror=alert(1)>", " d", " e", " f"], raw_tokens: [],
    n_input_tokens: N, layer_labels: [], selected_token: 3,
    mixing_methods: ["value_zeroing", "alti_logit"], mixing_targets: arr(TARGETS, "int32", [T]),
    mixing_layers: arr(block(false), "float32", [M, L, T, N]), mixing_rolled: arr(block(true), "float32", [M, L, T, N]),
    ...extra,
  };
}

function mount(s) {
  const el = document.body.appendChild(document.createElement("div"));
  const model = fakeModel(s);
  return { model, cleanup: explorer.render({ model, el }), root: el.querySelector(".ew-root") };
}
const panel = (m) => m.root.querySelector('[data-panel="mixing"]');
const cells = (m) => Array.from(panel(m).querySelectorAll(".ew-cell"));
function expectCells(m, k, rolled, method) {
  const r = TARGETS.indexOf(k);
  const got = cells(m);
  assert.equal(got.length, L * k, "one cell per layer and token before k");
  for (const c of got) {
    const want = at(rolled, method, Number(c.dataset.r), r, Number(c.dataset.c));
    assert.ok(Math.abs(Number(c.dataset.value) - want) < 1e-3, `${c.dataset.r},${c.dataset.c}: ${c.dataset.value} vs ${want}`);
  }
}
const change = (sel, value) => {
  sel.value = value;
  fire(w, sel, "change");
};

test("mixing: the selected token's layers x sources, per layer and rolled out, per method", () => {
  const m = mount(state());
  assert.deepEqual(m.root.ewExplorer.panels(), ["mixing"]);
  const p = panel(m);
  assert.match(p.querySelector(".ew-panel-title").textContent, /token 3 .*value_zeroing, per layer/);
  expectCells(m, 3, false, 0);
  change(p.querySelector(".ew-ex-mix-mode"), "rolled");
  expectCells(m, 3, true, 0);
  assert.match(p.querySelector(".ew-panel-title").textContent, /rolled out/);
  change(p.querySelector(".ew-ex-mix-method"), "1");
  expectCells(m, 3, true, 1);
  assert.match(p.querySelector(".ew-panel-title").textContent, /alti_logit, rolled out/);
  fire(w, m.root.querySelector(".ew-vrow"), "keydown", { key: "End" }); // token 5: 5 sources
  assert.deepEqual(m.model.sets("selected_token"), [5]);
  expectCells(m, 5, true, 1);
  change(p.querySelector(".ew-ex-mix-mode"), "layer");
  expectCells(m, 5, false, 1);
  m.cleanup();
});

test("mixing: a token that is not explained says so; no grid", () => {
  const m = mount(state({ selected_token: 4 }));
  assert.equal(cells(m).length, 0);
  assert.match(panel(m).textContent, /token 4 is not explained: context mixing explains 2 tokens \(3, 5\)/);
  fire(w, m.root.querySelector(".ew-vrow"), "keydown", { key: "ArrowLeft" }); // token 3: explained
  assert.equal(cells(m).length, L * 3);
  m.cleanup();
});

test("mixing: a hover shows layer, source token (as text) and value; the grid is focusable", () => {
  const m = mount(state());
  const cell = panel(m).querySelector('.ew-cell[data-r="1"][data-c="2"]');
  fire(w, cell, "mouseover");
  const tip = m.root.ownerDocument.querySelector(".ew-tooltip");
  assert.ok(tip && tip.textContent.includes("layer 1") && tip.textContent.includes("source 2"));
  assert.ok(tip.textContent.includes("<img src=x onerror=alert(1)>"), "the token as text");
  assert.equal(tip.querySelectorAll("img").length, 0);
  assert.ok(tip.textContent.includes(formatNumber(at(false, 0, 1, 0, 2))));
  assert.equal(panel(m).querySelectorAll('.ew-cell[tabindex="0"]').length, 1, "one tab stop");
  m.cleanup();
});

test("mixing: alti_logit is diverging around 0, the others a strength scale from 0", () => {
  assert.equal(mixingScale("alti_logit", 0, 2, "light").kind, "diverging");
  assert.equal(mixingScale("alti_logit", -1, 2, "dark").kind, "diverging");
  assert.deepEqual(mixingScale("alti_logit", -1, 2, "dark").domain, [-2, 2]);
  assert.notEqual(mixingScale("rollout", 0, 2, "light").kind, "diverging");
  assert.notEqual(mixingScale("value_zeroing", 0, 0.5, "dark").kind, "diverging");
});

test("mixing: no panel without its arrays, or with arrays of the wrong shape", () => {
  const none = mount(state({ mixing_methods: [], mixing_layers: arr([], "float32", [0, 0, 0, 0]), mixing_rolled: arr([], "float32", [0, 0, 0, 0]) }));
  assert.equal(panel(none), null);
  none.cleanup();
  const bad = mount(state({ mixing_targets: arr([3], "int32", [1]) }));
  assert.equal(panel(bad), null);
  bad.cleanup();
});

test("explorer mixing: every layer shows (the panel's body is allowed 680 px, not 380) and short contexts get wide cells", async () => {
  const { mixingCellWidth } = await import("../src/lib/mixing_panel.js");
  assert.equal(mixingCellWidth(5), 40);
  assert.equal(mixingCellWidth(20), 28);
  assert.equal(mixingCellWidth(200), 16);
  const { readFileSync } = await import("node:fs");
  const css = readFileSync(new URL("../src/lib/component_panels.js", import.meta.url), "utf8");
  // 30 layers x 14 px, the token axis and the legend: over the 380 px every other panel's body scrolls at
  assert.match(css, /\.ew-panel\[data-panel="mixing"\] \.ew-panel-body \{ max-height: 680px; \}/);
});
