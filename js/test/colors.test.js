import { test } from "node:test";
import assert from "node:assert/strict";
import {
  viridis, cividis, diverging, divergingScale, sequentialScale, rankScale, autoScale, luminance, textColorFor,
  VIRIDIS, CIVIDIS, formatNumber, formatRank, legend,
} from "../src/lib/colors.js";
import { setupDom, teardownDom } from "./helpers.js";

test("viridis and cividis endpoints", () => {
  assert.deepEqual(viridis(0), [0x44, 0x01, 0x54]);
  assert.deepEqual(viridis(1), [0xfd, 0xe7, 0x25]);
  assert.deepEqual(cividis(0), CIVIDIS[0]);
  assert.deepEqual(cividis(1), CIVIDIS[CIVIDIS.length - 1]);
  assert.deepEqual(viridis(-3), viridis(0), "clamped below");
  assert.deepEqual(viridis(9), viridis(1), "clamped above");
  assert.deepEqual(viridis(NaN), viridis(0));
  assert.deepEqual(viridis(0.5), VIRIDIS[5]);
});

test("sequential ramps have strictly increasing luminance", () => {
  for (const ramp of [viridis, cividis]) {
    let prev = -1;
    for (let i = 0; i <= 200; i++) {
      const L = luminance(ramp(i / 200));
      assert.ok(L >= prev, `luminance not monotone at ${i / 200}`);
      prev = L;
    }
    assert.ok(luminance(ramp(1)) - luminance(ramp(0)) > 0.5);
  }
});

test("diverging scale: neutral centre, blue negative, orange positive, symmetric lightness", () => {
  const c = diverging(0);
  assert.equal(c[0], c[1]);
  assert.equal(c[1], c[2]);
  assert.ok(luminance(c) > 0.9);
  const neg = diverging(-1);
  const pos = diverging(1);
  assert.ok(neg[2] > neg[0], "negative end is blue");
  assert.ok(pos[0] > pos[2], "positive end is orange/red");
  const s = divergingScale(4);
  assert.deepEqual(s(0), c);
  assert.deepEqual(s(4), pos);
  assert.deepEqual(s(-8), neg, "clamped");
  assert.deepEqual(s.domain, [-4, 4]);
  // lightness decreases away from the centre on both sides
  assert.ok(luminance(s(-2)) < luminance(s(-0.5)));
  assert.ok(luminance(s(2)) < luminance(s(0.5)));
});

test("log-rank scale: rank 1 darkest, ordering by log rank", () => {
  const s = rankScale(50000);
  const ranks = [1, 2, 10, 100, 1000, 50000];
  const lum = ranks.map((r) => luminance(s(r)));
  for (let i = 1; i < lum.length; i++) assert.ok(lum[i] > lum[i - 1], `rank ${ranks[i]} not lighter than ${ranks[i - 1]}`);
  assert.deepEqual(s(1), viridis(0));
  assert.deepEqual(s(50000), viridis(1));
  // log scale: 10 -> 100 step equals 100 -> 1000 step in t
  const t10 = Math.log(10) / Math.log(50000);
  assert.deepEqual(s(10), viridis(t10));
  assert.deepEqual(s(0), [128, 128, 128], "invalid rank is grey");
});

test("autoScale picks diverging with negatives, sequential otherwise", () => {
  assert.equal(autoScale(new Float32Array([0.1, -0.3, 0.2])).kind, "diverging");
  assert.deepEqual(autoScale(new Float32Array([0.1, -0.3, 0.2])).domain, [-0.30000001192092896, 0.30000001192092896]);
  assert.equal(autoScale(new Float32Array([0.1, 0.3])).kind, "sequential");
  assert.deepEqual(sequentialScale(0, 2)(2), viridis(1));
});

test("text colour contrast choice", () => {
  assert.equal(textColorFor(viridis(0)), "#ffffff");
  assert.equal(textColorFor(viridis(1)), "#000000");
  assert.equal(textColorFor([255, 255, 255]), "#000000");
  assert.equal(textColorFor([0, 0, 0]), "#ffffff");
});

test("number formatting", () => {
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(12), "12");
  assert.equal(formatNumber(0.123456), "0.123");
  assert.equal(formatNumber(-1.23456), "-1.23");
  assert.equal(formatNumber(1e-5), "1.00e-5");
  assert.equal(formatRank(49152), "49152");
  assert.equal(formatRank(250000), "250k");
});

test("legend element: label, min/max, gradient, aria-label", () => {
  const w = setupDom();
  try {
    const l = legend(rankScale(1000), { label: "rank" });
    assert.equal(l.querySelector(".ew-legend-label").textContent, "rank");
    assert.equal(l.querySelector(".ew-legend-min").textContent, "1");
    assert.equal(l.querySelector(".ew-legend-max").textContent, "1000");
    assert.match(l.getAttribute("aria-label"), /log scale, rank 1 darkest/);
    const d = legend(divergingScale(2), { label: "v" });
    assert.equal(d.querySelector(".ew-legend-mid").textContent, "0");
    assert.equal(d.querySelector(".ew-legend-min").textContent, "-2");
    const c = legend(null, { label: "cat", categories: [{ label: "<b>x</b>", rgb: [1, 2, 3] }] });
    assert.equal(c.querySelectorAll("b").length, 0);
    assert.match(c.textContent, /<b>x<\/b>/);
  } finally {
    teardownDom(w);
  }
});
