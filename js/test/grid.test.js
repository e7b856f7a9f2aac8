import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createGrid, gridMode, hitTest, navigate, DEFAULT_THRESHOLD } from "../src/lib/grid.js";
import { setupDom, teardownDom, fire, installFakeCanvas } from "./helpers.js";

let w;
beforeEach(() => (w = setupDom()));
afterEach(() => teardownDom(w));

const color = () => [10, 20, 30];

test("DOM below/at the threshold, canvas above", () => {
  assert.equal(DEFAULT_THRESHOLD, 4000);
  assert.equal(gridMode(40, 100), "dom");
  assert.equal(gridMode(40, 101), "canvas");
  assert.equal(gridMode(48, 1000), "canvas");
  const dom = createGrid({ nRows: 40, nCols: 100, color });
  assert.equal(dom.mode, "dom");
  assert.equal(dom.el.querySelectorAll(".ew-cell").length, 4000);
  assert.equal(dom.el.querySelectorAll("canvas").length, 0);
  const cv = createGrid({ nRows: 40, nCols: 101, color });
  assert.equal(cv.mode, "canvas");
  assert.equal(cv.el.querySelectorAll(".ew-cell").length, 0);
  assert.equal(cv.el.querySelectorAll("canvas").length, 1);
  assert.equal(createGrid({ nRows: 2, nCols: 2, color, threshold: 3 }).mode, "canvas");
});

test("hit testing from local coordinates", () => {
  assert.deepEqual(hitTest(0, 0, 14, 14, 48, 1000), { r: 0, c: 0 });
  assert.deepEqual(hitTest(13.9, 13.9, 14, 14, 48, 1000), { r: 0, c: 0 });
  assert.deepEqual(hitTest(14, 28, 14, 14, 48, 1000), { r: 2, c: 1 });
  assert.deepEqual(hitTest(14 * 999 + 5, 14 * 47 + 5, 14, 14, 48, 1000), { r: 47, c: 999 });
  assert.equal(hitTest(14 * 1000, 5, 14, 14, 48, 1000), null);
  assert.equal(hitTest(-1, 5, 14, 14, 48, 1000), null);
  const g = createGrid({ nRows: 48, nCols: 1000, cellW: 14, cellH: 14, color });
  assert.deepEqual(g.cellAt(14 * 500 + 1, 14 * 20 + 1), { r: 20, c: 500 });
});

test("navigate clamps at edges", () => {
  assert.deepEqual(navigate("ArrowLeft", 0, 0, 3, 3), { r: 0, c: 0 });
  assert.deepEqual(navigate("ArrowDown", 2, 1, 3, 3), { r: 2, c: 1 });
  assert.deepEqual(navigate("ArrowRight", 1, 1, 3, 3), { r: 1, c: 2 });
  assert.deepEqual(navigate("End", 1, 0, 3, 5), { r: 1, c: 4 });
  assert.deepEqual(navigate("End", 1, 0, 3, 5, true), { r: 2, c: 4 });
  assert.equal(navigate("a", 1, 0, 3, 5), null);
});

test("DOM grid: hover, keyboard focus moves, Enter and click commit", () => {
  const hovers = [];
  const commits = [];
  const g = createGrid({
    nRows: 3, nCols: 4, color, text: (r, c) => `${r}:${c}`,
    onHover: (r, c, how) => hovers.push([r, c, how]), onCommit: (r, c) => commits.push([r, c]),
  });
  document.body.appendChild(g.el);
  const cell = g.cellElement(1, 2);
  assert.equal(cell.textContent, "1:2");
  fire(w, cell, "mouseover");
  assert.deepEqual(hovers.at(-1), [1, 2, "mouse"]);
  assert.deepEqual(commits, []);
  fire(w, cell, "click");
  assert.deepEqual(commits, [[1, 2]]);
  g.cellElement(0, 0).focus();
  assert.deepEqual(hovers.at(-1), [0, 0, "focus"]);
  fire(w, g.cellElement(0, 0), "keydown", { key: "ArrowDown" });
  assert.equal(document.activeElement, g.cellElement(1, 0));
  assert.equal(g.cellElement(1, 0).tabIndex, 0);
  assert.equal(g.cellElement(0, 0).tabIndex, -1);
  assert.deepEqual(hovers.at(-1), [1, 0, "focus"]);
  fire(w, g.cellElement(1, 0), "keydown", { key: "Enter" });
  assert.deepEqual(commits.at(-1), [1, 0]);
  g.setSelected(2, 3);
  assert.ok(g.cellElement(2, 3).classList.contains("ew-selected"));
  g.setSelected(-1, -1);
  assert.equal(g.el.querySelectorAll(".ew-selected").length, 0);
});

test("canvas grid 48 x 1000: hover moves an overlay box without redrawing; keyboard works", () => {
  const log = installFakeCanvas(w);
  const hovers = [];
  const commits = [];
  let colorCalls = 0;
  const g = createGrid({
    nRows: 48, nCols: 1000, cellW: 14, cellH: 14,
    color: (r, c) => (colorCalls++, [r, c % 256, 0]),
    onHover: (r, c, how) => hovers.push([r, c, how]), onCommit: (r, c) => commits.push([r, c]),
  });
  document.body.appendChild(g.el);
  assert.equal(g.mode, "canvas");
  assert.equal(g.drawCount, 1, "drawn once");
  assert.equal(colorCalls, 48 * 1000, "one colour per cell");
  const puts = log.filter((c) => c[0] === "putImageData");
  assert.equal(puts.length, 1);
  assert.equal(puts[0][2].width, 1000);
  assert.equal(puts[0][2].height, 48);
  assert.equal(puts[0][2].data[(2 * 1000 + 300) * 4 + 1], 300 % 256, "pixel (r=2, c=300) has its cell colour");
  const logLen = log.length;
  const before = { draws: g.drawCount, colorCalls };
  // happy-dom lays nothing out: the canvas rect is at (0, 0), so client coords are local coords
  for (let i = 0; i < 200; i++) fire(w, g.el, "mousemove", { clientX: 14 * (i * 5) + 3, clientY: 14 * (i % 48) + 3 });
  assert.equal(g.drawCount, before.draws, "no redraw on hover");
  assert.equal(log.length, logLen, "no canvas calls on hover");
  assert.equal(colorCalls, before.colorCalls, "colour function not re-evaluated on hover");
  assert.deepEqual(hovers.at(-1), [199 % 48, 995, "mouse"]);
  assert.equal(g.hoverBox.hidden, false);
  assert.equal(g.hoverBox.style.transform, `translate(${995 * 14}px, ${(199 % 48) * 14}px)`);
  fire(w, g.el, "click", { clientX: 14 * 7 + 1, clientY: 14 * 3 + 1 });
  assert.deepEqual(commits, [[3, 7]]);
  fire(w, g.el, "mouseleave");
  assert.deepEqual(hovers.at(-1), [-1, -1, "mouse"]);
  g.el.focus();
  fire(w, g.el, "keydown", { key: "ArrowRight" });
  fire(w, g.el, "keydown", { key: "ArrowDown" });
  assert.deepEqual(hovers.at(-1), [4, 8, "focus"]);
  fire(w, g.el, "keydown", { key: "Enter" });
  assert.deepEqual(commits.at(-1), [4, 8]);
  assert.match(g.el.querySelector("[aria-live]").textContent, /row 4, column 8/);
});
