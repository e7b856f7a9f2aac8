// Tooltip placement: below / right of the anchor when it fits, flipped above / left when it would
// be cut off by the viewport or a clipping ancestor (JupyterLab's .jp-OutputArea-output is
// overflow: auto), clamped so its top-left stays visible. happy-dom has no layout: geometry is stubbed.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { setupDom, teardownDom, fakeModel, fire, viewStates, installFakeCanvas } from "./helpers.js";
import { createTooltip } from "../src/lib/tooltip.js";
import rankGrid from "../src/rank_grid.js";

let w;
beforeEach(() => {
  w = setupDom(); // viewport 1200 x 800
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

const rect = (left, top, right, bottom) => ({ left, top, right, bottom, x: left, y: top, width: right - left, height: bottom - top });
function stubBox(el, r, client = true) {
  el.getBoundingClientRect = () => rect(...r);
  if (client) {
    Object.defineProperty(el, "clientWidth", { configurable: true, get: () => r[2] - r[0] });
    Object.defineProperty(el, "clientHeight", { configurable: true, get: () => r[3] - r[1] });
  }
}
function stubSize(el, width, height) {
  Object.defineProperty(el, "offsetWidth", { configurable: true, get: () => width });
  Object.defineProperty(el, "offsetHeight", { configurable: true, get: () => height });
}
const translate = (el) => {
  const m = /translate\((-?\d+)px, (-?\d+)px\)/.exec(el.style.transform);
  assert.ok(m, el.style.transform);
  return [Number(m[1]), Number(m[2])];
};

/** A scroller (overflow auto) at `scrollerBox` holding a view root at `rootBox`; tooltip 200 x 120. */
function setup(scrollerBox, rootBox = [10, 50, 590, 290]) {
  const scroller = document.createElement("div");
  scroller.className = "jp-OutputArea-output";
  scroller.style.overflow = "auto";
  const root = document.createElement("div");
  scroller.appendChild(root);
  document.body.appendChild(scroller);
  stubBox(scroller, scrollerBox);
  stubBox(root, rootBox);
  const tt = createTooltip(root);
  stubSize(tt.el, 200, 120);
  return { scroller, root, tt };
}
const mouse = (x, y) => ({ clientX: x, clientY: y });

test("tooltip: below-right of the pointer when it fits", () => {
  const { tt } = setup([0, 0, 600, 300]);
  tt.show(["a"], mouse(100, 100));
  assert.equal(tt.el.hidden, false);
  assert.deepEqual(translate(tt.el), [112 - 10, 114 - 50]);
});

test("tooltip: flips above the pointer near the bottom of a clipping ancestor", () => {
  const { tt } = setup([0, 0, 600, 300]);
  tt.show(["a"], mouse(100, 250)); // below would end at 384 > 300
  assert.deepEqual(translate(tt.el), [102, 250 - 14 - 120 - 50]);
});

test("tooltip: flips left of the pointer near the right edge", () => {
  const { tt } = setup([0, 0, 600, 300]);
  tt.show(["a"], mouse(500, 100));
  assert.deepEqual(translate(tt.el), [500 - 12 - 200 - 10, 64]);
});

test("tooltip: element anchor in the bottom row goes above it (the JupyterLab clipping case)", () => {
  const { tt } = setup([0, 0, 600, 300]);
  const cell = document.createElement("div");
  stubBox(cell, [400, 270, 444, 292]);
  tt.show(["layer", "rank 3", "top 5"], cell);
  assert.deepEqual(translate(tt.el), [400 - 10, 270 - 4 - 120 - 50]);
  // and right-aligned with the anchor when it would pass the right edge
  stubBox(cell, [500, 100, 544, 122]);
  tt.show(["a"], cell);
  assert.deepEqual(translate(tt.el), [544 - 200 - 10, 126 - 50]);
});

test("tooltip: the viewport clips too (a scroller taller than the window)", () => {
  const { tt } = setup([0, 0, 1000, 2000], [10, 50, 990, 1990]);
  tt.show(["a"], mouse(100, 750)); // viewport is 800 high
  assert.deepEqual(translate(tt.el), [102, 750 - 14 - 120 - 50]);
});

test("tooltip: no room on either side -> the roomier side, clamped inside the visible area", () => {
  const { tt } = setup([0, 0, 600, 150], [10, 10, 590, 140]);
  tt.show(["a"], mouse(100, 60)); // 90 px below, 60 above, 120 needed
  assert.deepEqual(translate(tt.el), [102, 150 - 120 - 10]);
  // never above the top of the visible area
  tt.show(["a"], mouse(100, 20));
  const [, top] = translate(tt.el);
  assert.ok(top + 10 >= 0, `tooltip top ${top + 10} must be inside the scroller`);
});

test("tooltip: clipping ancestors are looked up once per hover session, not per move", () => {
  const { tt, scroller } = setup([0, 0, 600, 300]);
  let lookups = 0;
  const orig = globalThis.getComputedStyle;
  globalThis.getComputedStyle = (n) => {
    lookups++;
    return orig(n);
  };
  try {
    tt.show(["a"], mouse(100, 100));
    const first = lookups;
    assert.ok(first >= 1);
    for (let i = 0; i < 5; i++) tt.show(["a"], mouse(100 + i, 100));
    assert.equal(lookups, first, "moves inside a session reuse the cached ancestors");
    tt.hide();
    stubBox(scroller, [0, 0, 600, 200]);
    tt.show(["a"], mouse(100, 150));
    assert.ok(lookups > first, "a new session looks again");
    assert.deepEqual(translate(tt.el), [102, 150 - 14 - 120 - 50]);
  } finally {
    globalThis.getComputedStyle = orig;
  }
});

test("rank_grid in a clipping output area: focus on a bottom-row cell puts the tooltip above it", () => {
  const s = viewStates(["The", " cat", " sat", " on", "\n", " mat"]).rank_grid;
  const host = document.createElement("div");
  host.className = "jp-OutputArea-output";
  host.style.overflow = "auto";
  document.body.appendChild(host);
  stubBox(host, [0, 0, 800, 200]);
  rankGrid.render({ model: fakeModel(s), el: host });
  const root = host.querySelector(".ew-root");
  stubBox(root, [0, 0, 800, 200]);
  const tip = host.querySelector(".ew-tooltip");
  stubSize(tip, 180, 120);
  const cell = host.querySelector('.ew-cell[data-r="2"][data-c="1"]'); // bottom row of 3
  stubBox(cell, [100, 150, 144, 172]);
  cell.focus();
  assert.equal(tip.hidden, false);
  assert.match(tip.textContent, /rank12/);
  const [left, top] = translate(tip);
  assert.equal(top, 150 - 4 - 120, "above the cell, not cut off below it");
  assert.equal(left, 100);
  // a mouse hover on the next bottom-row cell flips too
  const next = host.querySelector('.ew-cell[data-r="2"][data-c="2"]');
  fire(w, next, "mouseover", { clientX: 160, clientY: 165 });
  assert.match(tip.textContent, /rank13/);
  assert.equal(translate(tip)[1], 165 - 14 - 120);
});
