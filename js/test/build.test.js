// The built bundles: present, self-contained, safe to inline, and each exports render.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setupDom, teardownDom } from "./helpers.js";

const STATIC = fileURLToPath(new URL("../../ecco_widgets/static/", import.meta.url));
const VIEWS = ["saliency", "rank_grid", "rank_watch", "layer_predictions", "factor_explorer", "neuron_heatmap", "attention"];

test("bundles exist and are newer than or as new as their sources (run `npm run build`)", () => {
  for (const v of [...VIEWS, "standalone"]) {
    const out = statSync(`${STATIC}${v}.js`);
    const src = statSync(fileURLToPath(new URL(`../src/${v}.js`, import.meta.url)));
    assert.ok(out.mtimeMs + 1000 >= src.mtimeMs, `${v}.js is older than src/${v}.js`);
  }
});

test("bundles are self-contained and safe to inline in <script>", () => {
  for (const v of [...VIEWS, "standalone"]) {
    const src = readFileSync(`${STATIC}${v}.js`, "utf8");
    assert.ok(!/<\/script/i.test(src), `${v}: contains </script`);
    assert.ok(!src.includes("<!--"), `${v}: contains <!--`);
    assert.ok(!/^\s*import[\s{*]/m.test(src), `${v}: has an import statement`);
    assert.ok(!/https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(src), `${v}: mentions a network URL`);
    assert.ok(!/\binnerHTML\b|insertAdjacentHTML|outerHTML|document\.write/.test(src), `${v}: uses an HTML sink`);
  }
});

test("each view bundle imports as an ES module with default.render that renders", async () => {
  const w = setupDom();
  try {
    for (const v of VIEWS) {
      const src = readFileSync(`${STATIC}${v}.js`, "utf8");
      const mod = await import(`data:text/javascript;base64,${Buffer.from(src).toString("base64")}`);
      assert.equal(typeof mod.default.render, "function", v);
      const el = document.createElement("div");
      const model = { get: () => undefined, set() {}, save_changes() {}, on() {}, off() {}, send() {} };
      const cleanup = mod.default.render({ model, el });
      assert.ok(el.querySelector(".ew-root"), `${v} rendered with an empty model`);
      cleanup();
    }
  } finally {
    teardownDom(w);
  }
});
