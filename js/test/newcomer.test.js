// Issue 30 ("a newcomer's first ten minutes"), the view side: numbers, labels and headings that read as what they are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatPercent, contrastRatio, onBackground, factorColor, CATEGORICAL, THEME_BG } from "../src/lib/colors.js";
import { valueText } from "../src/lib/metrics.js";
import { positionLabel, breaksBefore, isNewlineOnly } from "../src/lib/tokens.js";
import { lensHeading } from "../src/lib/lens_panels.js";

test("a tiny probability reads as under 0.01 %, not 7.92e-11%", () => {
  assert.equal(formatPercent(7.92e-13), "<0.01%");
  assert.equal(valueText("prob", 7.92e-13), "<0.01%");
  assert.equal(formatPercent(0.0001), "0.01%");
  assert.equal(formatPercent(0.000302), "0.0302%");
  assert.equal(formatPercent(0.3512), "35.1%");
  assert.equal(formatPercent(0), "0%");
  assert.equal(formatPercent(1), "100%");
  assert.equal(formatPercent(0.9999999), ">99.99%");
  for (const p of [1e-20, 3e-9, 7.92e-13, 0.5]) assert.ok(!/e/.test(formatPercent(p)), formatPercent(p));
});

test("a position reads as a position, not as a rank", () => {
  assert.equal(positionLabel(1), "pos 1");
  assert.equal(positionLabel(0), "pos 0");
  assert.ok(!positionLabel(4).includes("#"));
});

test("a run of newline tokens breaks its line once, after the run", () => {
  const t = ["a", ":", "\n", "\n", "-", "b", "\n\n", "c", "\r\n", "d\n", "e"];
  const starts = t.map((_, i) => i).filter((i) => breaksBefore(t, i));
  assert.deepEqual(starts, [4, 7, 9, 10]); // "-" after "\n\n", "c" after "\n\n", "d\n" after "\r\n", "e" after "d\n"
  assert.ok(isNewlineOnly("\n") && isNewlineOnly("\r\n") && !isNewlineOnly(" \n") && !isNewlineOnly("a\n"));
  assert.equal(breaksBefore(t, 0), false);
});

test("the lens heading names the next token with its position (not 'rank of the next, :')", () => {
  const d = { unit: "token", tokens: ["The", " keys", " are", ":"] };
  const text = lensHeading(d, 2).map((p) => (typeof p === "string" ? p : `'${p.token}'`)).join("");
  assert.equal(text, "Lens after token 2 ' are': rank of token 3 ':' per layer");
  assert.ok(!/next, /.test(text));
});

test("every factor colour contrasts at least 3 : 1 with the background, light and dark; the hue is kept", () => {
  assert.ok(contrastRatio(CATEGORICAL[3], THEME_BG.light) < 1.5, "Okabe-Ito's yellow on white: the complaint");
  for (const theme of ["light", "dark"]) {
    for (let c = 0; c < 8; c++) {
      const rgb = factorColor(c, theme);
      assert.ok(contrastRatio(rgb, THEME_BG[theme]) >= 3, `${theme} factor ${c}: ${rgb} ${contrastRatio(rgb, THEME_BG[theme])}`);
    }
  }
  assert.deepEqual(factorColor(4, "light"), CATEGORICAL[4], "a colour that contrasts enough is unchanged");
  const y = onBackground([240, 228, 66], [255, 255, 255]);
  assert.ok(y[0] > y[2] && y[1] > y[2], `still a yellow: ${y}`);
  assert.equal(contrastRatio([0, 0, 0], [255, 255, 255]).toFixed(0), "21");
});

test("the explorer's status line names a panel of neurons only 'neurons', not 'factors' (seen in real JupyterLab)", async () => {
  const { setupDom, teardownDom, fakeModel, arr, installFakeCanvas } = await import("./helpers.js");
  const { default: explorer } = await import("../src/explorer.js");
  const w = setupDom();
  installFakeCanvas(w);
  try {
    const n = 4;
    const status = (extra) => {
      const el = document.createElement("div");
      document.body.appendChild(el);
      explorer.render({ el, model: fakeModel({ title: "", theme: "light", tokens: ["a", " b", " c", " d"], raw_tokens: [],
        n_input_tokens: n, layer_labels: [], selected_token: 0,
        ranks: arr([1, 2, 3, 1, 2, 3], "int32", [2, n - 1]), ...extra }) });
      return el.querySelector(".ew-ex-status").textContent;
    };
    const neurons = { neuron_ids: arr(Array.from({ length: n * 2 * 2 }, (_, i) => i % 3), "int32", [n, 2, 2]),
      neuron_values: arr(Array.from({ length: n * 2 }, (_, i) => 10 - i), "float32", [n, 2]) };
    const factors = { factors: arr(Array.from({ length: 2 * n }, (_, i) => i), "float32", [2, n]),
      factor_positions: arr([0, 1, 2, 3], "int32", [n]), factor_labels: ["f0", "f1"] };
    assert.match(status(neurons), /panels: lens, neurons$/);
    assert.match(status(factors), /panels: lens, factors$/);
    assert.match(status({ ...neurons, ...factors }), /panels: lens, factors, neurons$/);
  } finally {
    teardownDom(w);
  }
});

test("the theme's bar colours (--ew-bar, --ew-pos, --ew-neg) contrast at least 3 : 1 with its background; no view hard-codes them", async () => {
  const { CSS } = await import("../src/lib/styles.js");
  const block = (selector) => CSS.slice(CSS.indexOf(`${selector} {`), CSS.indexOf("}", CSS.indexOf(`${selector} {`)));
  const hex = (body, name) => {
    const m = body.match(new RegExp(`${name}: #([0-9a-f]{6})`));
    assert.ok(m, `${name} defined`);
    return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
  };
  for (const [theme, selector] of [["light", ".ew-root"], ["dark", ".ew-root.ew-dark"]]) {
    const body = block(selector);
    const bg = hex(body, "--ew-bg");
    for (const name of ["--ew-bar", "--ew-pos", "--ew-neg"]) {
      const ratio = contrastRatio(hex(body, name), bg);
      assert.ok(ratio >= 3, `${theme} ${name}: ${ratio.toFixed(2)}`);
    }
  }
  // the feature explorer's attribution bars take the theme's colours (they were fixed hex, dim on dark)
  const { readFileSync } = await import("node:fs");
  const source = readFileSync(new URL("../src/feature_explorer.js", import.meta.url), "utf8");
  for (const rule of source.match(/\.ew-fx-attr-fill\.ew-fx-(pos|neg) \{[^}]*\}/g)) {
    assert.match(rule, /background: var\(--ew-(pos|neg)\)/, rule);
  }
});
