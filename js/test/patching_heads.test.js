// HeadPatchingGrid with a fake model: layers x heads at the selected position, the selector and the pair's patched
// tokens switch positions (writing selected_position), hover never saves, click / Enter commit selected_cell and list
// that cell's patched top-k, a Python-side position / selection / `shown` arrive.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import patchingHeads from "../src/patching_heads.js";

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
  const cleanup = patchingHeads.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const cellText = (root, r, c) => root.querySelector(`.ew-cell[data-r="${r}"][data-c="${c}"]`).textContent;
const expected = (l, h, j) => String(Number(((l * 8 + h * 2 + j) / 24 - 0.2).toPrecision(2)));
const items = (root, run) => [...root.querySelectorAll(`.ew-patch-detail [data-run="${run}"] .ew-patch-topk-item`)].map((e) => [e.querySelector(".ew-tok").title || e.querySelector(".ew-tok").textContent, e.querySelector(".ew-patch-topk-prob").textContent.trim()]);

test("patching_heads: layers x heads at the selected position, head labels on top, a diverging legend", () => {
  const m = mount(viewStates(TOKENS).patching_heads);
  assert.equal(m.root.querySelectorAll(".ew-cell").length, 3 * 4);
  assert.deepEqual([...m.root.querySelectorAll(".ew-patch-head")].map((s) => s.textContent), ["h0", "h1", "h2", "h3"]);
  // selected_position 1 = token n - 1: cell [l, h] = effect[l, h, 1]
  for (const [l, h] of [[0, 0], [1, 2], [2, 3]]) assert.equal(cellText(m.root, l, h), expected(l, h, 1));
  assert.equal(m.root.querySelector(".ew-patch-position").value, "1");
  assert.deepEqual([...m.root.querySelectorAll(".ew-patch-position option")].map((o) => o.textContent), [`position ${n - 2}: ${JSON.stringify(TOKENS[n - 2])}`, `position ${n - 1}: ${JSON.stringify(TOKENS[n - 1])}`]);
  const marked = [...m.root.querySelectorAll('.ew-patch-prompt[data-prompt="clean"] .ew-tok')].flatMap((s, i) => (s.classList.contains("ew-active") ? [i] : []));
  assert.deepEqual(marked, [n - 1]);
  assert.ok(m.root.querySelector(".ew-legend .ew-legend-mid"), "diverging legend with its centre");
  m.cleanup();
});

test("patching_heads: the selector and a patched token of the pair switch positions and write selected_position", () => {
  const m = mount(viewStates(TOKENS).patching_heads);
  const select = m.root.querySelector(".ew-patch-position");
  select.value = "0";
  fire(w, select, "change");
  assert.deepEqual(m.model.sets("selected_position"), [0]);
  assert.equal(cellText(m.root, 1, 2), expected(1, 2, 0));
  fire(w, m.root.querySelector(`.ew-patch-prompt[data-prompt="corrupted"] .ew-tok[data-column="1"]`), "click");
  assert.deepEqual(m.model.sets("selected_position"), [0, 1]);
  assert.equal(cellText(m.root, 1, 2), expected(1, 2, 1));
  assert.equal(m.root.querySelector(".ew-tok:not([data-column])").style.opacity, "0.7", "unpatched tokens dimmed");
  m.model.set("selected_position", 0); // from Python
  assert.equal(cellText(m.root, 2, 3), expected(2, 3, 0));
  assert.equal(select.value, "0");
  m.cleanup();
});

