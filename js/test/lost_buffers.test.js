// A host that drops the binary buffers of a widget's initial state (Colab's widget manager): every view waits for
// its arrays, asks the kernel once ({type: "ew:resend"}) and draws what a host that kept them draws.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, loadViews, viewStates, VIEW_BUNDLES } from "./helpers.js";
import { lostArrays } from "../src/lib/model.js";

/** The state as Colab's manager hands it over: every array field keeps dtype and shape, its data is gone. */
function withoutBuffers(state) {
  const out = {};
  for (const [k, v] of Object.entries(state)) {
    const isArray = v && typeof v === "object" && !Array.isArray(v) && typeof v.dtype === "string" && Array.isArray(v.shape);
    out[k] = isArray ? { dtype: v.dtype, shape: v.shape } : v;
  }
  return out;
}

test("lostArrays: a field with elements and no data is lost; an empty or a base64 field is not", () => {
  const model = fakeModel({
    a: { dtype: "uint8", shape: [2, 3] },
    b: { dtype: "uint8", shape: [0] },
    c: { base64: "AQI=", dtype: "uint8", shape: [2] },
    d: { view: new DataView(new ArrayBuffer(2)), dtype: "uint8", shape: [2] },
    e: "text",
  });
  assert.deepEqual(lostArrays(model, ["a", "b", "c", "d", "e", "missing"]), ["a"]);
});

for (const bundle of VIEW_BUNDLES) {
  test(`${bundle}: arrays without their buffers are asked for once, then drawn as with them`, async () => {
    const views = await loadViews();
    const full = viewStates([" The", " cat", " sat", " on", " the", " mat"])[bundle];
    const window = setupDom();
    try {
      const reference = document.createElement("div");
      document.body.appendChild(reference);
      views[bundle].render({ model: fakeModel(full), el: reference });

      const model = fakeModel(withoutBuffers(full));
      const sent = [];
      model.send = (m) => sent.push(m);
      const el = document.createElement("div");
      document.body.appendChild(el);
      const cleanup = views[bundle].render({ model, el });
      const lost = Object.keys(full).filter((k) => JSON.stringify(model.get(k)) !== JSON.stringify(full[k]) && full[k] && full[k].dtype);
      assert.ok(lost.some((k) => full[k].shape.every((d) => d > 0)), "the test state has an array with elements");
      assert.deepEqual(sent, [{ type: "ew:resend" }]);
      assert.ok(el.querySelector("[data-ew-waiting]"), "a hint while waiting");
      assert.ok(!el.querySelector(".ew-error"));
      for (const k of lost) model.set(k, full[k]); // the kernel's update
      await new Promise((r) => setTimeout(r, 0));
      assert.ok(!el.querySelector("[data-ew-waiting]"));
      assert.equal(el.querySelector(".ew-body").textContent, reference.querySelector(".ew-body").textContent);
      assert.equal(el.querySelectorAll(".ew-body *").length, reference.querySelectorAll(".ew-body *").length);
      assert.equal(sent.length, 1, "asked once");
      cleanup();
    } finally {
      teardownDom(window);
    }
  });
}
