// The explorer's components and features panels (issues 28 and 26) with a fake model: present only with their
// arrays, the shown token's values in the DOM (data-value), hover / keys update them, labels as text only.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, installFakeCanvas } from "./helpers.js";
import explorer from "../src/explorer.js";
import { setSigned } from "../src/lib/component_panels.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const N = 5;
const L = 3;
const attn = Array.from({ length: (N - 1) * L }, (_, i) => (i % 2 ? -1 : 1) * (i + 1) * 0.5);
const mlp = Array.from({ length: (N - 1) * L }, (_, i) => (i % 3) - 1.25);
const acc = Array.from({ length: (N - 1) * (L + 1) }, (_, i) => i * 0.1);

function state(extra = {}) {
  return {
    title: "", theme: "light", tokens: ["A", " b", " c", " d", " e"], raw_tokens: [], n_input_tokens: N,
    layer_labels: [], selected_token: 2,
    component_tokens: arr([1, 2, 3, 4], "int32", [N - 1]),
    component_attn: arr(attn, "float32", [N - 1, L]), component_mlp: arr(mlp, "float32", [N - 1, L]),
    component_accumulated: arr(acc, "float32", [N - 1, L + 1]),
    component_logit: arr([0.3, 0.7, 1.1, 1.5], "float32", [N - 1]),
    component_head_tokens: arr([4], "int32", [1]),
    component_heads: arr([2, 1, 0, 3], "int32", [1, 2, 2]), component_head_values: arr([-2.5, 1.0], "float32", [1, 2]),
    feature_names: ["sae0", "sae1"],
    feature_indices: arr(Array.from({ length: 2 * N * 2 }, (_, i) => (i % 4 === 3 ? -1 : 10 + i)), "int32", [2, N, 2]),
    feature_values: arr(Array.from({ length: 2 * N * 2 }, (_, i) => (i % 4 === 3 ? 0 : 5 - (i % 4))), "float32", [2, N, 2]),
    feature_active: arr(Array.from({ length: 2 * N }, (_, i) => 7 + i), "int32", [2, N]),
    feature_labels: [{ 14: "<img src=x onerror=alert(1)>" }, {}],
    ...extra,
  };
}

function mount(s) {
  const model = fakeModel(s);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = explorer.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const panel = (m, name) => m.root.querySelector(`[data-panel="${name}"]`);
const values = (m, sel) => Array.from(m.root.querySelectorAll(sel)).map((e) => Number(e.dataset.value));
const close = (a, b) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);

test("components: the shown token's per-layer shares, the logit after each block and its heads", () => {
  const m = mount(state());
  assert.deepEqual(m.root.ewExplorer.panels(), ["components", "features"]);
  const check = (k) => {
    const r = k - 1;
    assert.ok(close(values(m, '[data-panel="components"] [data-part="attn"]'), attn.slice(r * L, (r + 1) * L)));
    assert.ok(close(values(m, '[data-panel="components"] [data-part="mlp"]'), mlp.slice(r * L, (r + 1) * L)));
    assert.ok(close(values(m, '[data-panel="components"] [data-part="after"]'), acc.slice(r * (L + 1) + 1, (r + 1) * (L + 1))));
    assert.ok(panel(m, "components").querySelector(".ew-panel-title").textContent.includes(`token ${k}`));
  };
  check(2);
  const row = m.root.querySelector(".ew-vrow");
  fire(w, row, "keydown", { key: "End" });
  assert.deepEqual(m.model.sets("selected_token"), [4]);
  check(4);
  const heads = Array.from(panel(m, "components").querySelectorAll(".ew-ex-item[data-head]"));
  assert.deepEqual(heads.map((e) => [Number(e.dataset.layer), Number(e.dataset.head)]), [[2, 1], [0, 3]]);
  assert.ok(close(heads.map((e) => Number(e.querySelector(".ew-ex-val").dataset.value)), [-2.5, 1.0]));
  fire(w, row, "keydown", { key: "Home" });
  assert.match(panel(m, "components").textContent, /nothing predicted it/);
  m.cleanup();
});

test("a negative share paints left of the middle, a positive one right of it", () => {
  const el = document.createElement("span");
  setSigned(el, -1, 2, [1, 2, 3]);
  assert.equal(el.style.getPropertyValue("--ew-a"), "25.0%");
  assert.equal(el.style.getPropertyValue("--ew-b"), "50.0%");
  setSigned(el, 2, 2, null);
  assert.equal(el.style.getPropertyValue("--ew-a"), "50.0%");
  assert.equal(el.style.getPropertyValue("--ew-b"), "100.0%");
});

test("features: each dictionary's latents at the shown token, labels as text, updated on selection", () => {
  const s = state({ selected_token: 1 });
  const m = mount(s);
  const idx = s.feature_indices;
  const read = () => Array.from(panel(m, "features").querySelectorAll(".ew-ex-item[data-feature]"))
    .map((e) => [Number(e.dataset.sae), Number(e.dataset.feature), Number(e.querySelector(".ew-ex-val").dataset.value)]);
  // token 1: sae0 latent 12 (its second slot is -1); sae1 latents 22, 23
  assert.deepEqual(read(), [[0, 12, 3], [1, 22, 5], [1, 23, 4]]);
  const labels = Array.from(panel(m, "features").querySelectorAll(".ew-ex-flabel")).map((e) => e.textContent);
  assert.deepEqual(labels, ["\u2013", "\u2013", "\u2013"]);
  fire(w, m.root.querySelector(".ew-vrow"), "keydown", { key: "ArrowRight" });
  assert.deepEqual(read(), [[0, 14, 5], [0, 15, 4], [1, 24, 3]]);
  const label = panel(m, "features").querySelector('.ew-ex-item[data-feature="14"] .ew-ex-flabel');
  assert.equal(label.textContent, "<img src=x onerror=alert(1)>");
  assert.equal(panel(m, "features").querySelector("img"), null);
  assert.match(panel(m, "features").querySelector('.ew-ex-sae[data-sae="1"]').textContent, /sae1: 14 active/);
  assert.ok(idx);
  m.cleanup();
});

test("without their arrays (or with the wrong shapes) neither panel is there", () => {
  const m = mount(state({ component_tokens: arr([], "int32", [0]), feature_indices: arr([], "int32", [0, 0, 0]) }));
  assert.deepEqual(m.root.ewExplorer.panels(), []);
  m.cleanup();
  const bad = mount(state({ component_attn: arr([1, 2], "float32", [1, 2]) }));
  assert.deepEqual(bad.root.ewExplorer.panels(), ["features"]);
  bad.cleanup();
});