test("patching_heads: hover shows numbers without saving; click / Enter commit and list the cell's top-k", () => {
  const m = mount(viewStates(TOKENS).patching_heads);
  const cell = m.root.querySelector('.ew-cell[data-r="2"][data-c="1"]');
  fire(w, cell, "mouseover");
  assert.equal(m.model.saves(), 0);
  const tip = m.el.querySelector(".ew-tooltip").textContent;
  assert.match(tip, /h1/);
  assert.match(tip, new RegExp(`position${n - 1}`));
  fire(w, cell, "click");
  assert.deepEqual(m.model.sets("selected_cell"), [[2, 1]]);
  // topk_index[l, h, j, k] = ((l * 4 + h) * 2 + j) * K + k) % n with K = 2, at j = 1
  const base = ((2 * 4 + 1) * 2 + 1) * 2;
  assert.deepEqual(items(m.root, "patched"), [[TOKENS[base % n], "25%"], [TOKENS[(base + 1) % n], "25%"]]);
  assert.deepEqual(items(m.root, "clean"), [[TOKENS[0], "50%"], [TOKENS[1], "20%"]]);
  assert.match(m.root.querySelector(".ew-patch-detail-title").textContent, new RegExp(`l2, h1 restored at position ${n - 1}`));
  fire(w, cell, "keydown", { key: "ArrowRight" });
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [2, 2]);
  m.model.set("selected_cell", [0, 3]);
  assert.ok(m.root.querySelector('.ew-cell[data-r="0"][data-c="3"]').classList.contains("ew-selected"));
  m.cleanup();
});

test("patching_heads: with an attribution estimate, the switcher recolours in place and writes shown", () => {
  const s = viewStates(TOKENS).patching_heads;
  const est = Array.from({ length: 24 }, (_, i) => -i / 24);
  const m = mount({ ...s, attribution_effect: arr(est, "float32", [3, 4, 2]), pearson: 0.5, sign_agreement: 0.75, signed_cells: 8 });
  assert.match(m.root.querySelector(".ew-patch-agreement").textContent, /Pearson r = 0\.5/);
  const grid = m.root.querySelector(".ew-grid");
  fire(w, m.root.querySelector('.ew-seg-btn[data-effect="attribution"]'), "click");
  assert.deepEqual(m.model.sets("shown"), ["attribution"]);
  assert.equal(m.root.querySelector(".ew-grid"), grid, "same grid element");
  assert.equal(cellText(m.root, 0, 1), String(Number((-3 / 24).toPrecision(2))));
  m.cleanup();
});

test("patching_heads: the summary gives the runs' logit differences only when they are given (null: left out)", () => {
  const s = viewStates(TOKENS).patching_heads;
  const text = (extra) => {
    const m = mount({ ...s, ...extra });
    const t = m.root.querySelector(".ew-patch-summary").textContent;
    m.cleanup();
    return t;
  };
  assert.equal(text({}), 'head: logit difference " a" \u2212 " b", clean 2, corrupted -1');
  assert.equal(text({ clean_logit_diff: null, corrupted_logit_diff: null }), 'head: logit difference " a" \u2212 " b"');
  const absent = { ...s };
  delete absent.clean_logit_diff;
  delete absent.corrupted_logit_diff;
  const m = mount(absent);
  assert.doesNotMatch(m.root.querySelector(".ew-patch-summary").textContent, /clean|corrupted|\b0\b/);
  m.cleanup();
  assert.equal(text({ corrupted_logit_diff: null }), 'head: logit difference " a" \u2212 " b", clean 2');
  assert.equal(text({ clean_logit_diff: 0, corrupted_logit_diff: null }), 'head: logit difference " a" \u2212 " b", clean 0', "a given 0 is shown");
});

test("patching_heads: the agreement line has no margin of its own (the controls' gap spaces it; wrapped, it is not indented)", () => {
  const s = viewStates(TOKENS).patching_heads;
  const est = Array.from({ length: 24 }, (_, i) => i / 24 - 0.2);
  const m = mount({ ...s, attribution_effect: arr(est, "float32", [3, 4, 2]), pearson: 0.9, sign_agreement: 0.75, signed_cells: 12 });
  const a = m.root.querySelector(".ew-patch-agreement");
  assert.equal(a.parentNode, m.root.querySelector(".ew-controls"));
  assert.equal(a.style.marginLeft, "");
  assert.equal(a.style.paddingLeft, "");
  m.cleanup();
});
