// FeatureDashboard with a fake model: one card per feature (index, label, density, histogram over the bins that
// hold tokens, top contexts with the middle token outlined and each token coloured by its activation, quantile
// bands of the sample, promoted / suppressed tokens); the search box filters by index or label; arrows move between
// cards, Enter and a click commit selected_feature (again: -1); many features are paged.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates } from "./helpers.js";
import view, { matches } from "../src/feature_dashboard.js";
import { contrastRatio } from "../src/lib/colors.js";

let w;
beforeEach(() => {
  w = setupDom();
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
function mount(state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const cards = (root) => [...root.querySelectorAll(".ew-fd-card")].map((c) => Number(c.dataset.feature));
const search = (m, text) => {
  const box = m.root.querySelector("input.ew-fd-search");
  box.value = text;
  fire(w, box, "input");
};

test("feature_dashboard: a card per feature with its numbers, histogram, contexts, bands and logits", () => {
  const m = mount(viewStates(TOKENS).feature_dashboard);
  assert.deepEqual(cards(m.root), [1, 4, 8]);
  const one = m.root.querySelector('.ew-fd-card[data-feature="1"]');
  assert.equal(one.querySelector(".ew-fd-index").textContent, "#1");
  assert.equal(one.querySelector(".ew-fd-label").textContent, "one");
  assert.equal(Number(one.querySelector(".ew-fd-stats").dataset.density), 3 / 20);
  // histogram [0, 1, 2, 0, 0]: bars for bins 1..2 (the first and last that hold tokens)
  assert.deepEqual([...one.querySelectorAll("rect.ew-fd-bar")].map((r) => Number(r.dataset.value)), [1, 2]);
  // top contexts: two rows; tokens index the strings (-1: outside the text, left out); the middle one outlined
  const rows = one.querySelectorAll(".ew-fd-top .ew-fd-ctx");
  assert.equal(rows.length, 2);
  assert.deepEqual([...rows[0].querySelectorAll(".ew-tok")].map((t) => t.title), [TOKENS[1], TOKENS[2]]);
  assert.ok(rows[0].querySelector(".ew-tok.ew-fd-center"));
  assert.deepEqual([...rows].map((r) => Number(r.querySelector(".ew-fd-val").dataset.value)), [2, 1]);
  // activation 0 -> no background; 0.5 and 1 of the card's max 2: coloured, and differently
  const toks = [...rows[0].querySelectorAll(".ew-tok")];
  assert.deepEqual(toks.map((t) => Number(t.dataset.value)), [0.5, 1]);
  assert.ok(toks[0].style.background && toks[1].style.background && toks[0].style.background !== toks[1].style.background);
  // each coloured token's text is black or white, whichever reads better on its background (WCAG contrast >= 4.5)
  const rgbOf = (c) => (c.startsWith("#") ? [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) : c.match(/\d+/g).slice(0, 3).map(Number));
  for (const t of toks) {
    assert.ok(["#000000", "#ffffff", "rgb(0, 0, 0)", "rgb(255, 255, 255)"].includes(t.style.color), `text colour set: ${t.style.color}`);
    assert.ok(contrastRatio(rgbOf(t.style.color), rgbOf(t.style.background)) >= 4.5, t.style.background);
  }
  // 4 samples in 4 quantile bands of one row each; the feature that never fires says so and has no rows
  assert.equal(one.querySelectorAll(".ew-fd-band").length, 4);
  const four = m.root.querySelector('.ew-fd-card[data-feature="4"]');
  assert.match(four.textContent, /never fires/);
  assert.equal(four.querySelectorAll(".ew-fd-ctx").length, 0);
  assert.deepEqual([...one.querySelectorAll(".ew-fd-promoted .ew-fd-logit")].map((c) => Number(c.dataset.value)), [2, 1]);
  assert.deepEqual([...one.querySelectorAll(".ew-fd-suppressed .ew-tok")].map((t) => t.title), [TOKENS[3], TOKENS[2]]);
  assert.match(m.root.textContent, /unit scale/);
});

test("feature_dashboard: search by index or label", () => {
  const m = mount(viewStates(TOKENS).feature_dashboard);
  search(m, "8");
  assert.deepEqual(cards(m.root), [8]);
  search(m, "#4");
  assert.deepEqual(cards(m.root), [4]);
  search(m, "EIG");
  assert.deepEqual(cards(m.root), [8]);
  search(m, "nothing");
  assert.deepEqual(cards(m.root), []);
  assert.match(m.root.querySelector(".ew-fd-count").textContent, /^0 of 3 features/);
  search(m, "");
  assert.deepEqual(cards(m.root), [1, 4, 8]);
  assert.ok(matches("12", 12, "") && !matches("1", 12, "") && matches("cat", 3, "Cats") && matches(" ", 5, ""));
});

test("feature_dashboard: arrows move between cards, Enter and a click commit selected_feature, again clears it", () => {
  const m = mount(viewStates(TOKENS).feature_dashboard);
  const list = [...m.root.querySelectorAll(".ew-fd-card")];
  assert.deepEqual(list.map((c) => c.tabIndex), [0, -1, -1]);
  list[0].focus();
  assert.match(m.root.querySelector(".ew-tooltip").textContent, /feature 1/);
  fire(w, list[0], "keydown", { key: "ArrowDown" });
  assert.equal(document.activeElement, list[1]);
  fire(w, list[1], "keydown", { key: "End" });
  assert.equal(document.activeElement, list[2]);
  assert.equal(m.model.saves(), 0, "moving does not commit");
  fire(w, list[2], "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_feature"), [8]);
  assert.ok(list[2].classList.contains("ew-selected"));
  fire(w, list[0].querySelector(".ew-fd-head"), "click");
  assert.deepEqual(m.model.sets("selected_feature"), [8, 1]);
  assert.deepEqual([...m.root.querySelectorAll(".ew-fd-card.ew-selected")].map((c) => c.dataset.feature), ["1"]);
  fire(w, list[0], "click"); // again: none
  assert.deepEqual(m.model.sets("selected_feature"), [8, 1, -1]);
  assert.equal(m.root.querySelectorAll(".ew-fd-card.ew-selected").length, 0);
  m.model.set("selected_feature", 4); // from Python
  assert.deepEqual([...m.root.querySelectorAll(".ew-fd-card.ew-selected")].map((c) => c.dataset.feature), ["4"]);
});

test("feature_dashboard: many features are built a page at a time", () => {
  const F = 60;
  const s = viewStates(TOKENS).feature_dashboard;
  const state = {
    ...s, feature_ids: arr(Array.from({ length: F }, (_, i) => i), "int32", [F]), labels: Array(F).fill(""),
    fire_counts: arr(Array(F).fill(1), "int32", [F]), top_values: arr(Array(F).fill(1), "float32", [F, 1]),
    top_docs: arr(Array(F).fill(0), "int32", [F, 1]), top_positions: arr(Array(F).fill(0), "int32", [F, 1]),
    top_tokens: arr(Array(F * 3).fill(1), "int32", [F, 1, 3]), top_acts: arr(Array(F * 3).fill(1), "float32", [F, 1, 3]),
    sample_values: arr([], "float32", [F, 0]), sample_docs: arr([], "int32", [F, 0]), sample_positions: arr([], "int32", [F, 0]),
    sample_tokens: arr([], "int32", [F, 0, 3]), sample_acts: arr([], "float32", [F, 0, 3]),
    hist: arr(Array(F * 5).fill(1), "int32", [F, 5]), promoted_tokens: arr([], "int32", [F, 0]),
    promoted_values: arr([], "float32", [F, 0]), suppressed_tokens: arr([], "int32", [F, 0]), suppressed_values: arr([], "float32", [F, 0]),
  };
  const m = mount(state);
  assert.equal(cards(m.root).length, 24);
  const more = m.root.querySelector(".ew-fd-more");
  assert.ok(!more.hidden);
  fire(w, more, "click");
  assert.equal(cards(m.root).length, 48);
  fire(w, more, "click");
  assert.equal(cards(m.root).length, 60);
  assert.ok(more.hidden);
  search(m, "59");
  assert.deepEqual(cards(m.root), [59]);
});
