// The offline-export boot script, run against the built bundles in happy-dom.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setupDom, teardownDom, installFakeCanvas, viewStates } from "./helpers.js";

globalThis.__EW_NO_AUTOBOOT__ = true;
const { boot, createModel, importSource } = await import("../src/standalone.js");
const STATIC = fileURLToPath(new URL("../../ecco_widgets/static/", import.meta.url));
const bundle = (name) => readFileSync(`${STATIC}${name}.js`, "utf8");

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const esc = (s) => s.replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
const b64 = (ta) => Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength).toString("base64");

/** Build the export page body the way ecco_widgets/export.py does (per the contract). */
function setupPage(bundles, views) {
  document.body.textContent = "";
  views.forEach((v) => {
    const d = document.createElement("div");
    d.className = "ew-view";
    d.id = v.target;
    document.body.appendChild(d);
  });
  for (const [id, data] of [["ew-bundles", bundles], ["ew-views", views]]) {
    const s = document.createElement("script");
    s.type = "application/json";
    s.id = id;
    s.textContent = esc(JSON.stringify(data));
    document.body.appendChild(s);
  }
}

test("model shim: get/set/on/off/save_changes/send; set fires change:name", () => {
  const m = createModel({ a: 1 });
  const seen = [];
  const cb = (model, v) => seen.push(v);
  m.on("change:a", cb);
  m.set("a", 2);
  m.set("a", 2); // unchanged: no event
  m.set("b", 3);
  assert.deepEqual(seen, [2]);
  assert.equal(m.get("a"), 2);
  m.off("change:a", cb);
  m.set("a", 5);
  assert.deepEqual(seen, [2]);
  m.save_changes();
  m.send({});
  assert.equal(m.saved, 1);
});

test("importSource loads an ES module (falls back to a data: URL where blob: import is unavailable)", async () => {
  const mod = await importSource("export default { render() { return 'ok \u00e9\u4e2d'; } };");
  assert.equal(mod.default.render(), "ok \u00e9\u4e2d");
});

test("boot renders every view from the export format and sets data-ew-ready", async () => {
  const toks = ["A", " <b>b</b>", "\n", " d"];
  const s = viewStates(toks);
  const ranks = new Int32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const state = {
    ...s.rank_grid,
    ranks: { base64: b64(ranks), dtype: "int32", shape: [3, 3] },
    topk_index: { base64: "", dtype: "int32", shape: [0] },
    topk_probs: { base64: "", dtype: "float32", shape: [0] },
  };
  const att = new Float32Array(2 * 16).fill(0.25);
  const attState = { ...s.attention, attention: { base64: b64(att), dtype: "float32", shape: [2, 4, 4] } };
  setupPage({ rank_grid: bundle("rank_grid"), attention: bundle("attention") }, [
    { target: "ew-view-0", bundle: "rank_grid", state },
    { target: "ew-view-1", bundle: "attention", state: attState },
    { target: "ew-view-2", bundle: "rank_grid", state: { ...state, title: "second" } },
  ]);
  const { errors, models } = await boot();
  assert.deepEqual(errors, []);
  assert.equal(document.body.dataset.ewReady, "1");
  assert.equal(document.body.dataset.ewError, undefined);
  const v0 = document.getElementById("ew-view-0");
  assert.equal(v0.querySelectorAll(".ew-cell").length, 9);
  assert.equal(v0.querySelector('.ew-cell[data-r="2"][data-c="1"]').textContent, "8");
  assert.equal(document.getElementById("ew-view-2").querySelector(".ew-title").textContent, "second");
  assert.equal(document.getElementById("ew-view-1").querySelectorAll(".ew-head").length, 2);
  assert.equal(document.querySelectorAll("b").length, 0);
  // selections work through the shim
  v0.querySelector('.ew-cell[data-r="1"][data-c="1"]').click();
  assert.deepEqual(models[0].get("selected_cell"), [1, 1]);
  assert.equal(models[0].saved, 1);
});

test("boot reports a failing view in data-ew-error and as text, without rendering markup", async () => {
  setupPage({ rank_grid: bundle("rank_grid") }, [
    { target: "ew-view-0", bundle: "<img src=x onerror=alert(1)>", state: {} },
    { target: "ew-view-1", bundle: "rank_grid", state: { ranks: { base64: "", dtype: "int64", shape: [1] } } },
  ]);
  const { errors } = await boot();
  assert.equal(errors.length, 2);
  assert.equal(document.body.dataset.ewReady, undefined);
  assert.match(document.body.dataset.ewError, /unknown bundle/);
  assert.match(document.body.dataset.ewError, /unsupported dtype "int64"/);
  assert.equal(document.querySelectorAll("img").length, 0);
  assert.match(document.getElementById("ew-view-0").textContent, /<img src=x onerror=alert\(1\)>/);
  assert.ok(document.getElementById("ew-view-1").querySelector(".ew-error"));
});
