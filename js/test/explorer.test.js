// The explorer (issue 16) with a fake model: line packing, a virtualised row of 8,000 tokens (only the lines in view
// are in the DOM), hover previews without writing back, click / keys select and write selected_token, panels only for
// the arrays given, turn markers and special tokens.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, arr, fire, installFakeCanvas } from "./helpers.js";
import explorer from "../src/explorer.js";
import { packLines } from "../src/lib/virtual_tokens.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

function mount(state) {
  const model = fakeModel({ title: "", theme: "light", ...state });
  const el = document.createElement("div");
  document.body.appendChild(el);
  const cleanup = explorer.render({ model, el });
  return { model, el, cleanup, root: el.querySelector(".ew-root") };
}
const tokensOf = (n) => Array.from({ length: n }, (_, i) => ` t${i}`);
const lensState = (n, L = 3) => ({
  tokens: tokensOf(n), raw_tokens: [], n_input_tokens: n, layer_labels: [],
  ranks: arr(Array.from({ length: L * (n - 1) }, (_, i) => 1 + (i % 97)), "int32", [L, n - 1]),
  selected_token: 0,
});
const heading = (m, name) => m.root.querySelector(`[data-panel="${name}"] .ew-panel-title`).textContent;
const span = (m, i) => m.root.querySelector(`[data-token-index="${i}"]`);

test("packLines: a line holds what fits, breaks before a turn, extra width before a badge", () => {
  const { starts, lineOf } = packLines([40, 40, 40, 40, 40], 100);
  assert.deepEqual(Array.from(starts), [0, 2, 4, 5]); // 42 + 42 fit in 100, a third does not
  assert.deepEqual(Array.from(lineOf), [0, 0, 1, 1, 2]);
  const turns = packLines([10, 10, 10, 10], 1000, (i) => i === 2, (i) => (i === 2 ? 500 : 0));
  assert.deepEqual(Array.from(turns.starts), [0, 2, 4]);
});

test("8,000 tokens: only the lines in view are in the DOM; End selects the last token and shows it", () => {
  const n = 8000;
  const m = mount(lensState(n));
  const rendered = m.root.querySelectorAll("[data-token-index]");
  assert.ok(rendered.length > 10 && rendered.length < 1000, `${rendered.length} token elements`);
  assert.ok(span(m, 0) && !span(m, n - 1));
  const row = m.root.querySelector(".ew-vrow");
  fire(w, row, "keydown", { key: "End" });
  assert.deepEqual(m.model.sets("selected_token"), [n - 1]);
  assert.ok(span(m, n - 1), "the last token was rendered");
  assert.equal(row.getAttribute("aria-activedescendant"), span(m, n - 1).id);
  assert.ok(heading(m, "lens").includes(`token ${n - 1}`));
  assert.ok(m.root.querySelectorAll("[data-token-index]").length < 1000);
  fire(w, row, "keydown", { key: "Home" });
  assert.deepEqual(m.model.sets("selected_token"), [n - 1, 0]);
  assert.ok(span(m, 0));
  m.cleanup();
});

test("hover previews every panel without writing back; leaving returns to the selection; click selects", async () => {
  const n = 12;
  const m = mount({ ...lensState(n), selected_token: 2 });
  assert.ok(heading(m, "lens").includes("token 2"));
  fire(w, span(m, 5), "mouseover");
  // the lens panel is written in a later frame than the hover's
  assert.ok(m.root.ewExplorer.pending);
  assert.ok(heading(m, "lens").includes("token 2"));
  await m.root.ewExplorer.settled();
  assert.ok(!m.root.ewExplorer.pending);
  assert.ok(heading(m, "lens").includes("token 5"));
  assert.equal(m.model.saves(), 0);
  assert.ok(span(m, 5).classList.contains("ew-active"));
  fire(w, m.root.querySelector(".ew-vrow"), "mouseleave");
  m.root.ewExplorer.flush();
  assert.ok(heading(m, "lens").includes("token 2"));
  fire(w, span(m, 7), "click");
  assert.deepEqual(m.model.sets("selected_token"), [7]);
  assert.equal(m.model.saves(), 1);
  assert.equal(span(m, 7).getAttribute("aria-selected"), "true");
  // Python moves the selection: the view follows
  m.model.set("selected_token", 3);
  fire(w, m.root.querySelector(".ew-vrow"), "mouseleave");
  m.root.ewExplorer.flush();
  assert.ok(heading(m, "lens").includes("token 3"));
  assert.equal(span(m, 3).getAttribute("aria-selected"), "true");
  // the lens column of token 3: data-value = ranks[l, 3]
  const cells = [...m.root.querySelectorAll('[data-panel="lens"] .ew-ex-cell[data-metric="rank"]')];
  assert.deepEqual(cells.map((c) => Number(c.dataset.value)), [0, 1, 2].map((l) => 1 + ((l * (n - 1) + 3) % 97)));
});

