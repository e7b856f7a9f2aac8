// LayerPredictions: per layer, the top-k tokens at one position, compact: one line per layer with inline chips
// (token, a thin probability bar, the percentage), about 19 px a layer. `layers` (from Python) and a select in the
// view ("all", "every 2nd", "every 4th", "last 8") choose the layers shown; the choice stays in the browser.
import { decodeArray } from "./lib/arrays.js";
import { legend, formatNumber, formatPercent } from "./lib/colors.js";
import { tokenSpan, columnWidth } from "./lib/tokens.js";
import { navigate } from "./lib/grid.js";
import { mountView, get, hint } from "./lib/model.js";
import { ordinal } from "./lib/axis.js";

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const position = Number(get(model, "position", 0));
  const contextToken = String(get(model, "context_token", ""));
  const vocab = get(model, "topk_vocab", []);
  const idx = decodeArray(model.get("topk_index"), "topk_index");
  const probs = decodeArray(model.get("topk_probs"), "topk_probs");

  const head = document.createElement("span");
  head.className = "ew-lp-head";
  head.textContent = `position ${position}, after `;
  head.appendChild(tokenSpan(contextToken, { raw: contextToken }));
  controls.appendChild(head);

  if (idx.empty || idx.shape.length !== 2) {
    hint(body, "No predictions to show.");
    return {};
  }
  const [L, K] = idx.shape;
  const given = get(model, "layer_labels", []);
  const labels = Array.from({ length: L }, (_, i) => (given[i] != null ? String(given[i]) : `layer ${i}`));
  const word = (l, k) => {
    const vi = idx.data[l * K + k];
    return vocab[vi] != null ? String(vocab[vi]) : `#${vi}`;
  };
  const prob = (l, k) => (probs.empty ? 0 : probs.data[l * K + k]);
  const pct = (p) => formatPercent(p);

  const pyLayers = get(model, "layers", []).map(Number).filter((l) => l >= 0 && l < L);
  const base = pyLayers.length ? pyLayers : Array.from({ length: L }, (_, i) => i);
  const table = document.createElement("div");
  table.className = "ew-lp-table ew-lp-compact";
  table.setAttribute("role", "grid");
  table.setAttribute("aria-label", "top predictions per layer");
  table.style.gridTemplateColumns = "max-content max-content";
  const items = [];
  let active = { r: 0, c: 0 };
  for (let l = 0; l < L; l++) {
    const lab = document.createElement("div");
    lab.className = "ew-lp-label";
    lab.dataset.layer = String(l);
    lab.textContent = labels[l];
    table.appendChild(lab);
    const row = document.createElement("div");
    row.className = "ew-lp-row ew-lp-line";
    row.dataset.layer = String(l);
    row.setAttribute("role", "row");
    for (let k = 0; k < K; k++) {
      const it = document.createElement("div");
      it.className = "ew-lp-item ew-lp-chip";
      it.setAttribute("role", "gridcell");
      it.tabIndex = l === 0 && k === 0 ? 0 : -1;
      it.dataset.r = String(l);
      it.dataset.c = String(k);
      const w = word(l, k);
      const p = prob(l, k);
      it.setAttribute("aria-label", `${labels[l]}, ${ordinal(k + 1)} prediction: ${JSON.stringify(w)} ${pct(p)}`);
      it.appendChild(tokenSpan(w, { raw: w }));
      const track = document.createElement("div");
      track.className = "ew-lp-track";
      const bar = document.createElement("div");
      bar.className = "ew-lp-bar";
      bar.style.width = `${Math.max(0, Math.min(100, p * 100)).toFixed(1)}%`;
      track.appendChild(bar);
      it.appendChild(track);
      const t = document.createElement("span");
      t.className = "ew-lp-pct";
      t.textContent = pct(p);
      it.appendChild(t);
      row.appendChild(it);
      items.push(it);
    }
    table.appendChild(row);
  }
  // a column's tokens share one width, so that its bars and percentages line up from layer to layer
  for (let k = 0; k < K; k++) {
    const w = columnWidth(Array.from({ length: L }, (_, l) => word(l, k)));
    for (let l = 0; l < L; l++) items[l * K + k].firstChild.style.minWidth = w;
  }
  const cellOf = (t) => {
    while (t && t !== table) {
      if (t.dataset && t.dataset.r !== undefined) return { r: Number(t.dataset.r), c: Number(t.dataset.c), el: t };
      t = t.parentNode;
    }
    return null;
  };
  const tip = (cell, anchor) =>
    tooltip.show([labels[cell.r], { label: `${ordinal(cell.c + 1)} prediction`, token: word(cell.r, cell.c) }, ["probability", pct(prob(cell.r, cell.c))]], anchor);
  table.addEventListener("mouseover", (ev) => {
    const cell = cellOf(ev.target);
    if (cell) tip(cell, ev);
  });
  table.addEventListener("mouseleave", () => tooltip.hide());
  table.addEventListener("focusin", (ev) => {
    const cell = cellOf(ev.target);
    if (!cell) return;
    items[active.r * K + active.c].tabIndex = -1;
    active = cell;
    cell.el.tabIndex = 0;
    tip(cell, cell.el);
  });
  table.addEventListener("focusout", (ev) => {
    if (!(ev.relatedTarget && table.contains(ev.relatedTarget))) tooltip.hide();
  });
  table.addEventListener("keydown", (ev) => {
    const cell = cellOf(ev.target);
    if (!cell) return;
    const next = navigate(ev.key, cell.r, cell.c, L, K, ev.ctrlKey);
    if (!next) return;
    ev.preventDefault();
    items[next.r * K + next.c].focus();
  });
  // the layer picker
  const choices = [
    ["all", () => base],
    ["every 2nd", () => base.filter((_, i) => i % 2 === 0 || i === base.length - 1)],
    ["every 4th", () => base.filter((_, i) => i % 4 === 0 || i === base.length - 1)],
    ["last 8", () => base.slice(-8)],
  ];
  const pick = document.createElement("select");
  pick.className = "ew-lp-pick";
  pick.setAttribute("aria-label", "layers shown");
  for (const [name] of choices) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = `layers: ${name}${name === "all" && pyLayers.length ? ` (${pyLayers.length} chosen)` : ""}`;
    pick.appendChild(o);
  }
  const show = (name) => {
    const keep = new Set((choices.find((c) => c[0] === name) || choices[0])[1]());
    table.querySelectorAll("[data-layer]").forEach((e) => (e.hidden = !keep.has(Number(e.dataset.layer))));
  };
  pick.addEventListener("change", () => show(pick.value));
  controls.appendChild(pick);
  show("all");
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(table);
  body.appendChild(scroll);
  ctx.setLegend(legend(null, { label: "bar length = probability (0\u2013100%)", categories: [{ label: "probability", rgb: [0, 114, 178] }] }));
  return {};
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "layer_predictions",
    traits: ["position", "context_token", "layer_labels", "topk_vocab", "topk_index", "topk_probs", "layers"],
    build,
  });
}

export default { render };
