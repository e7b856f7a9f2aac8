// ContextMixingView with a fake model: the grid of the chosen target holds layers x the tokens before it, each cell
// the array's value (per layer, or rolled out after the switcher); the token row is coloured by the score; a click
// or Enter on an explained token commits selected_token and the grid follows; arrows move the cell, Enter selects it.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire } from "./helpers.js";
import view from "../src/context_mixing.js";

let w;
beforeEach(() => {
  w = setupDom();
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
const N = TOKENS.length;
const L = 3;
const TARGETS = [3, 5];
// written out here, independently of the view: layer l, target row r, source j
const perLayer = (l, r, j) => (j < TARGETS[r] ? 10 * l + j + r / 10 : 0);
const rolledOut = (l, r, j) => (j < TARGETS[r] ? -(l + 1) * (j + 1) : 0);
const block = (f) => arr(Array.from({ length: L * 2 * N }, (_, i) => f(Math.floor(i / (2 * N)), Math.floor(i / N) % 2, i % N)), "float32", [L, 2, N]);

function mount(extra = {}) {
  const model = fakeModel({
    title: "", theme: "light", tokens: TOKENS, raw_tokens: TOKENS, n_input_tokens: N, method: "value_zeroing",
    targets: arr(TARGETS, "int32", [2]), layers: block(perLayer), rolled: block(rolledOut),
    score: arr(Array.from({ length: 2 * N }, (_, i) => i / 8), "float32", [2, N]), layer_labels: ["0", "1", "2"],
    selected_token: -1, mode: "layer", selected_cell: [], ...extra,
  });
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const cells = (root) => [...root.querySelectorAll(".ew-cm-grid .ew-cell")];
const grid = (root) => {
  const out = [];
  for (const c of cells(root)) {
    const [r, j] = [Number(c.dataset.r), Number(c.dataset.c)];
    (out[r] = out[r] || [])[j] = Number(c.dataset.value);
  }
  return out;
};
const expected = (f, r) => Array.from({ length: L }, (_, l) => Array.from({ length: TARGETS[r] }, (_, j) => Math.fround(f(l, r, j))));

test("context_mixing: the last target's layers x sources, its values; the row coloured by the score", () => {
  const m = mount();
  assert.equal(m.root.querySelector(".ew-cm-grid").dataset.target, "5");
  assert.deepEqual(grid(m.root), expected(perLayer, 1));
  const toks = [...m.root.querySelectorAll(".ew-tokens .ew-tok")];
  assert.deepEqual(toks.slice(0, 5).map((t) => Number(t.dataset.value)), [0, 1, 2, 3, 4].map((j) => Math.fround((N + j) / 8)));
  assert.equal(toks[5].dataset.value, undefined);
  assert.ok(toks[5].classList.contains("ew-active"));
  assert.ok(toks[0].style.backgroundColor !== toks[4].style.backgroundColor);
  // hover: the tooltip names the layer, the source and the value
  fire(w, cells(m.root).find((c) => c.dataset.r === "2" && c.dataset.c === "1"), "mouseover");
  const tip = m.root.querySelector(".ew-tooltip").textContent;
  assert.match(tip, /layer 2/);
  assert.match(tip, /cat/);
  assert.match(tip, /21\.1/);
  m.cleanup();
});

test("context_mixing: the switcher shows the rolled-out values and writes mode", () => {
  const m = mount();
  const sel = m.root.querySelector("select.ew-cm-mode");
  sel.value = "rolled";
  fire(w, sel, "change");
  assert.deepEqual(m.model.sets("mode"), ["rolled"]);
  assert.deepEqual(grid(m.root), expected(rolledOut, 1));
  m.model.set("mode", "layer");
  assert.deepEqual(grid(m.root), expected(perLayer, 1));
  m.cleanup();
});

test("context_mixing: click / Enter on an explained token or the selector chooses it, the grid follows; others do nothing", () => {
  const m = mount();
  const tok = (i) => m.root.querySelector(`.ew-tokens .ew-tok[data-index="${i}"]`);
  fire(w, tok(1), "click");
  assert.deepEqual(m.model.sets("selected_token"), []);
  fire(w, tok(3), "click");
  assert.deepEqual(m.model.sets("selected_token"), [3]);
  assert.equal(m.root.querySelector(".ew-cm-grid").dataset.target, "3");
  assert.deepEqual(grid(m.root), expected(perLayer, 0));
  assert.equal(cells(m.root).length, L * 3);
  fire(w, tok(3), "keydown", { key: "Enter" }); // again: none, the last explained token is shown
  assert.deepEqual(m.model.sets("selected_token"), [3, -1]);
  assert.equal(m.root.querySelector(".ew-cm-grid").dataset.target, "5");
  assert.equal(cells(m.root).length, L * 5);
  // the selector: lists the explained tokens, shows the one drawn, and chooses like a click
  const pick = m.root.querySelector("select.ew-cm-target");
  assert.deepEqual([...pick.options].map((o) => o.value), ["3", "5"]);
  assert.equal(pick.value, "5");
  pick.value = "3";
  fire(w, pick, "change");
  assert.deepEqual(m.model.sets("selected_token"), [3, -1, 3]);
  assert.deepEqual(grid(m.root), expected(perLayer, 0));
  m.cleanup();
});

test("context_mixing: arrows move the cell, Enter selects it (again: none)", () => {
  const m = mount({ selected_token: 3 });
  const first = cells(m.root)[0];
  first.focus();
  fire(w, first, "keydown", { key: "ArrowDown" });
  fire(w, document.activeElement, "keydown", { key: "ArrowRight" });
  assert.equal(document.activeElement.dataset.r, "1");
  assert.equal(document.activeElement.dataset.c, "1");
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell"), [[1, 1]]);
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell"), [[1, 1], []]);
  m.cleanup();
});
