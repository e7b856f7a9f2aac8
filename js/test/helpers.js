// Test helpers: a happy-dom window installed as the global DOM, a fake anywidget model, array fields,
// and the views of ecco_widgets/views/registry.json.
import { Window } from "happy-dom";
import { VIEW_BUNDLES } from "../registry.mjs";

export { VIEW_BUNDLES };

/** {bundle: view module's default export (render)} for every view of the registry, from js/src. */
export async function loadViews() {
  const views = {};
  for (const bundle of VIEW_BUNDLES) views[bundle] = (await import(`../src/${bundle}.js`)).default;
  return views;
}

export function setupDom() {
  const window = new Window({ url: "http://localhost/", width: 1200, height: 800 });
  const g = globalThis;
  const names = [
    "document", "HTMLElement", "Element", "Node", "ShadowRoot", "MutationObserver", "getComputedStyle",
    "requestAnimationFrame", "cancelAnimationFrame", "MouseEvent", "KeyboardEvent", "FocusEvent", "Event",
    "HTMLCanvasElement", "SVGElement",
  ];
  g.window = window;
  for (const n of names) {
    const v = window[n];
    g[n] = typeof v === "function" && /^[a-z]/.test(n) ? v.bind(window) : v;
  }
  return window;
}

export function teardownDom(window) {
  window.happyDOM.abort();
  window.close();
}

/** A fake anywidget model that records set/save_changes calls. */
export function fakeModel(initial) {
  const state = { ...initial };
  const listeners = new Map();
  const calls = [];
  const model = {
    state,
    calls,
    get: (n) => state[n],
    set(n, v) {
      calls.push(["set", n, v]);
      state[n] = v;
      const s = listeners.get(`change:${n}`);
      if (s) for (const cb of [...s]) cb();
    },
    save_changes() {
      calls.push(["save"]);
    },
    on(ev, cb) {
      if (!listeners.has(ev)) listeners.set(ev, new Set());
      listeners.get(ev).add(cb);
    },
    off(ev, cb) {
      const s = listeners.get(ev);
      if (s) s.delete(cb);
    },
    send() {},
    listenerCount() {
      let n = 0;
      for (const s of listeners.values()) n += s.size;
      return n;
    },
    saves() {
      return calls.filter((c) => c[0] === "save").length;
    },
    sets(name) {
      return calls.filter((c) => c[0] === "set" && c[1] === name).map((c) => c[2]);
    },
  };
  return model;
}

/** A contract array field {view: DataView, dtype, shape} with a non-zero byteOffset. */
export function arr(values, dtype, shape) {
  const Ctor = {
    float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array,
    int16: Int16Array, uint16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
  }[dtype];
  const src = Ctor.from(values);
  const pad = 8;
  const buf = new ArrayBuffer(pad + src.byteLength + 8);
  new Uint8Array(buf, pad, src.byteLength).set(new Uint8Array(src.buffer));
  return { view: new DataView(buf, pad, src.byteLength), dtype, shape };
}

export const tick = () => new Promise((r) => setTimeout(r, 0));

export function fire(window, el, type, init = {}) {
  let ev;
  if (type.startsWith("key")) ev = new window.KeyboardEvent(type, { bubbles: true, cancelable: true, ...init });
  else if (type.startsWith("mouse") || type === "click") ev = new window.MouseEvent(type, { bubbles: type !== "mouseleave", cancelable: true, ...init });
  else ev = new window.Event(type, { bubbles: true, ...init });
  el.dispatchEvent(ev);
  return ev;
}

export const HOSTILE = [
  "<img src=x onerror=alert(1)>",
  "</script><script>alert(1)</script>",
  "<b>bold</b>",
  "\"quotes' &amp; &lt;",
  "\u202Eevil RTL",
  "zero\u200Bwidth",
  "x".repeat(3000),
  "{{7*7}}",
];

