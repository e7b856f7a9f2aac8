// FeatureExplorer with a fake model. helpers.js's state: 6 tokens, token t has latent t % 5 (value 1 + t) and latent
// 5 + t % 3 (value 0.5); labels for 0 ("zero") and 5 ("five"). The list shows the last token's features (or the
// hovered / selected token's); hovering a feature colours the tokens by it without saving; click / Enter pin it.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, HOSTILE } from "./helpers.js";
import view, { sparseRows, quotedParts } from "../src/feature_explorer.js";

let w;
beforeEach(() => {
  w = setupDom();
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " cat", " sat", " on", "\n", " mat"];
const N = TOKENS.length;
function mount(state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = view.render({ model, el });
  const tip = () => el.querySelector(".ew-tooltip");
  return { model, el, cleanup, root: el.querySelector(".ew-root"), tipText: () => (tip().hidden ? null : tip().textContent) };
}
const feats = (root) => [...root.querySelectorAll(".ew-fx-feat")].map((r) => Number(r.dataset.feature));
const tok = (root, i) => root.querySelector(`.ew-tokens .ew-tok[data-index="${i}"]`);
const tokValues = (root) => [...root.querySelectorAll(".ew-tokens .ew-tok")].map((s) => (s.dataset.value == null ? null : Number(s.dataset.value)));
const coloured = (root) => [...root.querySelectorAll(".ew-tokens .ew-tok")].map((s) => s.style.backgroundColor !== "");
// the state's activation of latent f at token t, written out here
const act = (t, f) => (f === t % 5 ? 1 + t : f === 5 + (t % 3) ? 0.5 : 0);

test("sparseRows: rows, a value lookup and a column from offsets + indices + values", () => {
  const r = sparseRows(new Int32Array([0, 2, 3, 3]), new Int32Array([1, 3, 2]), new Float32Array([2, 0.5, -4]));
  assert.equal(r.n, 3);
  assert.deepEqual([...r.row(0).indices], [1, 3]);
  assert.equal(r.valueOf(0, 3), 0.5);
  assert.equal(r.valueOf(2, 3), 0);
  assert.deepEqual([...r.column(2)], [0, -4, 0]);
  assert.equal(r.max, 4);
});

test("feature_explorer: the last token's features listed with index, label and an activation bar", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  const t = N - 1; // token 5: latent 0 (value 6) then latent 7 (0.5)
  assert.deepEqual(feats(m.root), [t % 5, 5 + (t % 3)]);
  const rows = [...m.root.querySelectorAll(".ew-fx-feat")];
  assert.deepEqual(rows.map((r) => r.querySelector(".ew-fx-idx").textContent), ["#0", "#7"]);
  assert.deepEqual(rows.map((r) => r.querySelector(".ew-fx-label").textContent), ["zero", "no label"]);
  assert.deepEqual(rows.map((r) => Number(r.dataset.value)), [6, 0.5]);
  // bars relative to the largest activation of the text (6): full and a twelfth
  assert.deepEqual(rows.map((r) => r.querySelector(".ew-fx-fill").style.width), ["100.0%", "8.3%"]);
  assert.match(m.root.querySelector(".ew-fx-head").textContent, /2 active features at token 5/);
  assert.equal(m.root.querySelector(".ew-fx-attr"), null); // no attribution given
  assert.deepEqual(coloured(m.root), Array(N).fill(false)); // no feature: tokens uncoloured
});

test("feature_explorer: hovering a token lists its features; leaving shows the selected (else last) token's", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  fire(w, tok(m.root, 2), "mouseover");
  assert.deepEqual(feats(m.root), [2, 7]);
  assert.match(m.tipText(), /token 2/);
  assert.match(m.tipText(), /#2.*3/);
  fire(w, m.root.querySelector(".ew-tokens"), "mouseleave");
  assert.deepEqual(feats(m.root), [0, 7]);
  fire(w, tok(m.root, 1), "click");
  assert.deepEqual(m.model.sets("selected_token"), [1]);
  assert.deepEqual(feats(m.root), [1, 6]);
  assert.ok(tok(m.root, 1).classList.contains("ew-selected"));
});

