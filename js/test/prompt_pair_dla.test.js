// The prompt pair's direct logit attribution difference (issue 28): with dla_heads / dla_mlp the view draws a layers x
// (heads + MLP) grid whose cells carry the A − B values, marks the compared column, lists the logit after each block;
// without them there is no such section. The label is text only.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, viewStates, installFakeCanvas } from "./helpers.js";
import promptPair from "../src/prompt_pair.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

function mount(extra = {}) {
  const model = fakeModel({ ...viewStates(["The", " keys", " to", " the", " cabinet"]).prompt_pair, ...extra });
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = promptPair.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}

const heads = [0.5, -1.25, 0.0, 2.0, -0.75, 0.125]; // 3 layers x 2 heads
const mlp = [1.5, -0.5, 0.25];
const acc = [0.1, 0.85, 2.1, 1.0];

test("the A − B grid: one cell per layer and head plus the MLP column, values in data-value", () => {
  const m = mount({ dla_heads: arr(heads, "float32", [3, 2]), dla_mlp: arr(mlp, "float32", [3]),
    dla_accumulated: arr(acc, "float32", [4]), dla_column: 2, dla_label: "<b>' x'</b> after column 2" });
  const sec = m.root.querySelector(".ew-pp-dla");
  assert.ok(sec);
  const cells = Array.from(sec.querySelectorAll(".ew-cell"));
  const got = cells.map((c) => [Number(c.dataset.r), Number(c.dataset.c), Number(c.dataset.value)]);
  const want = [];
  for (let l = 0; l < 3; l++) for (let c = 0; c < 3; c++) want.push([l, c, c < 2 ? heads[l * 2 + c] : mlp[l]]);
  assert.deepEqual(got, want);
  assert.ok(sec.querySelector(".ew-pp-dla-head").textContent.includes("<b>' x'</b>"));
  assert.equal(sec.querySelector("b"), null);
  const after = Array.from(sec.querySelectorAll(".ew-pp-dla-acc [data-value]")).map((s) => Number(s.dataset.value));
  assert.deepEqual(after, Array.from(Float32Array.from(acc)));
  for (const side of ["a", "b"]) {
    const marked = Array.from(m.root.querySelectorAll(`.ew-pp-prompt[data-prompt="${side}"] [data-dla="1"]`));
    assert.deepEqual(marked.map((s) => s.dataset.column), ["2"]);
  }
  assert.ok(sec.querySelector(".ew-legend"));
  m.cleanup();
});

test("no DLA arrays (or mismatched ones): no section", () => {
  const m = mount();
  assert.equal(m.root.querySelector(".ew-pp-dla"), null);
  m.cleanup();
  const bad = mount({ dla_heads: arr(heads, "float32", [3, 2]), dla_mlp: arr([1, 2], "float32", [2]) });
  assert.equal(bad.root.querySelector(".ew-pp-dla"), null);
  bad.cleanup();
});
