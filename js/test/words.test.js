// Views at unit "word" (out.by_word()): tokens are words, raw_tokens their pieces joined by spaces; tooltips list
// the pieces, the saliency legend says that a word's value is the sum over its pieces. At unit "token" nothing
// of this shows.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, fire, viewStates, installFakeCanvas } from "./helpers.js";
import saliency from "../src/saliency.js";
import factorExplorer from "../src/factor_explorer.js";
import attention from "../src/attention.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const WORDS = ["The", " cabinetmaker's", " keys", ",", "\n", " 2024"];
const PIECES = ["The", "Ġcabinet maker 's", "Ġkeys", ",", "Ċ", "Ġ 2 0 2 4"];

function mount(view, state) {
  const model = fakeModel(state);
  const el = document.createElement("div");
  document.body.appendChild(el);
  view.render({ model, el });
  const root = el.querySelector(".ew-root");
  const tip = () => (el.querySelector(".ew-tooltip").hidden ? "" : el.querySelector(".ew-tooltip").textContent);
  return { root, tip, spans: () => [...root.querySelectorAll(".ew-tokens > .ew-tok")] };
}

const states = () => {
  const s = viewStates(WORDS);
  for (const v of ["saliency", "factor_explorer", "attention"]) s[v].raw_tokens = PIECES;
  return s;
};

test("saliency at word level: pieces in every tooltip, the legend says how a word's value is formed", () => {
  const m = mount(saliency, { ...states().saliency, unit: "word" });
  const spans = m.spans();
  fire(w, spans[4], "mouseover"); // an explained word
  assert.match(m.tip(), /explained word 4/);
  assert.match(m.tip(), /piecesĊ/);
  fire(w, spans[1], "mouseover"); // an input of it
  assert.match(m.tip(), /word 1/);
  assert.match(m.tip(), /piecesĠcabinet maker 's/);
  assert.match(m.root.querySelector(".ew-legend").textContent, /word 4 \(each word: the sum over its pieces\)/);
  const t = mount(saliency, states().saliency);
  fire(w, t.spans()[1], "mouseover");
  assert.doesNotMatch(t.tip(), /pieces/);
  assert.match(t.tip(), /token 1/);
  assert.doesNotMatch(t.root.querySelector(".ew-legend").textContent, /pieces/);
});

test("factor explorer and attention at word level list the pieces of the hovered word", () => {
  for (const [view, name] of [[factorExplorer, "factor_explorer"], [attention, "attention"]]) {
    const m = mount(view, { ...states()[name], unit: "word" });
    fire(w, m.spans()[5], "mouseover");
    assert.match(m.tip(), /piecesĠ 2 0 2 4/, name);
    const t = mount(view, states()[name]);
    fire(w, t.spans()[5], "mouseover");
    assert.doesNotMatch(t.tip(), /pieces/, name);
  }
});
