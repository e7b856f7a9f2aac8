// NeuronHeatmap: neurons x tokens, diverging scale centred on 0. Hover shows the value; the token
// row above is coloured by the hovered (or selected) neuron. Click / Enter selects a neuron.
import { decodeArray } from "./lib/arrays.js";
import { divergingScale, legend, formatNumber, formatCompact } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { createTokenRow } from "./lib/tokens.js";
import { rowLabels } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput } = tokenTraits(model);
  const a = decodeArray(model.get("activations"), "activations");
  if (a.empty || a.shape.length !== 2) {
    hint(body, "No activations to show.");
    return {};
  }
  const [Nn, T] = a.shape;
  const given = get(model, "neuron_labels", []);
  const labels = Array.from({ length: Nn }, (_, i) => (given[i] != null ? String(given[i]) : `neuron ${i}`));
  let maxAbs = 0;
  for (let i = 0; i < a.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a.data[i]));
  const scale = divergingScale(maxAbs);
  const val = (n, t) => a.data[n * T + t];
  const mode = gridMode(Nn, T);
  const cellW = mode === "dom" ? 34 : 10;
  const cellH = mode === "dom" ? 20 : 12;
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");

  const tokenRow = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    label: "tokens",
    onHover(i, span, how, ev) {
      if (i < 0) return tooltip.hide();
      const n = shownNeuron();
      const lines = [{ label: `token ${i}`, token: tok(i) }];
      if (n >= 0 && i < T) lines.push([labels[n], formatNumber(val(n, i))]);
      tooltip.show(lines, how === "focus" ? span : ev);
    },
  });
  let hovered = -1;
  const selected = () => {
    const s = Number(get(model, "selected_neuron", -1));
    return s >= 0 && s < Nn ? s : -1;
  };
  const shownNeuron = () => (hovered >= 0 ? hovered : selected());
  const paintTokens = () => {
    const n = shownNeuron();
    for (let i = 0; i < tokens.length; i++) tokenRow.setColor(i, n >= 0 && i < T ? scale(val(n, i)) : null);
  };

  const rows = rowLabels(labels, cellH);
  const grid = createGrid({
    nRows: Nn,
    nCols: T,
    cellW,
    cellH,
    mode,
    ariaLabel: "activation per neuron and token",
    color: (n, t) => scale(val(n, t)),
    text: mode === "dom" ? (n, t) => formatCompact(val(n, t), 5, 2) : null, // fits a 34 px cell; full value in tooltip / aria-label
    label: (n, t) => `${labels[n]}, token ${t} ${JSON.stringify(tok(t))}: ${formatNumber(val(n, t))}`,
    onHover(n, t, how, ev) {
      if (n < 0) {
        hovered = -1;
        rows.setActive(-1);
        paintTokens();
        return tooltip.hide();
      }
      if (hovered !== n) {
        hovered = n;
        paintTokens();
      }
      rows.setActive(n);
      tooltip.show([labels[n], { label: `token ${t}`, token: tok(t) }, ["activation", formatNumber(val(n, t))]], how === "focus" ? grid.anchor(n, t) : ev);
    },
    onCommit(n) {
      commit(model, "selected_neuron", selected() === n ? -1 : n);
    },
  });
  const g = document.createElement("div");
  g.style.display = "grid";
  g.style.gridTemplateColumns = "max-content max-content";
  g.style.marginTop = "8px";
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  const s1 = document.createElement("div");
  s1.className = "ew-scroll";
  s1.appendChild(tokenRow.el);
  const s2 = document.createElement("div");
  s2.className = "ew-scroll";
  s2.appendChild(g);
  body.appendChild(s1);
  body.appendChild(s2);
  ctx.setLegend(legend(scale, { label: "activation" }));

  const syncSelected = () => {
    const s = selected();
    rows.spans.forEach((sp, i) => sp.classList.toggle("ew-selected", i === s));
    paintTokens();
  };
  syncSelected();
  return { grid, onTrait: { selected_neuron: syncSelected } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "neuron_heatmap",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "activations", "neuron_labels"],
    localTraits: ["selected_neuron"],
    build,
  });
}

export default { render };
