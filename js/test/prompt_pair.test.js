// PromptPairView's rank-difference grid: a cell that has no value in one prompt (a gap, or a prompt's last token, which
// has no next token to rank) is drawn in a muted colour of the theme (not a fixed light grey, glaring on dark) and
// hatched (class ew-nocell); a visible legend item says what it means, and its tooltip says why.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, viewStates, installFakeCanvas } from "./helpers.js";
import promptPair from "../src/prompt_pair.js";
import { NO_VALUE, css } from "../src/lib/colors.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const TOKENS = ["The", " keys", " to", " the", " cabinet"];
const n = TOKENS.length;
function mount(extra = {}) {
  const model = fakeModel({ ...viewStates(TOKENS).prompt_pair, ...extra });
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = promptPair.render({ model, el });
  const tip = () => el.querySelector(".ew-tooltip");
  return { model, el, cleanup, root: el.querySelector(".ew-root"), tipText: () => (tip().hidden ? null : tip().textContent) };
}
// (the rank-difference grid is the view's first grid: there is no DLA section here)
const cell = (root, r, c) => root.querySelector(`.ew-grid .ew-cell[data-r="${r}"][data-c="${c}"]`);

for (const theme of ["light", "dark"]) {
  test(`prompt_pair (${theme}): the last column (no next token in either prompt) is hatched in the theme's muted colour`, () => {
    const m = mount({ theme });
    for (let l = 0; l < 3; l++) {
      const last = cell(m.root, l, n - 1);
      assert.ok(last.classList.contains("ew-nocell"), `layer ${l}: the last column has no cell`);
      assert.equal(last.style.backgroundColor, css(NO_VALUE[theme]));
      assert.notEqual(last.style.backgroundColor, "rgb(200, 200, 200)");
      assert.equal(last.textContent, "");
      const other = cell(m.root, l, 0);
      assert.ok(!other.classList.contains("ew-nocell"));
      assert.notEqual(other.textContent, "");
    }
    m.cleanup();
  });
}

test("prompt_pair: a visible legend item explains the hatched cells (a gap or a prompt's last token)", () => {
  const m = mount();
  const note = m.root.querySelector(".ew-legend .ew-pp-nocell-note");
  assert.ok(note, "a visible legend item, not only the aria-label");
  assert.ok(note.querySelector(".ew-legend-swatch.ew-nocell"), "its swatch drawn as the cells are");
  assert.match(note.textContent, /no cell/);
  assert.match(note.textContent, /gap/);
  assert.match(note.textContent, /last token/);
  assert.match(m.root.querySelector(".ew-legend").getAttribute("aria-label"), /last token/);
  m.cleanup();
});

test("prompt_pair: a last-column cell's tooltip says why it has no value; a gap's says which prompt has the gap", () => {
  const m = mount();
  fire(w, cell(m.root, 1, n - 1), "mouseover");
  assert.match(m.tipText(), /no cell in one prompt: A's last token, no next token; B's last token, no next token/);
  m.cleanup();
  // B has a gap at column 2: A's token 2 has no counterpart
  const g = mount({
    tokens_b: TOKENS.filter((_, i) => i !== 2), raw_tokens_b: TOKENS.filter((_, i) => i !== 2),
    alignment: arr([0, 0, 1, 1, 2, -1, 3, 2, 4, 3], "int32", [n, 2]),
    differs: arr([0, 0, 1, 0, 0], "uint8", [n]),
    ranks_b: arr(Array.from({ length: 3 * n }, (_, i) => (i % n === 2 || i % n === n - 1 ? 0 : 2)), "int32", [3, n]),
  });
  fire(w, cell(g.root, 0, 2), "mouseover");
  assert.match(g.tipText(), /no cell in one prompt: a gap in B/);
  assert.ok(cell(g.root, 0, 2).classList.contains("ew-nocell"));
  g.cleanup();
});
