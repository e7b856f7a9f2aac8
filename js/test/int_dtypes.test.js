// Integer arrays arrive in the narrowest dtype that holds them (uint8 / int8 / uint16 / int16 /
// uint32 / int32; docs/view_contract.md). Every view must read them whatever the dtype and
// whatever the transport form (DataView at an odd byteOffset, base64, plain TypedArray).
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, fire, installFakeCanvas } from "./helpers.js";
import { DTYPES } from "../src/lib/arrays.js";
import saliency from "../src/saliency.js";
import rankGrid from "../src/rank_grid.js";
import rankWatch from "../src/rank_watch.js";
import layerPredictions from "../src/layer_predictions.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const FORMS = ["odd-offset", "base64", "typed"];
const INT_DTYPES = ["uint8", "uint16", "int8", "int16", "uint32", "int32"];

/** A contract array field in one of the transport forms. */
function field(values, dtype, shape, form) {
  const src = DTYPES[dtype].from(values);
  const bytes = new Uint8Array(src.buffer);
  if (form === "base64") return { base64: Buffer.from(bytes).toString("base64"), dtype, shape };
  if (form === "typed") return { view: src, dtype, shape };
  // a DataView at an odd byteOffset inside a bigger buffer (ipywidgets may hand these over)
  const buf = new ArrayBuffer(bytes.length + 11);
  new Uint8Array(buf).fill(0xab);
  new Uint8Array(buf, 5, bytes.length).set(bytes);
  return { view: new DataView(buf, 5, bytes.length), dtype, shape };
}
const f32 = (values, shape) => field(values, "float32", shape, "typed");

function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  view.render({ model, el });
  const root = el.querySelector(".ew-root");
  const tip = () => {
    const t = el.querySelector(".ew-tooltip");
    return t.hidden ? null : t.textContent;
  };
  return { model, root, tip };
}

const fits = (dtype, max) => {
  const lim = { uint8: 255, int8: 127, uint16: 65535, int16: 32767, uint32: 4294967295, int32: 2147483647 }[dtype];
  return max <= lim;
};

for (const dtype of INT_DTYPES) {
  for (const form of FORMS) {
    test(`rank_grid reads ranks / topk_index as ${dtype} (${form})`, () => {
      const tokens = ["a", " b", " c", " d"];
      const L = 2;
      const P = 3;
      const ranksV = fits(dtype, 300) ? [1, 2, 300, 7, 1, 120] : [1, 2, 100, 7, 1, 120];
      const vocab = ["v0", "v1", "v2", "v3", "v4"];
      const idx = [4, 0, 3, 1, 2, 2, 0, 4, 1, 3, 2, 0];
      const m = mount(rankGrid, {
        tokens, raw_tokens: tokens, n_input_tokens: 2, layer_labels: ["L0", "L1"], title: "", theme: "light",
        ranks: field(ranksV, dtype, [L, P], form),
        topk_vocab: vocab,
        topk_index: field(idx, dtype, [L, P, 2], form),
        topk_probs: f32(idx.map((i) => (i + 1) / 10), [L, P, 2]),
        selected_cell: [],
      });
      const cells = [...m.root.querySelectorAll(".ew-cell")];
      assert.deepEqual(cells.map((c) => c.textContent), ranksV.map(String));
      fire(w, cells[2], "mouseover"); // [0, 2]: rank ranksV[2], top-k = v2 (30%), v2 (30%)
      assert.match(m.tip(), new RegExp(`rank${ranksV[2]}top 2`));
      assert.match(m.tip(), /1\.v230%2\.v230%/);
      fire(w, cells[3], "mouseover"); // [1, 0]: top-k indices 0, 4
      assert.match(m.tip(), /rank7/);
      assert.match(m.tip(), /1\.v010%2\.v450%/);
      const legendMax = m.root.querySelector(".ew-legend-max").textContent;
      assert.equal(legendMax, String(Math.max(...ranksV)));
    });

    test(`rank_watch reads ranks as ${dtype} (${form})`, () => {
      const ranksV = fits(dtype, 1000) ? [1, 250, 1000, 3, 2, 1] : [1, 25, 100, 3, 2, 1];
      const m = mount(rankWatch, {
        tokens: ["x", " y", " z"], position: 2, layer_labels: ["L0", "L1"], title: "", theme: "light",
        watch_tokens: [" is", " are", " was"], ranks: field(ranksV, dtype, [2, 3], form),
      });
      const cells = [...m.root.querySelectorAll(".ew-cell")];
      assert.deepEqual(cells.map((c) => c.textContent), ranksV.map(String));
      fire(w, cells[2], "mouseover");
      assert.match(m.tip(), new RegExp(`rank${ranksV[2]}position2`));
    });

    test(`layer_predictions reads topk_index as ${dtype} (${form})`, () => {
      const vocab = Array.from({ length: 300 }, (_, i) => `w${i}`);
      const idxV = fits(dtype, 299) ? [299, 0, 256, 5] : [99, 0, 56, 5];
      const m = mount(layerPredictions, {
        position: 1, context_token: " ctx", layer_labels: ["A", "B"], title: "", theme: "light", topk_vocab: vocab,
        topk_index: field(idxV, dtype, [2, 2], form), topk_probs: f32([0.5, 0.25, 0.125, 0.0625], [2, 2]),
      });
      const items = [...m.root.querySelectorAll(".ew-lp-item")];
      assert.deepEqual(items.map((it) => it.querySelector(".ew-tok").textContent), idxV.map((i) => `w${i}`));
      assert.deepEqual(items.map((it) => it.querySelector(".ew-lp-pct").textContent), ["50%", "25%", "12.5%", "6.25%"]);
      fire(w, items[2], "mouseover");
      assert.match(m.tip(), new RegExp(`1st predictionw${idxV[2]}probability12\\.5%`));
    });

    test(`saliency reads targets as ${dtype} (${form})`, () => {
      const tokens = ["t0", " t1", " t2", " t3", " t4"];
      const targets = [3, 4];
      // method row r explains targets[r]; inputs p < target get (p + 1) / 10
      const attr = [];
      for (const t of targets) for (let p = 0; p < 5; p++) attr.push(p < t ? (p + 1) / 10 : 0);
      const m = mount(saliency, {
        tokens, raw_tokens: tokens, n_input_tokens: 3, title: "", theme: "light", targets: field(targets, dtype, [2], form),
        methods: ["ig"], method: "ig", attributions: f32(attr, [1, 2, 5]), saliency_style: "detailed", selected_token: -1,
      });
      const spans = [...m.root.querySelectorAll(".ew-tokens > .ew-tok")];
      assert.deepEqual(spans.map((s) => s.classList.contains("ew-target")), [false, false, false, true, true]);
      assert.ok(spans[4].classList.contains("ew-active"), "last target shown by default");
      assert.deepEqual(spans.map((s) => s.querySelector(".ew-bar-val").textContent), ["0.1", "0.2", "0.3", "0.4", ""]);
      fire(w, spans[3], "mouseover");
      assert.match(m.tip(), /explained token 3/);
      assert.deepEqual(spans.map((s) => s.querySelector(".ew-bar-val").textContent), ["0.1", "0.2", "0.3", "", ""]);
      fire(w, spans[3], "click");
      assert.deepEqual(m.model.sets("selected_token"), [3]);
      assert.ok(spans[3].classList.contains("ew-selected"));
    });
  }
}
