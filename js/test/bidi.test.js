// Bidi controls and zero-width characters: every token is bidi-isolated, and each such character gets
// a visible marker (drawn by CSS from data-mark, so textContent stays the exact token) while the raw
// text stays in title / aria-label.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { tokenParts, fillToken, tokenSpan, createTokenRow, INVISIBLE } from "../src/lib/tokens.js";
import { CSS } from "../src/lib/styles.js";
import { setupDom, teardownDom, fakeModel, fire, viewStates, installFakeCanvas } from "./helpers.js";
import rankGrid from "../src/rank_grid.js";
import saliency from "../src/saliency.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const EXPECTED = {
  0x200b: "ZWSP", 0x200c: "ZWNJ", 0x200d: "ZWJ", 0x200e: "LRM", 0x200f: "RLM",
  0x202a: "LRE", 0x202b: "RLE", 0x202c: "PDF", 0x202d: "LRO", 0x202e: "RLO",
  0x2066: "LRI", 0x2067: "RLI", 0x2068: "FSI", 0x2069: "PDI", 0xfeff: "BOM",
};

test("every bidi control / zero-width character is a marker part that keeps the character", () => {
  for (const [cp, mark] of Object.entries(EXPECTED)) {
    const ch = String.fromCharCode(Number(cp));
    assert.equal(INVISIBLE[ch], mark);
    assert.deepEqual(tokenParts(`a${ch}b`), [
      { kind: "text", text: "a" },
      { kind: "ctl", text: ch, mark },
      { kind: "text", text: "b" },
    ]);
  }
  assert.deepEqual(tokenParts(" \u200b\n").map((p) => p.kind), ["space", "ctl", "nl"]);
  assert.deepEqual(tokenParts("\u05e9\u05dc\u05d5\u05dd"), [{ kind: "text", text: "\u05e9\u05dc\u05d5\u05dd" }], "RTL letters are not controls");
});

test("fillToken: RLO gets a visible, isolated marker; textContent is still the exact token", () => {
  const raw = "\u202Eevil RTL";
  const s = document.createElement("span");
  fillToken(s, raw);
  assert.equal(s.textContent, raw);
  const m = s.querySelector(".ew-ws-ctl");
  assert.ok(m);
  assert.equal(m.dataset.mark, "RLO");
  assert.equal(m.textContent, "\u202E", "the control is confined to its own box");
  assert.equal(m.getAttribute("aria-hidden"), "true");
  assert.equal(m.title, "U+202E RLO");
  assert.equal(m.nextSibling.nodeType, 3);
  assert.equal(m.nextSibling.textContent, "evil RTL");
  const z = document.createElement("span");
  fillToken(z, "zero\u200bwidth\u200c\u200djoin\ufeff");
  assert.deepEqual([...z.querySelectorAll(".ew-ws-ctl")].map((e) => e.dataset.mark), ["ZWSP", "ZWNJ", "ZWJ", "BOM"]);
  assert.equal(z.textContent, "zero\u200bwidth\u200c\u200djoin\ufeff");
});

test("raw text stays in title and aria-label", () => {
  const raw = "a\u202Eb\u2066c";
  const span = tokenSpan(raw, { raw });
  assert.equal(span.title, raw);
  const row = createTokenRow({ tokens: [raw, "x"], rawTokens: [raw, "x"], nInput: 2 });
  assert.equal(row.spans[0].title, raw);
  assert.ok(row.spans[0].getAttribute("aria-label").includes(raw));
  assert.deepEqual([...row.spans[0].querySelectorAll(".ew-ws-ctl")].map((e) => e.dataset.mark), ["RLO", "LRI"]);
});

test("CSS: tokens are bidi-isolated, markers drawn from data-mark in their own isolated box", () => {
  const text = CSS.replace(/\/\*[\s\S]*?\*\//g, "");
  const rule = (sel) => {
    const m = new RegExp(`(^|\\n)${sel.replace(/[.:()]/g, "\\$&")} \\{([^}]*)\\}`).exec(text);
    assert.ok(m, sel);
    return m[2];
  };
  assert.match(rule(".ew-tok"), /unicode-bidi: isolate/);
  assert.match(rule(".ew-tt-tok"), /unicode-bidi: isolate/);
  assert.match(rule(".ew-ws-ctl"), /display: inline-block/);
  assert.match(rule(".ew-ws-ctl"), /unicode-bidi: isolate/);
  assert.match(rule(".ew-ws-ctl::before"), /content: attr\(data-mark\)/);
});

test("views: axes, token rows and tooltips show the markers", () => {
  const tokens = ["The", "\u202Eevil", " zero\u200bwidth", " on", "\n", " mat"];
  const s = viewStates(tokens);
  const el = document.createElement("div");
  document.body.appendChild(el);
  rankGrid.render({ model: fakeModel(s.rank_grid), el });
  const axisToks = [...el.querySelectorAll(".ew-axis-bottom .ew-tok")];
  assert.equal(axisToks[1].querySelector(".ew-ws-ctl").dataset.mark, "RLO");
  assert.equal(axisToks[1].title, "\u202Eevil");
  fire(w, el.querySelector('.ew-cell[data-r="0"][data-c="1"]'), "mouseover");
  const tip = el.querySelector(".ew-tooltip");
  // input token 1 and target token 2 (the top-k rows may show more)
  assert.deepEqual([...tip.querySelectorAll(".ew-ws-ctl")].slice(0, 2).map((e) => e.dataset.mark), ["RLO", "ZWSP"]);
  const el2 = document.createElement("div");
  document.body.appendChild(el2);
  saliency.render({ model: fakeModel(s.saliency), el: el2 });
  const spans = [...el2.querySelectorAll(".ew-tokens > .ew-tok")];
  assert.equal(spans[1].querySelector(".ew-ws-ctl").dataset.mark, "RLO");
  assert.equal(spans[1].querySelector(".ew-tok-text").textContent, "\u202Eevil", "detailed style keeps the exact text");
});