test("feature_explorer: hovering a feature colours the tokens by its activation (data-value) and draws it; saves nothing", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  const row = m.root.querySelector('.ew-fx-feat[data-feature="7"]');
  fire(w, row, "mouseover");
  const want = TOKENS.map((_, t) => act(t, 7));
  assert.deepEqual(tokValues(m.root), want);
  assert.deepEqual(coloured(m.root), want.map((v) => v > 0));
  assert.match(m.tipText(), /feature #7/);
  const spark = m.root.querySelector("svg.ew-fx-spark");
  assert.equal(spark.dataset.feature, "7");
  assert.equal(spark.querySelector(".ew-spark-line").getAttribute("points").split(" ").length, N);
  assert.match(m.root.querySelector(".ew-legend").getAttribute("aria-label"), /#7: activation/);
  assert.equal(m.model.saves(), 0);
  fire(w, m.root.querySelector(".ew-fx-list"), "mouseleave");
  assert.deepEqual(tokValues(m.root), Array(N).fill(null));
});

test("feature_explorer: click and Enter pin a feature (toggle), arrows move; selected_feature from Python recolours", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  const row = (f) => m.root.querySelector(`.ew-fx-feat[data-feature="${f}"]`);
  fire(w, row(0), "click");
  assert.deepEqual(m.model.sets("selected_feature"), [0]);
  assert.ok(row(0).classList.contains("ew-selected"));
  assert.deepEqual(tokValues(m.root), TOKENS.map((_, t) => act(t, 0)));
  fire(w, row(0), "click");
  assert.deepEqual(m.model.sets("selected_feature"), [0, -1]);
  row(0).focus();
  const ev = fire(w, row(0), "keydown", { key: "ArrowDown" });
  assert.ok(ev.defaultPrevented);
  assert.equal(document.activeElement, row(7));
  assert.deepEqual(tokValues(m.root), TOKENS.map((_, t) => act(t, 7))); // the focused feature previews
  fire(w, row(7), "keydown", { key: "Enter" });
  assert.deepEqual(m.model.sets("selected_feature"), [0, -1, 7]);
  m.model.set("selected_feature", 5);
  row(7).blur();
  fire(w, m.root.querySelector(".ew-fx-list"), "focusout");
  assert.deepEqual(tokValues(m.root), TOKENS.map((_, t) => act(t, 5)));
});

test("feature_explorer: attribution as a signed bar beside the activation, named by its target", () => {
  const s = viewStates(TOKENS).feature_explorer;
  // token 5: latent 0 attributes -2, latent 7 +1; token 0: latent 0 +0.5
  const state = { ...s, attribution_offsets: arr([0, 1, 1, 1, 1, 1, 3], "int32", [N + 1]), attribution_indices: arr([0, 0, 7], "int32", [3]),
    attribution_values: arr([0.5, -2, 1], "float32", [3]), attribution_target: "logit of ' mat'" };
  const m = mount(state);
  const bars = [...m.root.querySelectorAll(".ew-fx-attr")];
  assert.deepEqual(bars.map((b) => Number(b.dataset.value)), [-2, 1]);
  assert.ok(bars[0].querySelector(".ew-fx-attr-fill").classList.contains("ew-fx-neg"));
  assert.deepEqual(bars.map((b) => b.querySelector(".ew-fx-attr-fill").style.width), ["50.0%", "25.0%"]);
  assert.match(m.root.querySelector(".ew-fx-cols").textContent, /attribution to logit of ' mat'/);
  fire(w, m.root.querySelector('.ew-fx-feat[data-feature="7"]'), "mouseover");
  assert.match(m.tipText(), /attribution to logit of ' mat'\s*\+?1/);
});

test("feature_explorer: hostile labels, target and dictionary name render as literal text", () => {
  const s = viewStates(TOKENS).feature_explorer;
  const labels = HOSTILE.slice(0, 2).map((d, i) => ({ index: [0, 7][i], description: d }));
  const m = mount({ ...s, feature_labels: labels, dictionary: HOSTILE[1], attribution_target: HOSTILE[0],
    attribution_offsets: arr([0, 0, 0, 0, 0, 0, 1], "int32", [N + 1]), attribution_indices: arr([7], "int32", [1]), attribution_values: arr([1], "float32", [1]) });
  assert.equal(m.root.querySelectorAll("img, script, b").length, 0);
  assert.deepEqual([...m.root.querySelectorAll(".ew-fx-label")].map((l) => l.textContent), [HOSTILE[0], HOSTILE[1]]);
  fire(w, m.root.querySelector('.ew-fx-feat[data-feature="0"]'), "mouseover");
  assert.ok(m.tipText().includes(HOSTILE[0]));
  assert.equal(m.el.querySelectorAll("img, script, b").length, 0);
});

