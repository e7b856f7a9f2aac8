// LogitAttributionView with a fake model: layers x (heads + MLP) on a diverging scale, a stacked bar and a curve
// point per layer, the bias terms listed; hover a head shows its value and attended tokens and recolours the tokens
// (never saves); click / Enter commit selected_cell and list the promoted tokens; arrows move; keys stay in the view.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import view from "../src/logit_attribution.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
function mount(state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  const tip = () => el.querySelector(".ew-tooltip");
  return { model, el, cleanup, root: el.querySelector(".ew-root"), tipText: () => (tip().hidden ? null : tip().textContent) };
}
const cell = (root, r, c) => root.querySelector(`.ew-cell[data-r="${r}"][data-c="${c}"]`);
const bg = (root) => [...root.querySelectorAll(".ew-la-tokens .ew-tok")].map((s) => s.style.backgroundColor);

test("logit_attribution: grid of heads + an MLP column, bars, curve, terms and tokens", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  assert.equal(m.root.querySelectorAll(".ew-cell").length, 3 * 3);
  assert.deepEqual([...m.root.querySelectorAll(".ew-la-head")].map((s) => s.textContent), ["h0", "h1", "MLP"]);
  assert.equal(cell(m.root, 2, 1).textContent, "0.3");
  assert.equal(cell(m.root, 0, 2).textContent, "0.5"); // the MLP of layer 0
  // diverging: the negative and positive ends differ from each other and from the (near-white) centre
  const colour = (r, c) => cell(m.root, r, c).style.backgroundColor;
  assert.notEqual(colour(0, 0), colour(2, 1));
  assert.equal(m.root.querySelectorAll('.ew-la-bars rect[data-part]').length, 3 * 2);
  assert.equal(m.root.querySelectorAll('.ew-la-curve rect[data-point]').length, 4);
  assert.deepEqual([...m.root.querySelectorAll(".ew-la-term-label")].map((s) => s.textContent.trim()), ["embedding", "final.bias"]);
  assert.deepEqual([...m.root.querySelectorAll(".ew-la-tokens .ew-tok")].map((s) => s.title), TOKENS);
  assert.match(m.root.querySelector(".ew-la-summary").textContent, /" a" − " b".*0\.925/);
  assert.ok(m.root.querySelector(".ew-legend[aria-label*='centred on 0']"));
});

test("logit_attribution: hover a head shows its value and pattern, recolours the tokens, saves nothing", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  const before = bg(m.root);
  fire(w, cell(m.root, 1, 1), "mouseover");
  const tip = m.tipText();
  assert.match(tip, /layer 1, head 1/);
  assert.match(tip, /\+0\.1/);
  assert.match(tip, /attention from token 5/);
  assert.match(tip, /promotes/);
  assert.notDeepEqual(bg(m.root), before);
  assert.equal(m.model.saves(), 0);
  // the MLP column has no attention pattern
  fire(w, cell(m.root, 1, 2), "mouseover");
  assert.match(m.tipText(), /layer 1, MLP/);
  assert.doesNotMatch(m.tipText(), /attention from/);
});

test("logit_attribution: without attention the hover says how to get it", () => {
  const s = { ...viewStates(TOKENS).logit_attribution, attention: arr([], "float32", [0, 0, 0]) };
  const m = mount(s);
  fire(w, cell(m.root, 0, 1), "mouseover");
  assert.match(m.tipText(), /attention=True/);
  assert.match(m.root.querySelector(".ew-la-tokhint").textContent, /attention=True/);
});

test("logit_attribution: click / Enter commit selected_cell and list the promoted tokens; arrows move", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  fire(w, cell(m.root, 2, 1), "click");
  assert.deepEqual(m.model.sets("selected_cell"), [[2, 1]]);
  const items = [...m.root.querySelectorAll(".ew-la-detail .ew-la-promoted-item")];
  assert.equal(items.length, 2);
  assert.deepEqual(items.map((i) => i.querySelector(".ew-tok").title), [" c", " a"]); // promoted_index[2, 1] = [14 % 3, 15 % 3]
  assert.match(items[0].textContent, /\+2/);
  assert.ok(cell(m.root, 2, 1).classList.contains("ew-selected"));
  fire(w, cell(m.root, 2, 1), "click"); // again: off
  assert.deepEqual(m.model.sets("selected_cell").at(-1), []);
  const c = cell(m.root, 0, 0);
  c.focus();
  const ev = fire(w, c, "keydown", { key: "ArrowRight" });
  assert.ok(ev.defaultPrevented);
  assert.equal(document.activeElement, cell(m.root, 0, 1));
  fire(w, document.activeElement, "keydown", { key: "ArrowDown" });
  fire(w, document.activeElement, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [1, 1]);
  // a selection from Python arrives
  m.model.set("selected_cell", [0, 2]);
  assert.match(m.root.querySelector(".ew-la-detail-title").textContent, /layer 0, MLP/);
});