/** Every view's state, for a given token list (n tokens). */
export function viewStates(tokens) {
  const n = tokens.length;
  const raw = tokens.slice();
  const L = 3;
  const targets = [n - 2, n - 1];
  const attributions = [];
  for (let m = 0; m < 2; m++) for (const t of targets) for (let p = 0; p < n; p++) attributions.push(p < t ? ((p + 1) * (m ? -1 : 1)) / n : 0);
  const att = [];
  for (let h = 0; h < 2; h++) for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) att.push(k <= q ? 1 / (q + 1) : 0);
  const K = 2;
  return {
    saliency: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light",
      targets: arr(targets, "int32", [2]), methods: ["a", "b"], method: "a",
      attributions: arr(attributions, "float32", [2, 2, n]), saliency_style: "detailed", selected_token: -1,
    },
    rank_grid: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "dark", layer_labels: ["l0", "l1", "l2"],
      ranks: arr(Array.from({ length: L * (n - 1) }, (_, i) => i + 1), "int32", [L, n - 1]),
      topk_vocab: tokens, topk_index: arr(Array.from({ length: L * (n - 1) * K }, (_, i) => i % n), "int32", [L, n - 1, K]),
      topk_probs: arr(Array.from({ length: L * (n - 1) * K }, () => 0.25), "float32", [L, n - 1, K]), selected_cell: [],
    },
    rank_watch: {
      tokens, position: n - 1, layer_labels: [], title: "", theme: "auto", watch_tokens: tokens.slice(0, 3),
      ranks: arr(Array.from({ length: L * 3 }, (_, i) => i + 1), "int32", [L, 3]),
    },
    layer_predictions: {
      position: 2, context_token: tokens[0], layer_labels: ["a", "b", "c"], title: "", theme: "light", topk_vocab: tokens,
      topk_index: arr(Array.from({ length: L * 3 }, (_, i) => i % n), "int32", [L, 3]),
      topk_probs: arr(Array.from({ length: L * 3 }, (_, i) => 0.1 * (i + 1)), "float32", [L, 3]),
    },
    factor_explorer: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light",
      factors: arr(Array.from({ length: 3 * n }, (_, i) => (i % 5) / 5), "float32", [3, n]), factor_labels: ["f0", "f1", "f2"], selected_factor: -1,
    },
    neuron_heatmap: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light",
      activations: arr(Array.from({ length: 4 * n }, (_, i) => Math.sin(i)), "float32", [4, n]), neuron_labels: [], selected_neuron: -1,
    },
    attention: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light",
      attention: arr(att, "float32", [2, n, n]), head_labels: ["h0", "h1"], selected_token: -1,
    },
    // saliency of the last two tokens (as saliency), a 3-layer lens with top-2 predictions at every position
    explorer: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light", unit: "token", pieces: [], turns: [],
      targets: arr(targets, "int32", [2]), methods: ["a", "b"], method: "a", attributions: arr(attributions, "float32", [2, 2, n]),
      layer_labels: ["l0", "l1", "l2"], ranks: arr(Array.from({ length: L * (n - 1) }, (_, i) => i + 1), "int32", [L, n - 1]),
      topk_vocab: tokens, topk_index: arr(Array.from({ length: L * n * K }, (_, i) => i % n), "int32", [L, n, K]),
      topk_probs: arr(Array.from({ length: L * n * K }, () => 0.25), "float32", [L, n, K]), selected_token: n - 1,
    },
    // 2 lenses x 3 layers x (n - 1) positions; lens 0 ranks 1..15, lens 1 all 1 but its first row (2)
    lens_compare: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light", lens_names: ["logit", "tuned"],
      layer_labels: ["l0", "l1", "l2"],
      ranks: arr(Array.from({ length: 2 * L * (n - 1) }, (_, i) => (i < L * (n - 1) ? i + 1 : i < (L + 1) * (n - 1) ? 2 : 1)), "int32", [2, L, n - 1]),
      target_probs: arr([], "float32", [0, 0, 0]), kl_to_final: arr([], "float32", [0, 0, 0]), entropy: arr([], "float32", [0, 0, 0]),
      metric: "rank", selected_cell: [],
      summary_top1: arr([n > 2 ? 1 / (n - 1) : 1, 0, 0, 0, 1, 1], "float32", [2, L]), summary_mean_kl: arr([], "float32", [0, 0]),
    },
    // 3 layers x n positions; the corrupted prompt differs at position 1; effect[l, p] = (l * n + p) / (L * n) - 0.2
    patching_grid: {
      clean_tokens: tokens, corrupted_tokens: tokens.map((t, i) => (i === 1 ? `${t}X` : t)), clean_raw_tokens: raw,
      corrupted_raw_tokens: raw.map((t, i) => (i === 1 ? `${t}X` : t)), layer_labels: ["l0", "l1", "l2"], title: "", theme: "light",
      effect: arr(Array.from({ length: L * n }, (_, i) => i / (L * n) - 0.2), "float32", [L, n]), effect_method: "exact",
      attribution_effect: arr([], "float32", [0, 0]), pearson: null, sign_agreement: null, signed_cells: 0, shown: "exact", answer: " a", foil: " b", points: "resid",
      clean_logit_diff: 2, corrupted_logit_diff: -1, topk_vocab: tokens,
      topk_index: arr(Array.from({ length: L * n * K }, (_, i) => i % n), "int32", [L, n, K]),
      topk_probs: arr(Array.from({ length: L * n * K }, () => 0.25), "float32", [L, n, K]),
      reference_topk_index: arr([0, 1, 1, 0], "int32", [2, K]), reference_topk_probs: arr([0.5, 0.2, 0.6, 0.1], "float32", [2, K]),
      selected_cell: [],
    },
    // 3 layers x 4 heads x 2 patched positions (n - 2, n - 1); effect[l, h, j] = (l * 8 + h * 2 + j) / 24 - 0.2
    patching_heads: {
      clean_tokens: tokens, corrupted_tokens: tokens.map((t, i) => (i === 1 ? `${t}X` : t)), clean_raw_tokens: raw,
      corrupted_raw_tokens: raw.map((t, i) => (i === 1 ? `${t}X` : t)), layer_labels: ["l0", "l1", "l2"], head_labels: ["h0", "h1", "h2", "h3"],
      positions: [n - 2, n - 1], title: "", theme: "light",
      effect: arr(Array.from({ length: L * 8 }, (_, i) => i / 24 - 0.2), "float32", [L, 4, 2]), effect_method: "exact",
      attribution_effect: arr([], "float32", [0, 0, 0]), pearson: null, sign_agreement: null, signed_cells: 0, shown: "exact", answer: " a", foil: " b", points: "head",
      clean_logit_diff: 2, corrupted_logit_diff: -1, topk_vocab: tokens,
      topk_index: arr(Array.from({ length: L * 8 * K }, (_, i) => i % n), "int32", [L, 4, 2, K]),
      topk_probs: arr(Array.from({ length: L * 8 * K }, () => 0.25), "float32", [L, 4, 2, K]),
      reference_topk_index: arr([0, 1, 1, 0], "int32", [2, K]), reference_topk_probs: arr([0.5, 0.2, 0.6, 0.1], "float32", [2, K]),
      selected_cell: [], selected_position: 1,
    },
    // a dataset summary: no tokens of its own (layer labels and method names are its only texts)
    batch_summary: {
      layer_labels: ["l0", "l1", "l2"], title: "", theme: "light", n_prompts: 4, n_errors: 1,
      share_rank1: arr([0, 0.5, 1], "float32", [L]), first_layer_counts: arr([0, 2, 2, 0], "int32", [L + 1]),
      mean_kl: arr([2, 1, 0], "float32", [L]), methods: ["ig"],
      attribution_by_distance: arr(Array.from({ length: 32 }, (_, d) => 1 / (d + 2)), "float32", [1, 32]),
    },
    // 3 layers x 2 heads + the MLPs explaining " a" - " b" after the last token; every head attends uniformly
    logit_attribution: {
      tokens, raw_tokens: raw, position: n - 1, layer_labels: ["0", "1", "2"], title: "", theme: "light",
      head_values: arr([-0.2, -0.1, 0, 0.1, 0.2, 0.3], "float32", [L, 2]), mlp_values: arr([0.5, -0.25, 0.125], "float32", [L]),
      attn_totals: arr([-0.3, 0.1, 0.5], "float32", [L]), mlp_totals: arr([0.5, -0.25, 0.125], "float32", [L]),
      accumulated: arr([0.25, 0.45, 0.3, 0.925], "float32", [L + 1]), term_labels: ["embed", "final.bias"],
      term_values: arr([0.3, -0.05], "float32", [2]), target: " a", foil: " b", logit: 0.925, error: 0, note: "",
      promoted_vocab: [" a", " b", " c"], promoted_index: arr(Array.from({ length: L * 3 * K }, (_, i) => i % 3), "int32", [L, 3, K]),
      promoted_values: arr(Array.from({ length: L * 3 * K }, (_, i) => 2 - (i % K)), "float32", [L, 3, K]),
      attention: arr(Array.from({ length: L * 2 * n }, () => 1 / n), "float32", [L, 2, n]), selected_cell: [],
    },
    // 2 active latents per token t: t % 5 (value 1 + t) and 5 + t % 3 (value 0.5); labels for 0 and 5; no attribution
    feature_explorer: {
      tokens, raw_tokens: raw, n_input_tokens: 3, title: "", theme: "light", unit: "token", turns: [], dictionary: "sae", d_sae: 8,
      feature_offsets: arr(Array.from({ length: n + 1 }, (_, t) => 2 * t), "int32", [n + 1]),
      feature_indices: arr(Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 5 + ((i >> 1) % 3) : (i >> 1) % 5)), "int32", [2 * n]),
      feature_values: arr(Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 0.5 : 1 + (i >> 1))), "float32", [2 * n]),
      feature_labels: [{ index: 0, description: "zero" }, { index: 5, description: "five" }], attribution_offsets: arr([], "int32", [0]), attribution_indices: arr([], "int32", [0]),
      attribution_values: arr([], "float32", [0]), attribution_target: "", n_top: 10, selected_token: -1, selected_feature: -1,
    },
    // 3 features (latent 4 never fires), top 2 contexts of 3 tokens (tokens index strings = the tokens), 4 samples,
    // a histogram over 5 bins, 2 promoted and suppressed tokens each
    feature_dashboard: {
      title: "", theme: "light", feature_ids: arr([1, 4, 8], "int32", [3]), labels: ["one", "", "eight"], strings: tokens,
      raw_strings: raw, fire_counts: arr([3, 0, 6], "int32", [3]), n_tokens: 20, n_docs: 2,
      top_values: arr([2, 1, 0, 0, 3, 0.5], "float32", [3, 2]), top_docs: arr([0, 1, -1, -1, 1, 0], "int32", [3, 2]),
      top_positions: arr([1, 2, -1, -1, 0, 3], "int32", [3, 2]),
      top_tokens: arr(Array.from({ length: 18 }, (_, i) => (i % 9 === 0 ? -1 : i % n)), "int32", [3, 2, 3]),
      top_acts: arr(Array.from({ length: 18 }, (_, i) => (i % 3) / 2), "float32", [3, 2, 3]),
      sample_values: arr(Array.from({ length: 12 }, (_, i) => 2 - (i % 4) / 4), "float32", [3, 4]),
      sample_docs: arr(Array.from({ length: 12 }, (_, i) => (i >= 4 && i < 8 ? -1 : i % 2)), "int32", [3, 4]),
      sample_positions: arr(Array.from({ length: 12 }, () => 1), "int32", [3, 4]),
      sample_tokens: arr(Array.from({ length: 36 }, (_, i) => i % n), "int32", [3, 4, 3]),
      sample_acts: arr(Array.from({ length: 36 }, (_, i) => (i % 5) / 4), "float32", [3, 4, 3]),
      hist: arr([0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 3], "int32", [3, 5]), hist_edges: arr([0.25, 0.5, 1, 2], "float32", [4]),
      promoted_tokens: arr([0, 1, 2, 3, 1, 0], "int32", [3, 2]), promoted_values: arr([2, 1, 3, 2, 1, 0.5], "float32", [3, 2]),
      suppressed_tokens: arr([3, 2, 1, 0, 2, 3], "int32", [3, 2]), suppressed_values: arr([-2, -1, -3, -2, -1, -0.5], "float32", [3, 2]),
      promoted_note: "W_dec row through the final norm at unit scale", query: "", selected_feature: -1,
    },
    // 3 layers; targets n - 2 and n - 1; per layer (p + 1) / (l + 1) / n before the target, rolled out the negative
    context_mixing: {
      title: "", theme: "light", tokens, raw_tokens: raw, n_input_tokens: n, method: "rollout", targets: arr(targets, "int32", [2]),
      layers: arr(Array.from({ length: L * 2 * n }, (_, i) => { const p = i % n; const l = Math.floor(i / (2 * n)); return p < targets[Math.floor(i / n) % 2] ? (p + 1) / (l + 1) / n : 0; }), "float32", [L, 2, n]),
      rolled: arr(Array.from({ length: L * 2 * n }, (_, i) => { const p = i % n; return p < targets[Math.floor(i / n) % 2] ? -(p + 1) / n : 0; }), "float32", [L, 2, n]),
      score: arr(Array.from({ length: 2 * n }, (_, i) => (i % n < targets[Math.floor(i / n)] ? (i % n) / n : 0)), "float32", [2, n]),
      layer_labels: ["0", "1", "2"], selected_token: -1, mode: "layer", selected_cell: [],
    },
    // prompt B = A with token 1 changed (position by position); ranks in both, IG of the last two tokens in both
    prompt_pair: {
      tokens_a: tokens, tokens_b: tokens.map((t, i) => (i === 1 ? `${t}X` : t)), raw_tokens_a: raw,
      raw_tokens_b: raw.map((t, i) => (i === 1 ? `${t}X` : t)), n_input_tokens_a: 3, n_input_tokens_b: 3, title: "", theme: "light",
      alignment: arr(Array.from({ length: 2 * n }, (_, i) => i >> 1), "int32", [n, 2]),
      differs: arr(Array.from({ length: n }, (_, i) => (i === 1 ? 1 : 0)), "uint8", [n]), layer_labels: ["l0", "l1", "l2"],
      ranks_a: arr(Array.from({ length: L * n }, (_, i) => (i % n === n - 1 ? 0 : 1 + (i % 7))), "int32", [L, n]),
      ranks_b: arr(Array.from({ length: L * n }, (_, i) => (i % n === n - 1 ? 0 : 1 + (i % 5))), "int32", [L, n]),
      rank_diff: arr(Array.from({ length: L * n }, (_, i) => (i % n === n - 1 ? 0 : Math.log10((1 + (i % 5)) / (1 + (i % 7))))), "float32", [L, n]),
      methods: ["a", "b"], method: "a", targets_a: arr(targets, "int32", [2]), targets_b: arr(targets, "int32", [2]),
      attributions_a: arr(attributions, "float32", [2, 2, n]), attributions_b: arr(attributions.map((v) => v / 2), "float32", [2, 2, n]),
      selected: -1, unit: "token",
    },
  };
}

/** happy-dom has no canvas backend: install a recording 2D context. Returns the call log. */
export function installFakeCanvas(window) {
  const log = [];
  window.HTMLCanvasElement.prototype.getContext = function (kind) {
    if (kind !== "2d") return null;
    if (this.__ctx) return this.__ctx;
    const canvas = this;
    this.__ctx = {
      canvas,
      imageSmoothingEnabled: true,
      fillStyle: "#000",
      createImageData: (w, h) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
      putImageData: (img) => log.push(["putImageData", canvas, img]),
      drawImage: (...a) => log.push(["drawImage", canvas, ...a]),
      fillRect: (...a) => log.push(["fillRect", canvas, ...a]),
      clearRect: (...a) => log.push(["clearRect", canvas, ...a]),
    };
    return this.__ctx;
  };
  return log;
}
