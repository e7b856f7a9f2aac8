// Hostile token text must render literally through every view, creating no extra elements (other than
// the visible markers for bidi controls / zero-width characters, which hold the character itself).
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, fire, viewStates, installFakeCanvas, loadViews, HOSTILE } from "./helpers.js";
import saliency from "../src/saliency.js";
import rankGrid from "../src/rank_grid.js";
import { INVISIBLE } from "../src/lib/tokens.js";

const VIEWS = await loadViews(); // every view of ecco_widgets/views/registry.json
// Every element a view may legitimately create.
const ALLOWED = new Set(["DIV", "SPAN", "SELECT", "OPTION", "LABEL", "CANVAS", "BUTTON", "INPUT", // buttons: fixed text (figure, metric); INPUT: see assertClean
  "svg", "polyline", "line", "SVG", "POLYLINE", "LINE", "rect", "text", "RECT", "TEXT"]); // rect, text: bar charts (textContent)
const FORBIDDEN = "img, script, b, i, a, iframe, object, embed, style, link, meta, form, input, template";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  view.render({ model, el });
  return { el, model };
}

/** Element counts, leaving out the markers for bidi / zero-width characters (checked separately). */
function tagCounts(el) {
  const counts = {};
  for (const n of el.querySelectorAll("*")) {
    // (the explorer's virtualised row packs tokens into lines as wide as the row: longer text, more lines)
    if (n.classList.contains("ew-ws-ctl") || n.classList.contains("ew-vrow-line")) continue;
    counts[n.tagName] = (counts[n.tagName] || 0) + 1;
  }
  return counts;
}

/** A control-character marker is a span holding exactly one listed character, with our own attributes only. */
function assertMarkers(el, where) {
  for (const m of el.querySelectorAll(".ew-ws-ctl")) {
    assert.equal(m.tagName, "SPAN", where);
    assert.equal(m.children.length, 0, `${where}: marker has children`);
    assert.equal(INVISIBLE[m.textContent], m.dataset.mark, `${where}: marker ${JSON.stringify(m.textContent)}`);
    assert.deepEqual(m.getAttributeNames().sort(), ["aria-hidden", "class", "data-mark", "title"], where);
  }
}

function assertClean(el, where) {
  // (the one input allowed: the feature dashboard's search box, a type=search field whose value is a property)
  const forbidden = [...el.querySelectorAll(FORBIDDEN)].filter((n) => !(n.tagName === "INPUT" && n.type === "search" && n.classList.contains("ew-fd-search")));
  assert.equal(forbidden.length, 0, `${where}: forbidden element`);
  for (const n of el.querySelectorAll("*")) {
    assert.ok(ALLOWED.has(n.tagName), `${where}: unexpected <${n.tagName}>`);
    for (const a of n.getAttributeNames()) assert.ok(!/^on/i.test(a), `${where}: event-handler attribute ${a}`);
  }
}

/** Hover every hoverable thing so all tooltips render too. */
function hoverAll(el) {
  const texts = [];
  const tip = el.querySelector(".ew-tooltip");
  const targets = el.querySelectorAll(".ew-tokens > .ew-tok, .ew-cell, .ew-lp-item, .ew-factor, .ew-head");
  for (const t of targets) {
    fire(w, t, "mouseover");
    if (t.tabIndex >= -1 && typeof t.focus === "function") t.focus();
    if (!tip.hidden) texts.push(tip.textContent);
    assertClean(tip, "tooltip");
  }
  const canvasGrid = el.querySelector(".ew-grid-canvas");
  if (canvasGrid) fire(w, canvasGrid, "mousemove", { clientX: 1, clientY: 1 });
  return texts.join("\n");
}

// views of a dataset, not of a token sequence: their texts (layer labels, method names) are checked below
const TOKENLESS = new Set(["batch_summary"]);

test("batch_summary: hostile layer labels and method names render as literal text", () => {
  const s = viewStates(["a", "b", "c", "d"]).batch_summary;
  const labels = [HOSTILE[0], "</script>", "&amp;"];
  const m = mount(VIEWS.batch_summary, { ...s, layer_labels: labels, methods: [HOSTILE[0]] });
  assertClean(m.el, "batch_summary");
  const text = m.el.textContent;
  for (const t of labels) assert.ok(text.includes(t), `${t} rendered literally`);
  assert.equal(document.querySelectorAll("img, script, b").length, 0, "nothing leaked into the document");
});

for (const [name, view] of Object.entries(VIEWS)) {
  if (TOKENLESS.has(name)) continue;
  test(`${name}: hostile tokens render as literal text with zero extra elements`, () => {
    const hostile = mount(view, viewStates(HOSTILE)[name]);
    const benign = mount(view, viewStates(HOSTILE.map((_, i) => `tok${i}`))[name]);
    assertClean(hostile.el, name);
    const text = hostile.el.textContent;
    // rank_watch shows the context tokens and watch_tokens = the first 3; layer_predictions shows topk vocab
    for (const h of HOSTILE) {
      assert.ok(text.includes(h), `${name}: ${JSON.stringify(h.slice(0, 40))} not rendered literally in ${JSON.stringify(text.slice(0, 200))}`);
    }
    assert.ok(!text.includes("49"), "template syntax not evaluated");
    assert.deepEqual(tagCounts(hostile.el), tagCounts(benign.el), `${name}: element structure differs from benign tokens`);
    assertMarkers(hostile.el, name);
    assert.ok(hostile.el.querySelectorAll(".ew-ws-ctl").length >= 2, `${name}: RLO and ZWSP are marked`);
    assert.equal(benign.el.querySelectorAll(".ew-ws-ctl").length, 0);
    assert.equal(document.querySelectorAll("img, script, b").length, 0, "nothing leaked into the document");
    const tipText = hoverAll(hostile.el);
    assertClean(hostile.el, `${name} after hover`);
    assert.ok(tipText.length > 0, `${name}: some tooltip was shown`);
    assert.ok(HOSTILE.some((h) => tipText.includes(h)), `${name}: tooltips show hostile text literally`);
    assert.equal(document.querySelectorAll("img, script, b").length, 0);
    // raw tokens in title / aria-label are attributes, never markup
    const titled = [...hostile.el.querySelectorAll("[title]")].map((n) => n.getAttribute("title"));
    if (name !== "layer_predictions") assert.ok(titled.includes(HOSTILE[0]), `${name}: raw token in title`);
  });
}

test("hostile title and labels are text too", () => {
  const s = viewStates(["a", "b", "c", "d"]);
  const m = mount(rankGrid, { ...s.rank_grid, title: "<img src=x onerror=alert(1)>", layer_labels: ["<b>l0</b>", "</script>", "&amp;"] });
  assertClean(m.el, "title");
  assert.equal(m.el.querySelector(".ew-title").textContent, "<img src=x onerror=alert(1)>");
  assert.ok(m.el.textContent.includes("<b>l0</b>"));
  const f = mount(saliency, { ...s.saliency, methods: ["<img src=x onerror=alert(1)>", "b"], method: "b" });
  assertClean(f.el, "methods");
  assert.equal(f.el.querySelector("option").textContent, "<img src=x onerror=alert(1)>");
});