test("logit_attribution: arrow keys stop at the view root", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  let reached = 0;
  document.body.addEventListener("keydown", () => reached++);
  const c = cell(m.root, 0, 0);
  c.focus();
  fire(w, c, "keydown", { key: "ArrowDown" });
  assert.equal(reached, 0);
});

test("logit_attribution: 80 layers x 64 heads draw one canvas; hover and keys still work", () => {
  const L = 80;
  const H = 64;
  const s = viewStates(TOKENS).logit_attribution;
  const m = mount({
    ...s, layer_labels: [], head_values: arr(Array.from({ length: L * H }, (_, i) => Math.sin(i)), "float32", [L, H]),
    mlp_values: arr(Array.from({ length: L }, (_, i) => Math.cos(i)), "float32", [L]),
    attn_totals: arr(Array(L).fill(0.1), "float32", [L]), mlp_totals: arr(Array(L).fill(-0.1), "float32", [L]),
    accumulated: arr(Array(L + 1).fill(0), "float32", [L + 1]), promoted_index: arr([], "int32", [0, 0, 0]),
    promoted_values: arr([], "float32", [0, 0, 0]), attention: arr([], "float32", [0, 0, 0]),
  });
  const grid = m.root.querySelector(".ew-grid");
  assert.ok(grid.classList.contains("ew-grid-canvas"));
  fire(w, grid, "mousemove", { clientX: 16 * 3 + 2, clientY: 14 * 7 + 2 });
  assert.match(m.tipText(), /layer 7, head 3/);
  grid.focus();
  fire(w, grid, "keydown", { key: "End" });
  fire(w, grid, "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_cell").at(-1), [0, H]);
  assert.match(m.root.querySelector(".ew-la-detail").textContent, /layer 0, MLP/);
});

test("logit_attribution: in a narrow host the side panel takes the whole line when it wraps under the grid", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  const row = m.root.querySelector(".ew-la-row");
  assert.equal(row.style.flexWrap, "wrap");
  const detail = m.root.querySelector(".ew-la-detail");
  assert.ok(Number(detail.style.flexGrow) >= 1, `the panel grows to fill its line (flex: ${detail.style.flex})`);
  assert.ok(parseFloat(detail.style.flexBasis) > 0 && parseFloat(detail.style.minWidth) > 0, "a basis and a minimum width decide when it wraps");
  assert.equal(detail.style.maxWidth, "", "no cap that leaves it a narrow column beside an empty area");
  m.cleanup();
});

test("logit_attribution: the curve's first point clears the column titles; the dashed zero line is labelled 0", () => {
  const m = mount(viewStates(TOKENS).logit_attribution);
  const g = m.root.querySelector(".ew-la-main > div");
  assert.ok(parseFloat(g.style.rowGap) >= 6, `space between the titles and the charts (row-gap ${g.style.rowGap})`);
  const svg = m.root.querySelector("svg.ew-la-curve");
  const dashed = svg.querySelector("line[stroke-dasharray]");
  const label = m.root.querySelector(".ew-la-curvebox .ew-la-zero-label");
  assert.ok(label, "a label under the dashed line");
  assert.equal(label.textContent, "0");
  assert.equal(parseFloat(label.style.left).toFixed(1), Number(dashed.getAttribute("x1")).toFixed(1), "at the dashed line's x");
  assert.match(label.style.transform, /translateX\(-50%\)/);
  // accumulated 0.25 .. 0.925: x from 0 (the dashed line at the left padding)
  assert.equal(Number(dashed.getAttribute("x1")), 5);
  m.cleanup();
});
