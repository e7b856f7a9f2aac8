// The built bundles: exactly what js/src builds to (byte for byte), one per registry entry,
// self-contained, safe to inline, and each view's exports render.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ENTRIES, VIEW_BUNDLES } from "../registry.mjs";
import { setupDom, teardownDom } from "./helpers.js";

const STATIC = fileURLToPath(new URL("../../ecco_widgets/static/", import.meta.url));
const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const BUILD = fileURLToPath(new URL("../build.mjs", import.meta.url));

// One fresh build of js/src (including src/lib) into a temporary folder, shared by the tests below.
const fresh = mkdtempSync(join(tmpdir(), "ew-build-"));
after(() => rmSync(fresh, { recursive: true, force: true }));
const run = spawnSync(process.execPath, [BUILD, "--outdir", fresh], { encoding: "utf8" });

test("build.mjs builds into --outdir", () => {
  assert.equal(run.status, 0, `node build.mjs --outdir failed:\n${run.stdout}\n${run.stderr}`);
  assert.deepEqual(readdirSync(fresh).sort(), ENTRIES.map((e) => `${e}.js`).sort());
});

test("the committed bundles are byte-identical to a fresh build of js/src (run `make js` and commit them)", () => {
  assert.equal(run.status, 0, run.stderr);
  const stale = ENTRIES.filter((e) => !readFileSync(join(fresh, `${e}.js`)).equals(readFileSync(`${STATIC}${e}.js`)));
  assert.deepEqual(stale, [], `ecco_widgets/static/{${stale.join(",")}}.js differ from js/src: run \`make js\``);
});

test("registry.json and js/src agree: every top-level js/src/*.js is an entry, every entry has a source", () => {
  const sources = readdirSync(SRC).filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3));
  assert.deepEqual([...sources].sort(), [...ENTRIES].sort(), "edit ecco_widgets/views/registry.json");
  const bundles = readdirSync(STATIC).filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3));
  assert.deepEqual(bundles.sort(), [...ENTRIES].sort(), "ecco_widgets/static holds a bundle the registry does not list");
});

test("bundles are self-contained and safe to inline in <script>", () => {
  for (const v of ENTRIES) {
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
    for (const v of VIEW_BUNDLES) {
      const src = readFileSync(`${STATIC}${v}.js`, "utf8");
      const mod = await import(`data:text/javascript;base64,${Buffer.from(src).toString("base64")}`);
      assert.equal(typeof mod.default.render, "function", v);
      // only the default export: a named `render` sends anywidget down its deprecated path (a console warning)
      assert.deepEqual(Object.keys(mod), ["default"], `${v}: exports ${Object.keys(mod)}`);
      const el = document.createElement("div");
      const model = { get: () => undefined, set() {}, save_changes() {}, on() {}, off() {}, send() {} };
      const cleanup = mod.default.render({ model, el });
      assert.ok(el.querySelector(".ew-root"), `${v} rendered with an empty model`);
      // anywidget calls what render returns on unmount: a function (not a promise, not undefined)
      assert.equal(typeof cleanup, "function", `${v}: render returns a cleanup function`);
      cleanup();
    }
  } finally {
    teardownDom(w);
  }
});
