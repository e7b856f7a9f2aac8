// Explorer: one token row drives every panel the output has. Hovering a token previews it (every panel follows, and
// goes back to the selection on leave; the row and its saliency in the hover's frame, the other panels in the next
// three frames, so that no frame is long); click, arrow keys (Up / Down: a line), PageUp / PageDown, Home / End and
// Enter select it and write `selected_token` back; a `selected_token` set from Python moves the selection.
// For the shown token k: saliency row of target k, lens column k (after token k), layer predictions and watched ranks
// after token k, factor values and top neurons at token k, the attention row of query k, the direct logit attribution
// of token k where it was predicted (lib/component_panels.js), its strongest dictionary features, how its context was
// mixed (lib/mixing_panel.js). Panels whose arrays are empty are left out. The token row is virtualised (lib/virtual_tokens.js): only the lines in view are in the DOM.
import { decodeArray } from "./lib/arrays.js";
import { attributionScale, legend, CATEGORICAL } from "./lib/colors.js";
import { createVirtualRow } from "./lib/virtual_tokens.js";
import { saliencyPanel, factorsPanel, attentionPanel } from "./lib/panels.js";
import { lensPanel, predictionsPanel, watchPanel } from "./lib/lens_panels.js";
import { injectExplorerStyles } from "./lib/explorer_styles.js";
import { componentsPanel, featuresPanel, injectComponentStyles } from "./lib/component_panels.js";
import { mixingPanel } from "./lib/mixing_panel.js";
import { mountView, commit, get, tokenTraits } from "./lib/model.js";

const ROLE_RGB = { system: [153, 153, 153], user: [0, 114, 178], assistant: [213, 94, 0] };

/** The explorer's arrays, decoded; a panel's arrays that are empty (or of the wrong shape) mean "no panel". */
export function readData(model, N) {
  const A = (name) => decodeArray(model.get(name), name);
  const fit = (a, dims) => !a.empty && a.shape.length === dims.length && dims.every((d, i) => d == null || a.shape[i] === d);
  const d = {
    attributions: A("attributions"), targets: A("targets").data, methods: get(model, "methods", []).map(String),
    causal: get(model, "causal", true) !== false, ranks: A("ranks"), metrics: {},
    topkIndex: A("topk_index"), topkProbs: A("topk_probs"), vocab: get(model, "topk_vocab", []),
    watchRanks: A("watch_ranks"), watchTokens: get(model, "watch_tokens", []).map(String),
    factors: A("factors"), factorPositions: A("factor_positions"), factorLabels: get(model, "factor_labels", []),
    neuronIds: A("neuron_ids"), neuronValues: A("neuron_values"),
    attentionKeys: A("attention_keys"), attentionValues: A("attention_values"),
    headLabels: get(model, "head_labels", []).map(String), attentionLabel: String(get(model, "attention_label", "")),
    componentTokens: A("component_tokens").data, componentAttn: A("component_attn"), componentMlp: A("component_mlp"),
    componentAccumulated: A("component_accumulated"), componentLogit: A("component_logit").data,
    componentHeadTokens: A("component_head_tokens").data, componentHeads: A("component_heads"),
    componentHeadValues: A("component_head_values"), componentNote: String(get(model, "component_note", "")),
    featureNames: get(model, "feature_names", []).map(String), featureIndices: A("feature_indices"),
    featureValues: A("feature_values"), featureActive: A("feature_active"), featureLabels: get(model, "feature_labels", []),
    mixingMethods: get(model, "mixing_methods", []).map(String), mixingTargets: A("mixing_targets").data,
    mixingLayers: A("mixing_layers"), mixingRolled: A("mixing_rolled"),
  };
  const layers = [d.ranks, d.topkIndex, d.watchRanks].find((a) => !a.empty);
  const m = d.componentTokens.length;
  const dlaLayers = d.componentAttn.empty ? 0 : d.componentAttn.shape[1];
  const L = layers ? layers.shape[0] : 0;
  const given = get(model, "layer_labels", []);
  d.layerLabels = Array.from({ length: Math.max(L, dlaLayers) }, (_, i) => (given[i] != null ? String(given[i]) : String(i)));
  for (const [m, trait] of [["prob", "target_probs"], ["kl", "kl_to_final"], ["entropy", "entropy"]]) {
    const a = A(trait);
    if (fit(a, [L, N - 1])) d.metrics[m] = a;
  }
  const first = A("first_layer");
  d.firstLayer = fit(first, [N - 1]) ? first.data : null;
  d.has = {
    saliency: fit(d.attributions, [d.methods.length, d.targets.length, N]),
    lens: fit(d.ranks, [L, N - 1]),
    predictions: fit(d.topkIndex, [L, N, null]) && d.topkProbs.shape.join() === d.topkIndex.shape.join(),
    watch: fit(d.watchRanks, [L, N, d.watchTokens.length]),
    factors: fit(d.factors, [null, d.factorPositions.size]) || fit(d.neuronIds, [N, null, 2]),
    attention: fit(d.attentionKeys, [null, N, null]) && d.attentionValues.size === d.attentionKeys.size,
    components: m > 0 && fit(d.componentAttn, [m, null]) && fit(d.componentMlp, [m, dlaLayers]) &&
      fit(d.componentAccumulated, [m, dlaLayers + 1]) && Array.from(d.componentTokens).every((t) => t >= 0 && t < N) &&
      (d.componentHeadTokens.length === 0 || (fit(d.componentHeads, [d.componentHeadTokens.length, null, 2]) &&
        d.componentHeadValues.size * 2 === d.componentHeads.size)),
    features: fit(d.featureIndices, [d.featureNames.length, N, null]) && d.featureValues.size === d.featureIndices.size,
    mixing: d.mixingMethods.length > 0 && fit(d.mixingLayers, [d.mixingMethods.length, null, d.mixingTargets.length, N]) &&
      d.mixingRolled.shape.join() === d.mixingLayers.shape.join(),
  };
  return d;
}

