// Heatmap cell values: compact enough for the cell ("0.0045" overflowed a 34 px NeuronHeatmap cell),
// clipped with an ellipsis if still too wide; the full value stays in the tooltip and aria-label.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { formatCompact } from "../src/lib/colors.js";
import { CSS } from "../src/lib/styles.js";
import { setupDom, teardownDom, fakeModel, arr, fire, installFakeCanvas } from "./helpers.js";
import neuronHeatmap from "../src/neuron_heatmap.js";
import saliency from "../src/saliency.js";

let w;
beforeEach(() => {
  w = setupDom();
  installFakeCanvas(w);
});
afterEach(() => teardownDom(w));

test("formatCompact: examples", () => {
  const cases = [
    [0.0045, ".0045"], [-0.0045, "-.004"], [0.00012, "1e-4"], [-0.00045, "-4e-4"], [1 / 6, "0.17"], [-1 / 6, "-0.17"],
    [0.5, "0.5"], [1.2345, "1.2"], [-12.345, "-12"], [99.96, "100"], [999.96, "1000"], [1234.5, "1.2k"],
    [-12345.6, "-12k"], [999999, "1M"], [-3.2e9, "-3.2G"], [5e15, "5e15"], [1e-12, "1e-12"], [42, "42"],
    [12345, "12345"], [0, "0"], [NaN, "NaN"], [Infinity, "\u221e"], [-Infinity, "-\u221e"],
  ];
  for (const [v, s] of cases) assert.equal(formatCompact(v), s, String(v));
});

test("formatCompact: at most 5 characters over a wide sweep (except exponents below 1e-9)", () => {
  for (let e = -9; e <= 14; e++) {
    for (const m of [1, 1.5, 2.345, 4.5, 9.99, 9.999]) {
      for (const sign of [1, -1]) {
        const v = sign * m * 10 ** e;
        const s = formatCompact(v);
        assert.ok(s.length <= 5 || (e < -9 && s.length <= 6), `${v} -> ${s}`);
        // and it is still roughly the value (1 significant digit at worst)
        const back = Number(s.replace(/^(-?)\./, "$10.").replace(/k$/, "e3").replace(/M$/, "e6").replace(/G$/, "e9").replace(/T$/, "e12"));
        assert.ok(Math.abs(back - v) <= Math.abs(v) * 0.35, `${v} -> ${s} (${back})`);
      }
    }
  }
});

test("CSS: cells and saliency values clip with an ellipsis", () => {
  const text = CSS.replace(/\/\*[\s\S]*?\*\//g, "");
  const cell = /\n\.ew-cell \{([^}]*)\}/.exec(text)[1];
  for (const d of ["overflow: hidden", "text-overflow: ellipsis", "white-space: nowrap"]) assert.ok(cell.includes(d), `.ew-cell ${d}`);
  const val = /\n\.ew-bar-val \{([^}]*)\}/.exec(text)[1];
  assert.ok(val.includes("text-overflow: ellipsis"));
});

test("neuron_heatmap: 0.0045 shows as .0045 in its cell, full value in tooltip and aria-label", () => {
  const tokens = ["a", " b", " c"];
  const values = [0.0045, -0.0045, 0.5, -12.345, 0.00012, 1234.5];
  const el = document.createElement("div");
  document.body.appendChild(el);
  neuronHeatmap.render({
    model: fakeModel({ tokens, raw_tokens: tokens, n_input_tokens: 3, title: "", theme: "light", activations: arr(values, "float32", [2, 3]), neuron_labels: ["n0", "n1"], selected_neuron: -1 }),
    el,
  });
  const cells = [...el.querySelectorAll(".ew-cell")];
  assert.deepEqual(cells.map((c) => c.textContent), [".0045", "-.004", "0.5", "-12", "1e-4", "1.2k"]);
  for (const c of cells) assert.ok(c.textContent.length <= 5);
  assert.match(cells[0].getAttribute("aria-label"), /: 0\.0045$/);
  fire(w, cells[1], "mouseover");
  assert.match(el.querySelector(".ew-tooltip").textContent, /activation-0\.0045/);
  assert.equal(el.querySelector(".ew-grid").style.getPropertyValue("--ew-cell-h"), "20px");
});

test("saliency detailed: small attributions are compact under the token", () => {
  const tokens = ["a", "b", "c"];
  const el = document.createElement("div");
  document.body.appendChild(el);
  saliency.render({
    model: fakeModel({ tokens, raw_tokens: tokens, n_input_tokens: 2, title: "", theme: "light", targets: arr([2], "uint8", [1]), methods: ["m"], method: "m", attributions: arr([0.0045, -0.00012, 0], "float32", [1, 1, 3]), saliency_style: "detailed", selected_token: -1 }),
    el,
  });
  const vals = [...el.querySelectorAll(".ew-bar-val")].map((v) => v.textContent);
  assert.deepEqual(vals, [".0045", "-1e-4", ""]);
});
