// FeatureExplorer with dashboard cards (issue 27): helpers.js's explorer state (the last token lists latents 0 and 7)
// plus card_* arrays for latent 0 only (2 top contexts of 3 tokens, 4 samples, a histogram over 3 bins, 2 promoted /
// suppressed tokens), written out here. Click / Enter on a feature opens its card with those contexts' text and
// values; latent 7 has no card and says so; Escape closes the card; hostile strings stay text.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, HOSTILE } from "./helpers.js";
import view from "../src/feature_explorer.js";

let w;
beforeEach(() => {
  w = setupDom();
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
const STRINGS = [" dog", " ran", " far", " away"];
// card of latent 0: top context 0 = " dog ran far" (acts 0, 2.5, 1), top context 1 = "∅ ran away" (acts -, 1.25, 0)
const CARD = {
  has_dashboard: true, card_feature_ids: arr([0], "int32", [1]), card_labels: ["zero-ish"], card_strings: STRINGS,
  card_raw_strings: STRINGS.map((s) => s.replace(" ", "Ġ")), card_fire_counts: arr([5], "int32", [1]), card_n_tokens: 40,
  card_top_values: arr([2.5, 1.25], "float32", [1, 2]), card_top_docs: arr([0, 3], "int32", [1, 2]),
  card_top_positions: arr([4, 1], "int32", [1, 2]), card_top_tokens: arr([0, 1, 2, -1, 1, 3], "int32", [1, 2, 3]),
  card_top_acts: arr([0, 2.5, 1, 0, 1.25, 0], "float32", [1, 2, 3]),
  card_sample_values: arr([2.5, 1.25, 1, 0.5], "float32", [1, 4]), card_sample_docs: arr([0, 3, 1, 2], "int32", [1, 4]),
  card_sample_positions: arr([4, 1, 2, 0], "int32", [1, 4]), card_sample_tokens: arr(Array.from({ length: 12 }, (_, i) => i % 4), "int32", [1, 4, 3]),
  card_sample_acts: arr(Array.from({ length: 12 }, (_, i) => (i % 3) / 2), "float32", [1, 4, 3]),
  card_hist: arr([0, 3, 2], "int32", [1, 3]), card_hist_edges: arr([0.5, 2], "float32", [2]),
  card_promoted_tokens: arr([2, 3], "int32", [1, 2]), card_promoted_values: arr([1.5, 0.75], "float32", [1, 2]),
  card_suppressed_tokens: arr([0, 1], "int32", [1, 2]), card_suppressed_values: arr([-1, -0.5], "float32", [1, 2]),
  card_promoted_note: "W_dec row through the final norm",
};

function mount(extra = {}) {
  const model = fakeModel({ ...viewStates(TOKENS).feature_explorer, ...CARD, ...extra });
  const el = document.createElement("div");
  document.body.appendChild(el);
  view.render({ model, el });
  return { model, el, root: el.querySelector(".ew-root") };
}
const row = (root, f) => root.querySelector(`.ew-fx-feat[data-feature="${f}"]`);
const box = (root) => root.querySelector(".ew-fx-card");
const contexts = (root, where) => [...box(root).querySelectorAll(`${where} .ew-fd-ctx`)].map((c) => ({
  value: Number(c.querySelector(".ew-fd-val").dataset.value),
  text: [...c.querySelectorAll(".ew-tok")].map((t) => t.title),
  acts: [...c.querySelectorAll(".ew-tok")].map((t) => Number(t.dataset.value)),
}));

test("feature_explorer card: clicking a feature opens its card with the contexts' text and values", () => {
  const m = mount();
  assert.ok(box(m.root).hidden); // nothing open at first
  fire(w, row(m.root, 0), "click");
  assert.deepEqual(m.model.sets("selected_feature"), [0]);
  const b = box(m.root);
  assert.equal(b.hidden, false);
  assert.equal(b.dataset.feature, "0");
  const card = b.querySelector(".ew-fd-card");
  assert.equal(card.dataset.feature, "0");
  assert.equal(card.querySelector(".ew-fd-index").textContent, "#0");
  assert.equal(card.querySelector(".ew-fd-label").textContent, "zero-ish");
  assert.equal(Number(card.querySelector(".ew-fd-stats").dataset.density), 5 / 40);
  // the top contexts: raw pieces (title) and activations of the window, slot -1 left out
  assert.deepEqual(contexts(m.root, ".ew-fd-top"), [
    { value: 2.5, text: ["Ġdog", "Ġran", "Ġfar"], acts: [0, 2.5, 1] },
    { value: 1.25, text: ["Ġran", "Ġaway"], acts: [1.25, 0] },
  ]);
  // coloured by activation: exactly the tokens above 0; the context's own token outlined
  const tops = [...card.querySelectorAll(".ew-fd-top .ew-tok")];
  assert.deepEqual(tops.map((t) => t.style.background !== ""), [false, true, true, true, false]);
  assert.deepEqual(tops.map((t) => t.classList.contains("ew-fd-center")), [false, true, false, true, false]);
  // 4 samples -> 4 quantile bands of one context each, strongest first
  assert.deepEqual([...card.querySelectorAll(".ew-fd-band")].map((x) => Number(x.querySelector(".ew-fd-val").dataset.value)), [2.5, 1.25, 1, 0.5]);
  assert.deepEqual([...card.querySelectorAll(".ew-fd-hist rect")].map((r) => Number(r.dataset.value)), [3, 2]);
  assert.deepEqual([...card.querySelectorAll(".ew-fd-promoted .ew-fd-logit")].map((c) => Number(c.dataset.value)), [1.5, 0.75]);
  assert.deepEqual([...card.querySelectorAll(".ew-fd-suppressed .ew-tok")].map((c) => c.title), ["Ġdog", "Ġran"]);
  assert.equal(b.querySelector(".ew-fd-note").textContent, "W_dec row through the final norm");
  assert.equal(b.querySelector(".ew-fx-nocard"), null); // a card, so no "has no card"
  // a second click unpins and closes
  fire(w, row(m.root, 0), "click");
  assert.deepEqual(m.model.sets("selected_feature"), [0, -1]);
  assert.ok(box(m.root).hidden);
});

test("feature_explorer card: a feature without a card says so; Enter opens, Escape closes and refocuses the row", () => {
  const m = mount();
  row(m.root, 7).focus();
  fire(w, row(m.root, 7), "keydown", { key: "Enter" });
  assert.equal(box(m.root).hidden, false);
  assert.equal(box(m.root).querySelector(".ew-fd-card"), null);
  assert.match(box(m.root).querySelector(".ew-fx-nocard").textContent, /#7 has no card/);
  row(m.root, 0).focus();
  fire(w, row(m.root, 0), "keydown", { key: "Enter" });
  assert.equal(box(m.root).querySelector(".ew-fd-card").dataset.feature, "0");
  const ev = fire(w, box(m.root).querySelector(".ew-fd-card"), "keydown", { key: "Escape" });
  assert.ok(ev.defaultPrevented);
  assert.ok(box(m.root).hidden);
  assert.equal(document.activeElement, row(m.root, 0));
  assert.deepEqual(m.model.sets("selected_feature"), [7, 0]); // Escape closes the card, keeps the pin
  fire(w, row(m.root, 0), "keydown", { key: "Enter" }); // the pinned feature's card opens again
  assert.equal(box(m.root).hidden, false);
  fire(w, row(m.root, 0), "keydown", { key: "Escape" }); // Escape in the list closes it too
  assert.ok(box(m.root).hidden);
  m.model.set("selected_feature", 0); // no change: stays closed
  m.model.set("selected_feature", 7); // from Python: follows
  assert.match(box(m.root).textContent, /#7 has no card/);
});

test("feature_explorer card: no promoted note, no note line and still no 'has no card'", () => {
  const m = mount({ card_promoted_note: "" });
  fire(w, row(m.root, 0), "click");
  assert.equal(box(m.root).querySelectorAll(".ew-fd-card").length, 1);
  assert.equal(box(m.root).querySelector(".ew-fx-nocard"), null);
  assert.equal(box(m.root).querySelector(".ew-fd-note"), null);
});

test("feature_explorer card: without a dashboard nothing opens; hostile card strings stay text", () => {
  const plain = mount({ has_dashboard: false });
  fire(w, row(plain.root, 0), "click");
  assert.ok(box(plain.root).hidden);
  assert.equal(plain.root.querySelector(".ew-fd-card"), null);
  const m = mount({ card_strings: HOSTILE.slice(0, 4), card_raw_strings: HOSTILE.slice(0, 4), card_labels: [HOSTILE[0]] });
  fire(w, row(m.root, 0), "click");
  assert.equal(m.el.querySelectorAll("img, script, b").length, 0);
  assert.equal(m.root.querySelector(".ew-fx-card .ew-fd-label").textContent, HOSTILE[0]);
  assert.ok(box(m.root).textContent.includes(HOSTILE[2]));
});
