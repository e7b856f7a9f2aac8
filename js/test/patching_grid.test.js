// PatchingGrid with a fake model: the prompt pair over the columns (differing token marked), hover never saves,
// click / Enter commit selected_cell and list that cell's patched top-k, a Python-side selection and `shown` arrive.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import patchingGrid from "../src/patching_grid.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
const n = TOKENS.length;
function mount(state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = render(model, el);
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const render = (model, el) => patchingGrid.render({ model, el });
const items = (root, run) => [...root.querySelectorAll(`.ew-patch-detail [data-run="${run}"] .ew-patch-topk-item`)].map((e) => [e.querySelector(".ew-tok").title || e.querySelector(".ew-tok").textContent, e.querySelector(".ew-patch-topk-prob").textContent.trim()]);

test("patching_grid: the prompt pair on top, the differing position marked in both rows", () => {
  const m = mount(viewStates(TOKENS).patching_grid);
  const rows = [...m.root.querySelectorAll(".ew-patch-prompt")];
  assert.deepEqual(rows.map((r) => r.dataset.prompt), ["clean", "corrupted"]);
  for (const r of rows) assert.deepEqual([...r.querySelectorAll(".ew-tok")].flatMap((s, i) => (s.dataset.differs ? [i] : [])), [1]);
  assert.equal(rows[1].querySelectorAll(".ew-tok")[1].title, " catX");
  assert.equal(m.root.querySelectorAll(".ew-cell").length, 3 * n);
  // effect[l, p] = (l * n + p) / (3 n) - 0.2: cell [1, 2] = 8 / 18 - 0.2
  assert.equal(m.root.querySelector('.ew-cell[data-r="1"][data-c="2"]').textContent, String(Number((8 / 18 - 0.2).toPrecision(2))));
  assert.ok(m.root.querySelector(".ew-legend .ew-legend-mid"), "diverging legend with its centre");
  m.cleanup();
});

test("patching_grid: hover shows numbers without saving; click / Enter commit and list the cell's top-k", () => {
  const m = mount(viewStates(TOKENS).patching_grid);
  const cell = m.root.querySelector('.ew-cell[data-r="2"][data-c="3"]');
  fire(w, cell, "mouseover");
  assert.equal(m.model.saves(), 0);
  assert.match(m.el.querySelector(".ew-tooltip").textContent, /patching/);
  assert.equal(items(m.root, "patched").length, 0, "nothing listed before a click");
  fire(w, cell, "click");
  assert.deepEqual(m.model.sets("selected_cell"), [[2, 3]]);
  // topk_index[l, p, k] = (l * n * K + p * K + k) % n with K = 2, probabilities 0.25
  const base = 2 * n * 2 + 3 * 2;
  assert.deepEqual(items(m.root, "patched"), [[TOKENS[base % n], "25%"], [TOKENS[(base + 1) % n], "25%"]]);
  assert.deepEqual(items(m.root, "clean"), [[TOKENS[0], "50%"], [TOKENS[1], "20%"]]);
  assert.deepEqual(items(m.root, "corrupted"), [[TOKENS[1], "60%"], [TOKENS[0], "10%"]]);
  fire(w, cell, "keydown", { key: "ArrowLeft" });
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [2, 2]);
  // a selection made in Python
  m.model.set("selected_cell", [0, 1]);
  assert.ok(m.root.querySelector('.ew-cell[data-r="0"][data-c="1"]').classList.contains("ew-selected"));
  assert.match(m.root.querySelector(".ew-patch-detail-title").textContent, /position 1/);
  m.cleanup();
});

test("patching_grid: with an attribution estimate, the switcher recolours in place and writes shown", () => {
  const s = viewStates(TOKENS).patching_grid;
  const est = Array.from({ length: 3 * n }, (_, i) => -i / (3 * n));
  const m = mount({ ...s, attribution_effect: arr(est, "float32", [3, n]), pearson: 0.5, sign_agreement: 0.75, signed_cells: 8 });
  assert.match(m.root.querySelector(".ew-patch-agreement").textContent, /Pearson r = 0\.5; signs agree in 75% of the 8 cells/);
  const grid = m.root.querySelector(".ew-grid");
  fire(w, m.root.querySelector('.ew-seg-btn[data-effect="attribution"]'), "click");
  assert.deepEqual(m.model.sets("shown"), ["attribution"]);
  assert.equal(m.root.querySelector(".ew-grid"), grid, "same grid element");
  assert.equal(m.root.querySelector('.ew-cell[data-r="0"][data-c="3"]').textContent, String(Number((-3 / (3 * n)).toPrecision(2))));
  assert.equal(m.root.querySelector(".ew-legend").dataset.effect, "attribution");
  m.model.set("shown", "exact");
  assert.equal(m.root.querySelector(".ew-legend").dataset.effect, "exact");
  m.cleanup();
});

test("patching_grid: the runs' logit differences in the summary only when given; the agreement line unindented", () => {
  const s = viewStates(TOKENS).patching_grid;
  const m = mount({ ...s, clean_logit_diff: null, corrupted_logit_diff: null, attribution_effect: arr(Array.from({ length: 3 * n }, (_, i) => i / 10), "float32", [3, n]), pearson: 0.5, sign_agreement: 0.75, signed_cells: 8 });
  assert.equal(m.root.querySelector(".ew-patch-summary").textContent, 'resid: logit difference " a" \u2212 " b"');
  assert.equal(m.root.querySelector(".ew-patch-agreement").style.marginLeft, "");
  m.cleanup();
  const g = mount(s);
  assert.match(g.root.querySelector(".ew-patch-summary").textContent, /clean 2, corrupted -1$/);
  g.cleanup();
});
