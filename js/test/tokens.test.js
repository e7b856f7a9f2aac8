import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { tokenParts, fillToken, createTokenRow, MARK_SPACE, MARK_NEWLINE, MARK_TAB } from "../src/lib/tokens.js";
import { setupDom, teardownDom, fire } from "./helpers.js";

let w;
beforeEach(() => (w = setupDom()));
afterEach(() => teardownDom(w));

test("whitespace markers", () => {
  assert.deepEqual(tokenParts(" is"), [{ kind: "space", text: MARK_SPACE }, { kind: "text", text: "is" }]);
  assert.deepEqual(tokenParts("\n"), [{ kind: "nl", text: MARK_NEWLINE }]);
  assert.deepEqual(tokenParts("\t"), [{ kind: "tab", text: MARK_TAB }]);
  assert.deepEqual(tokenParts("a b"), [{ kind: "text", text: "a b" }], "inner spaces stay");
  assert.deepEqual(tokenParts("  x\n\n").map((p) => p.kind), ["space", "space", "text", "nl", "nl"]);
  assert.deepEqual(tokenParts("\r\n").map((p) => p.kind), ["nl"]);
  assert.deepEqual(tokenParts(""), []);
});

test("fillToken: markers are faint aria-hidden spans; text via text nodes", () => {
  const s = document.createElement("span");
  fillToken(s, " is\t");
  const marks = s.querySelectorAll(".ew-ws");
  assert.equal(marks.length, 2);
  assert.ok(marks[0].classList.contains("ew-ws-space"));
  assert.equal(marks[0].getAttribute("aria-hidden"), "true");
  assert.equal(marks[1].textContent, MARK_TAB);
  assert.equal(s.textContent, `${MARK_SPACE}is${MARK_TAB}`);
  const n = document.createElement("span");
  fillToken(n, "\n");
  assert.equal(n.textContent, MARK_NEWLINE);
  assert.ok(n.querySelector(".ew-ws-nl"));
});

test("token row: prompt vs generated, raw token in title and aria-label", () => {
  const row = createTokenRow({ tokens: ["Hello", " world", "\n"], rawTokens: ["Hello", "Ġworld", "Ċ"], nInput: 2 });
  const [a, b, c] = row.spans;
  assert.ok(a.classList.contains("ew-tok-prompt"));
  assert.ok(b.classList.contains("ew-tok-prompt"));
  assert.ok(c.classList.contains("ew-tok-gen"));
  assert.equal(b.title, "Ġworld");
  assert.match(b.getAttribute("aria-label"), /token 1: "Ġworld" \(prompt\)/);
  assert.match(c.getAttribute("aria-label"), /token 2: "Ċ" \(generated\)/);
  assert.equal(a.tabIndex, 0);
  assert.equal(b.tabIndex, -1);
});

test("token row keyboard: arrows move roving focus, Enter commits, hover reports", () => {
  const hovers = [];
  const commits = [];
  const row = createTokenRow({
    tokens: ["a", "b", "c"],
    nInput: 3,
    onHover: (i, el, how) => hovers.push([i, how]),
    onCommit: (i) => commits.push(i),
  });
  document.body.appendChild(row.el);
  row.spans[0].focus();
  fire(w, row.spans[0], "keydown", { key: "ArrowRight" });
  assert.equal(row.active, 1);
  assert.equal(row.spans[1].tabIndex, 0);
  assert.equal(row.spans[0].tabIndex, -1);
  fire(w, row.spans[1], "keydown", { key: "End" });
  assert.equal(row.active, 2);
  fire(w, row.spans[2], "keydown", { key: "Enter" });
  assert.deepEqual(commits, [2]);
  fire(w, row.spans[1], "mouseover");
  assert.deepEqual(hovers.at(-1), [1, "mouse"]);
  assert.ok(hovers.some(([i, how]) => i === 2 && how === "focus"), "focus reported as hover");
  fire(w, row.el, "mouseleave");
  assert.deepEqual(hovers.at(-1), [-1, "mouse"]);
});
