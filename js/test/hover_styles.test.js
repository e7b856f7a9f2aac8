// Hover must not force a layout of the grid: no hover / active style may change an element's size
// (a bolder row label widened the max-content label column and re-laid out every cell per hover),
// and DOM grids are fixed-size containment boundaries.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { CSS } from "../src/lib/styles.js";
import { createGrid } from "../src/lib/grid.js";
import { setupDom, teardownDom } from "./helpers.js";

let w;
beforeEach(() => (w = setupDom()));
afterEach(() => teardownDom(w));

const SIZE_PROPS = /^(font|font-weight|font-size|font-family|letter-spacing|word-spacing|padding|padding-\w+|margin|margin-\w+|border|border-width|border-(top|right|bottom|left)(-width)?|width|height|min-width|max-width|line-height|display|position)$/;

function rules(css) {
  const out = [];
  const re = /([^{}]+)\{([^{}]*)\}/g;
  const text = css.replace(/\/\*[\s\S]*?\*\//g, "");
  let m;
  while ((m = re.exec(text))) {
    const decls = m[2]
      .split(";")
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => [d.slice(0, d.indexOf(":")).trim(), d.slice(d.indexOf(":") + 1).trim()]);
    for (const sel of m[1].split(",")) out.push({ sel: sel.trim(), decls });
  }
  return out;
}

test("hover / active styles never change size (no forced re-layout of the grid on hover)", () => {
  const hoverish = rules(CSS).filter((r) => /:hover|\.ew-active\b/.test(r.sel));
  assert.ok(hoverish.length >= 5, "found the hover rules");
  for (const r of hoverish) {
    for (const [prop] of r.decls) assert.doesNotMatch(prop, SIZE_PROPS, `${r.sel} sets ${prop} on hover`);
  }
});

test("DOM grid: fixed inline size and contain: strict", () => {
  const grid = rules(CSS).find((r) => r.sel === ".ew-grid-dom");
  assert.ok(grid, ".ew-grid-dom rule");
  assert.ok(grid.decls.some(([p, v]) => p === "contain" && v === "strict"));
  const g = createGrid({ nRows: 3, nCols: 7, cellW: 44, cellH: 22, color: () => [0, 0, 0], mode: "dom" });
  assert.equal(g.el.style.width, `${7 * 44}px`);
  assert.equal(g.el.style.height, `${3 * 22}px`);
});