test("feature_explorer: n_top caps the list; a token with no features says so", () => {
  const s = viewStates(TOKENS).feature_explorer;
  const m = mount({ ...s, n_top: 1, feature_offsets: arr([0, 2, 4, 6, 8, 10, 10], "int32", [N + 1]) });
  assert.deepEqual(feats(m.root), []); // the last token now has none
  assert.match(m.root.querySelector(".ew-fx-head").textContent, /0 active features at token 5/);
  fire(w, tok(m.root, 3), "mouseover");
  assert.deepEqual(feats(m.root), [3]);
  assert.match(m.root.querySelector(".ew-fx-head").textContent, /the 1 strongest/);
});

test("feature_explorer: the attribution header keeps the target's quoted token on one line (.ew-fx-target, nowrap)", () => {
  const s = viewStates(TOKENS).feature_explorer;
  const state = { ...s, attribution_offsets: arr([0, 1, 1, 1, 1, 1, 3], "int32", [N + 1]), attribution_indices: arr([0, 0, 7], "int32", [3]),
    attribution_values: arr([0.5, -2, 1], "float32", [3]), attribution_target: "logit of ' mat' - \"it's\"" };
  const m = mount(state);
  const head = m.root.querySelectorAll(".ew-fx-cols .ew-fx-colhead")[4];
  assert.equal(head.textContent, "attribution to logit of ' mat' - \"it's\"");
  assert.deepEqual([...head.querySelectorAll(".ew-fx-target")].map((t) => t.textContent), ["' mat'", "\"it's\""]);
  const ws = getComputedStyle(head.querySelector(".ew-fx-target")).whiteSpace;
  assert.ok(ws === "pre" || ws === "nowrap", `the quoted token does not wrap (white-space: ${ws})`);
  m.cleanup();
  assert.deepEqual(quotedParts("' dog'"), [{ text: "' dog'", quoted: true }]);
  assert.deepEqual(quotedParts("plain"), [{ text: "plain", quoted: false }]);
});

test("feature_explorer: with no feature hovered or selected the hint is said once (not again in the legend)", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  const said = m.root.textContent.split("hover or select a feature").length - 1;
  assert.equal(said, 1);
  assert.match(m.root.querySelector(".ew-fx-spark-row").textContent, /hover or select a feature/);
  const lg = m.root.querySelector(".ew-legend");
  assert.ok(lg, "a legend: the scale a feature colours the tokens with");
  assert.doesNotMatch(lg.textContent + lg.getAttribute("aria-label"), /hover or select/);
  assert.match(lg.textContent, /a feature's activation\s*0.*its max/);
  fire(w, m.root.querySelector('.ew-fx-feat[data-feature="7"]'), "mouseover");
  assert.match(m.root.querySelector(".ew-legend").getAttribute("aria-label"), /#7: activation/);
  m.cleanup();
});

test("feature_explorer: a feature row has room inside its outline (horizontal padding), the column heads aligned with it", () => {
  const m = mount(viewStates(TOKENS).feature_explorer);
  fire(w, m.root.querySelector('.ew-fx-feat[data-feature="7"]'), "click");
  const row = m.root.querySelector(".ew-fx-feat.ew-selected");
  const px = (el, p) => parseFloat(getComputedStyle(el)[p]) || 0;
  assert.ok(px(row, "paddingLeft") >= 4, `padding-left ${getComputedStyle(row).paddingLeft}`);
  assert.ok(px(row, "paddingRight") >= 4);
  const cols = m.root.querySelector(".ew-fx-cols");
  assert.equal(px(cols, "paddingLeft"), px(row, "paddingLeft"), "the heads line up with the rows' cells");
  m.cleanup();
});