test("arrow keys move the selection (Up / Down by a line) and keep the keys in the view", () => {
  const m = mount(lensState(300));
  const row = m.root.querySelector(".ew-vrow");
  const right = fire(w, row, "keydown", { key: "ArrowRight" });
  assert.ok(right.defaultPrevented);
  fire(w, row, "keydown", { key: "ArrowRight" });
  assert.deepEqual(m.model.sets("selected_token"), [1, 2]);
  fire(w, row, "keydown", { key: "ArrowDown" });
  const below = m.model.sets("selected_token").at(-1);
  assert.ok(below > 2, `ArrowDown went to ${below}`);
  assert.equal(span(m, below).parentNode, span(m, 2).parentNode.nextSibling, "the next line");
  const shift = fire(w, row, "keydown", { key: "Enter", shiftKey: true });
  assert.ok(!shift.defaultPrevented, "Shift+Enter is the host's");
});

test("panels only for the arrays given, in order; headings name the shown token", () => {
  const n = 6;
  const bare = mount(lensState(n));
  assert.deepEqual([...bare.root.querySelectorAll("[data-panel]")].map((p) => p.dataset.panel), ["lens"]);
  const K = 2;
  const full = mount({
    ...lensState(n), selected_token: 4, targets: arr([3, 4, 5], "int32", [3]), methods: ["ig"], method: "ig",
    attributions: arr(Array.from({ length: 3 * n }, (_, i) => (i % n) / n), "float32", [1, 3, n]),
    topk_vocab: [" a", " b"], topk_index: arr(Array.from({ length: 3 * n * K }, (_, i) => i % 2), "int32", [3, n, K]),
    topk_probs: arr(Array.from({ length: 3 * n * K }, () => 0.5), "float32", [3, n, K]),
    watch_tokens: [" is"], watch_ranks: arr(Array.from({ length: 3 * n }, (_, i) => i + 1), "int32", [3, n, 1]),
    factors: arr(Array.from({ length: 2 * n }, (_, i) => i), "float32", [2, n]), factor_positions: arr([0, 1, 2, 3, 4, 5], "int32", [n]),
    factor_labels: ["f0", "f1"], neuron_ids: arr(Array.from({ length: n * 2 * 2 }, (_, i) => i % 3), "int32", [n, 2, 2]),
    neuron_values: arr(Array.from({ length: n * 2 }, (_, i) => 10 - i), "float32", [n, 2]),
    attention_keys: arr(Array.from({ length: n * 2 }, (_, i) => (i % 2 ? -1 : 0)), "int32", [1, n, 2]),
    attention_values: arr(Array.from({ length: n * 2 }, (_, i) => (i % 2 ? 0 : 1)), "float32", [1, n, 2]), head_labels: ["mean"],
  });
  const names = [...full.root.querySelectorAll("[data-panel]")].map((p) => p.dataset.panel);
  assert.deepEqual(names, ["saliency", "lens", "predictions", "watch", "factors", "attention"]);
  for (const name of names) assert.ok(heading(full, name).includes("token 4"), `${name}: ${heading(full, name)}`);
  // saliency of token 4 (row 1): inputs 0..3 by |value|, the largest first
  const items = [...full.root.querySelectorAll('[data-panel="saliency"] .ew-ex-item')];
  assert.deepEqual(items.map((i) => Number(i.dataset.position)), [3, 2, 1, 0]);
  assert.equal(Number(items[0].querySelector(".ew-ex-val").dataset.value), Math.fround(3 / n));
  // the last token has no next token to rank
  fire(w, span(full, n - 1), "mouseover");
  full.root.ewExplorer.flush();
  assert.match(full.root.querySelector('[data-panel="lens"]').textContent, /is the last/);
});

test("turns start a line behind a role badge; special tokens are dimmed; word pieces in the tooltip", () => {
  const n = 8;
  const m = mount({
    ...lensState(n), unit: "word", pieces: tokensOf(n).map((t) => [t.slice(0, 2), t.slice(2)]),
    turns: [{ role: "user", start: 0, stop: 4 }, { role: "assistant", start: 4, stop: 8 }],
    special: arr([1, 0, 0, 0, 1, 0, 0, 0], "uint8", [n]),
  });
  const badges = [...m.root.querySelectorAll("[data-turn-role]")].map((b) => b.dataset.turnRole);
  assert.deepEqual(badges, ["user", "assistant"]);
  assert.notEqual(span(m, 4).parentNode, span(m, 3).parentNode, "the assistant's turn starts a line");
  assert.ok(span(m, 0).classList.contains("ew-special") && !span(m, 1).classList.contains("ew-special"));
  assert.ok(span(m, 5).classList.contains("ew-turn-assistant"));
  fire(w, span(m, 5), "mouseover");
  const tip = m.root.querySelector(".ew-tooltip").textContent;
  assert.ok(tip.includes("word 5") && tip.includes("2 pieces") && tip.includes("assistant"), tip);
  m.root.ewExplorer.flush();
  assert.ok(heading(m, "lens").includes("word 5"));
});