/** Do a and b have the same tree (node types, tags, child counts)? */
function sameShape(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName || a.childNodes.length !== b.childNodes.length) return false;
  for (let i = 0; i < a.childNodes.length; i++) if (!sameShape(a.childNodes[i], b.childNodes[i])) return false;
  return true;
}
function copyInto(a, b) {
  if (a.nodeType === 3) {
    if (a.data !== b.data) a.data = b.data;
    return;
  }
  for (const { name, value } of Array.from(b.attributes)) if (a.getAttribute(name) !== value) a.setAttribute(name, value);
  for (const { name } of Array.from(a.attributes)) if (!b.hasAttribute(name)) a.removeAttribute(name);
  for (let i = 0; i < a.childNodes.length; i++) copyInto(a.childNodes[i], b.childNodes[i]);
}
/** Copy b's attributes and text into a when they have the same tree (true), else leave a as it is (false). */
function morph(a, b) {
  if (!sameShape(a, b)) return false;
  copyInto(a, b);
  return true;
}

function build(ctx) {
  const { model, body, tooltip, root } = ctx;
  injectExplorerStyles(root);
  injectComponentStyles(root);
  const { tokens, raw, nInput } = tokenTraits(model);
  const N = tokens.length;
  const unit = get(model, "unit", "token") === "word" ? "word" : "token";
  const pieces = get(model, "pieces", []);
  const turns = get(model, "turns", []).filter((t) => t && t.start >= 0 && t.stop <= N && t.start < t.stop);
  const specialArr = decodeArray(model.get("special"), "special");
  const special = specialArr.size === N ? specialArr.data : null;
  const d = Object.assign(readData(model, N), { tokens, unit, theme: ctx.theme, tooltip });
  const name = (k) => `${unit} ${k}`;
  const clamp = (k) => (Number.isInteger(k) && k >= 0 && k < N ? k : 0);
  const selected = () => clamp(Number(get(model, "selected_token", 0)));

  let methodIdx = 0;
  const readMethod = () => {
    const i = d.methods.indexOf(String(get(model, "method", d.methods[0] || "")));
    methodIdx = i >= 0 ? i : 0;
  };
  readMethod();
  d.method = () => methodIdx;

  const panels = [];
  const sal = d.has.saliency ? saliencyPanel(d, (m) => commit(model, "method", m)) : null;
  if (sal) panels.push(sal);
  if (d.has.lens) panels.push(lensPanel(d));
  if (d.has.predictions) panels.push(predictionsPanel(d));
  if (d.has.watch) panels.push(watchPanel(d));
  if (d.has.factors) panels.push(factorsPanel(d));
  if (d.has.attention) panels.push(attentionPanel(d));
  if (d.has.components) panels.push(componentsPanel(d));
  if (d.has.features) panels.push(featuresPanel(d));
  if (d.has.mixing) panels.push(mixingPanel(d));

  const timings = {}; // ms of the last hover: tooltip, each panel, row, legend (benchmarks/bench_explorer.py reads them)
  const now = () => (typeof performance !== "undefined" ? performance.now() : 0);
  let preview = -1;
  let shown = selected();
  let scale = null; // the saliency scale of the shown token (null: it is not explained)
  let salRow = -1;
  const roleAt = (i) => (turns.find((t) => i >= t.start && i < t.stop) || {}).role || "";
  const explained = new Set(sal ? Array.from(d.targets) : []);

  const row = createVirtualRow({
    tokens,
    rawTokens: raw,
    nInput,
    special,
    turns,
    label: `${unit}s: hover to preview, click or arrow keys to select`,
    classOf: (i) => [i === shown ? "ew-active" : "", explained.has(i) ? "ew-target" : "", salRow >= 0 && d.causal && i > shown ? "ew-dim" : ""].join(" "),
    colorOf: (i) => (salRow >= 0 && (!d.causal || i < shown) ? scale(sal.value(salRow, i)) : null),
    // (the tooltip is placed before the panels are written: placing it reads layout, which after the panels'
    // writes would lay out the whole page synchronously, then again in the frame)
    onPreview(i, how, ev) {
      preview = i;
      const t = now();
      if (i < 0) tooltip.hide();
      else tooltip.show(tipRows(i), ev || row.spanOf(i) || row.el);
      timings.tooltip = now() - t;
      show(i >= 0 ? i : selected(), true);
    },
    onSelect(i, how) {
      preview = how === "mouse" ? i : -1;
      select(i, how === "key");
    },
    onFocus() {
      const k = selected();
      row.setActive(k);
      row.reveal(k);
      tooltip.show(tipRows(k), row.spanOf(k) || row.el);
    },
    onBlur: () => tooltip.hide(),
  });
  body.appendChild(row.el);
  const status = document.createElement("div");
  status.className = "ew-ex-status";
  status.textContent = `${N} ${unit}s${turns.length ? `, ${turns.length} turns` : ""}; panels: ${panels.map((p) => p.el.dataset.shows || p.el.dataset.panel).join(", ") || "none"}`;
  body.appendChild(status);
  const box = document.createElement("div");
  box.className = "ew-ex-panels";
  for (const p of panels) box.appendChild(p.el);
  body.appendChild(box);

  function tipRows(i) {
    const lines = [{ label: name(i), token: tokens[i] }];
    const ps = Array.isArray(pieces[i]) ? pieces[i] : null;
    if (ps && ps.length) {
      lines.push(`${ps.length} piece${ps.length > 1 ? "s" : ""}`);
      for (const p of ps.slice(0, 12)) lines.push({ label: "", token: p });
    } else if (raw[i] != null && raw[i] !== tokens[i]) lines.push(["piece", String(raw[i])]);
    lines.push(i < nInput ? "prompt" : "generated");
    const role = roleAt(i);
    if (role) lines.push(["turn", role]);
    if (special && special[i]) lines.push("chat-template special token");
    if (explained.has(i)) lines.push("explained: its saliency is in the saliency panel");
    return lines;
  }

  // A hover previews token k over a few frames, so that no frame has more to do than fits in it
  // (benchmarks/bench_explorer.py, "longest frame"): the token row, its saliency colours, the saliency panel and the
  // legend in the hover's own frame; then each group of LATER in a frame of its own. A newer hover (or a selection,
  // which writes every panel at once) drops the rest.
  const LATER = [["lens"], ["predictions"], ["watch", "factors", "attention"], ["components", "features"], ["mixing"]];
  const raf = typeof requestAnimationFrame === "function" ? requestAnimationFrame : null;
  let generation = 0;
  let pendingStages = [];
  let waiters = [];
  const settle = () => {
    pendingStages = [];
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  function runStage(stage, k, sc) {
    let t = now();
    for (const p of stage) {
      p.show(k, sc);
      const t2 = now();
      timings[p.el.dataset.panel] = t2 - t;
      t = t2;
    }
  }
  function flush() {
    ++generation; // the frames already requested find nothing left to do
    for (const [stage, k, sc] of pendingStages) runStage(stage, k, sc);
    settle();
  }
  function schedule(stages) {
    const gen = ++generation;
    pendingStages = stages;
    const step = () => {
      if (gen !== generation) return;
      const next = pendingStages.shift();
      if (next) runStage(...next);
      if (pendingStages.length) raf(step);
      else settle();
    };
    // a frame requested from an input handler is the one that handler runs in: ask for the one after it
    raf(() => (gen === generation ? raf(step) : null));
  }

  function show(k, preview = false) {
    shown = k;
    salRow = sal ? sal.row(k) : -1;
    scale = null;
    if (salRow >= 0) {
      let lo = 0;
      let hi = 0;
      for (let p = 0; p < (d.causal ? k : N); p++) {
        const v = sal.value(salRow, p);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      scale = attributionScale(lo, hi, ctx.theme);
    }
    const later = preview && raf ? LATER.map((names) => panels.filter((p) => names.includes(p.el.dataset.panel))).filter((g) => g.length) : [];
    const deferred = new Set(later.flat());
    ++generation; // drops what an earlier hover left to do
    runStage(panels.filter((p) => !deferred.has(p)), k, scale);
    if (later.length) schedule(later.map((g) => [g, k, scale]));
    else settle();
    let t = now();
    row.restyle();
    const t2 = now();
    timings.row = t2 - t;
    if (scale) setLegend(legend(scale, { label: `attribution (${d.methods[methodIdx]}) \u2192 ${name(k)}` }));
    else {
      const roles = [...new Set(turns.map((t) => t.role))];
      const cats = roles.map((r) => ({ label: r, rgb: ROLE_RGB[r] || CATEGORICAL[7] }));
      const what = sal ? `${name(k)} is not explained (explained ${unit}s are underlined)` : `${name(k)} shown`;
      setLegend(legend(null, { label: roles.length ? `${what}; turns:` : what, categories: cats }));
    }
    timings.legend = now() - t2;
  }

  // The legend changes its words and numbers on a hover, rarely its elements: a new legend of the same shape is
  // copied into the one shown (text and attributes), so the page below the panels is not laid out anew.
  let shownLegend = null;
  function setLegend(node) {
    if (!(shownLegend && shownLegend.isConnected && morph(shownLegend, node))) {
      ctx.setLegend(node);
      shownLegend = node;
    }
  }

  function select(i, tip) {
    row.setActive(i);
    row.reveal(i);
    if (tip) tooltip.show(tipRows(i), row.spanOf(i) || row.el);
    show(i);
    if (selected() !== i) commit(model, "selected_token", i);
  }

  row.setActive(shown);
  row.reveal(shown);
  show(shown);
  // a hook for scripts and tests: the shown token and the rendered window
  // (pending: a hover's later panels are still to be written; settled(): a Promise resolved once they are;
  // flush(): write them now, as a figure does before it is drawn)
  root.ewExplorer = {
    get shown() { return shown; }, rendered: () => row.rendered(), reveal: (i) => row.reveal(i),
    panels: () => panels.map((p) => p.el.dataset.panel), timings,
    get pending() { return pendingStages.length > 0; },
    settled: () => (pendingStages.length ? new Promise((r) => waiters.push(r)) : Promise.resolve()),
    flush,
  };
  root.ewFlush = flush;

  return {
    destroy: () => {
      ++generation;
      settle();
      row.destroy();
    },
    onTrait: {
      selected_token: () => {
        const k = selected();
        row.setActive(k);
        row.reveal(k);
        if (preview < 0 && k !== shown) show(k);
      },
      method: () => {
        readMethod();
        show(shown);
      },
    },
  };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "explorer",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "unit", "pieces", "turns", "special", "targets", "methods",
      "attributions", "causal", "layer_labels", "ranks", "target_probs", "kl_to_final", "entropy", "first_layer",
      "topk_vocab", "topk_index", "topk_probs", "watch_tokens", "watch_ranks", "factor_labels", "factors",
      "factor_positions", "neuron_ids", "neuron_values", "attention_label", "head_labels", "attention_keys",
      "attention_values", "component_tokens", "component_attn", "component_mlp", "component_accumulated",
      "component_logit", "component_head_tokens", "component_heads", "component_head_values", "component_note",
      "feature_names", "feature_indices", "feature_values", "feature_active", "feature_labels", "mixing_methods",
      "mixing_targets", "mixing_layers", "mixing_rolled"],
    localTraits: ["selected_token", "method"],
    build,
  });
}

export default { render };
