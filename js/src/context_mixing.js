// ContextMixingView: how the chosen token's context was mixed, layer by layer. The token row (each token coloured by
// the method's score for the chosen target); under it a layers x source-tokens grid (rows = layers, columns = the
// tokens before the target), per layer or rolled out (a switcher, synced `mode`). Click / Enter on an explained
// token chooses it (`selected_token`; again: -1, the last); arrows move the grid's cell, Enter selects it (`selected_cell`).
import { decodeArray } from "./lib/arrays.js";
import { attributionScale, legend, formatNumber, formatCompact } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";
import { createTokenRow } from "./lib/tokens.js";

const MODES = { layer: "per layer", rolled: "rolled out" };

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const layers = decodeArray(model.get("layers"), "layers");
  const rolled = decodeArray(model.get("rolled"), "rolled");
  const score = decodeArray(model.get("score"), "score");
  const targets = Array.from(decodeArray(model.get("targets"), "targets").data || []);
  const N = tokens.length;
  const ok = !layers.empty && layers.shape.length === 3 && layers.shape[1] === targets.length && layers.shape[2] === N;
  if (!ok || !targets.length) {
    hint(body, "No context mixing to show.");
    return {};
  }
  const [L, T] = layers.shape;
  const method = String(get(model, "method", "")) || "context mixing";
  const given = get(model, "layer_labels", []);
  const labels = Array.from({ length: L }, (_, i) => (given[i] != null ? String(given[i]) : String(i)));
  const rowOf = new Map(targets.map((t, r) => [t, r]));
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  const rawOf = (i) => (raw[i] != null ? String(raw[i]) : tok(i));
  const block = { layer: layers, rolled: rolled.empty ? layers : rolled };
  let mode = get(model, "mode", "layer") in MODES ? get(model, "mode", "layer") : "layer";
  /** value of layer l, target row r, source j in the current mode */
  const value = (l, r, j) => block[mode].data[(l * T + r) * N + j];
  const scoreAt = (r, j) => (score.empty ? 0 : score.data[r * N + j]);

  const row = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    marks,
    label: "tokens; explained tokens can be chosen",
    onHover(i, span, how, ev) {
      if (i < 0) return tooltip.hide();
      const lines = [{ label: `token ${i}`, token: tok(i) }];
      if (rowOf.has(i)) lines.push("explained: click or Enter to show its context");
      if (shown >= 0 && i < shown) lines.push([`${method} \u2192 ${shown}`, formatNumber(scoreAt(rowOf.get(shown), i))]);
      tooltip.show(lines, how === "focus" ? span : ev);
    },
    onCommit(i) {
      if (!rowOf.has(i)) return;
      const cur = Number(get(model, "selected_token", -1));
      commit(model, "selected_token", cur === i ? -1 : i); // again: none (the last explained token is shown)
    },
  });
  row.spans.forEach((s, i) => rowOf.has(i) && s.classList.add("ew-target"));
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(row.el);
  body.appendChild(scroll);
  const gridSlot = document.createElement("div");
  gridSlot.className = "ew-scroll ew-cm-grid";
  body.appendChild(gridSlot);

  const select = document.createElement("select");
  select.className = "ew-cm-mode";
  select.setAttribute("aria-label", "per layer or rolled out");
  for (const [k, text] of Object.entries(MODES)) {
    const o = document.createElement("option");
    o.value = k;
    o.textContent = text;
    select.appendChild(o);
  }
  select.value = mode;
  select.addEventListener("change", () => commit(model, "mode", select.value));
  // the explained tokens, as a selector too (the same as a click on one in the row)
  const pick = document.createElement("select");
  pick.className = "ew-cm-target";
  pick.setAttribute("aria-label", "the explained token shown");
  for (const t of targets) {
    const o = document.createElement("option");
    o.value = String(t);
    o.textContent = `${t}: ${JSON.stringify(tok(t))}`;
    pick.appendChild(o);
  }
  pick.addEventListener("change", () => commit(model, "selected_token", Number(pick.value)));
  controls.appendChild(pick);
  controls.appendChild(select);

  let shown = -1;
  let grid = null;
  const chosen = () => {
    const sel = Number(get(model, "selected_token", -1));
    return rowOf.has(sel) ? sel : targets[targets.length - 1];
  };

  function drawGrid() {
    gridSlot.textContent = "";
    tooltip.hide();
    const r = rowOf.get(shown);
    const P = shown; // the sources: the tokens before the target
    let lo = 0;
    let hi = 0;
    for (let l = 0; l < L; l++) for (let j = 0; j < P; j++) {
      const v = value(l, r, j);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const scale = attributionScale(lo, hi, ctx.theme);
    const gm = gridMode(L, P);
    const cellW = gm === "dom" ? 44 : 14;
    const cellH = gm === "dom" ? 22 : 14;
    const g = document.createElement("div");
    g.style.display = "grid";
    g.style.gridTemplateColumns = "max-content max-content";
    g.style.width = "max-content";
    const srcTexts = Array.from({ length: P }, (_, j) => tok(j));
    const axis = tokenAxis(srcTexts, Array.from({ length: P }, (_, j) => rawOf(j)), cellW, { side: "bottom", vertical: gm === "canvas" });
    const rows = rowLabels(labels, cellH);
    const describe = (l, j) => `${layerName(labels[l])}, source ${j} ${JSON.stringify(tok(j))} \u2192 ${JSON.stringify(tok(shown))}: ${formatNumber(value(l, r, j))}`;
    grid = createGrid({
      nRows: L,
      nCols: P,
      cellW,
      cellH,
      mode: gm,
      ariaLabel: `${method} ${MODES[mode]}: layers x source tokens of token ${shown}`,
      color: (l, j) => scale(value(l, r, j)),
      text: gm === "dom" ? (l, j) => formatCompact(value(l, r, j), 5, 2) : null,
      label: describe,
      onHover(l, j, how, ev) {
        if (l < 0) {
          tooltip.hide();
          axis.setActive(-1);
          rows.setActive(-1);
          return;
        }
        axis.setActive(j);
        rows.setActive(l);
        tooltip.show([layerName(labels[l]), { label: `source ${j}`, token: tok(j) }, { label: `target ${shown}`, token: tok(shown) },
          [`${method} (${MODES[mode]})`, formatNumber(value(l, r, j))]], how === "focus" ? grid.anchor(l, j) : ev);
      },
      onCommit(l, j) {
        const cur = get(model, "selected_cell", []);
        const same = Array.isArray(cur) && cur.length === 2 && cur[0] === l && cur[1] === j;
        commit(model, "selected_cell", same ? [] : [l, j]);
      },
    });
    if (gm === "dom") for (let l = 0; l < L; l++) for (let j = 0; j < P; j++) grid.cellElement(l, j).dataset.value = String(value(l, r, j));
    const corner = document.createElement("div");
    corner.className = "ew-sticky-col ew-corner";
    corner.appendChild(axisTitle("layer \u2193", { className: "ew-layer-title" }));
    g.appendChild(corner);
    g.appendChild(document.createElement("div"));
    g.appendChild(rows.el);
    g.appendChild(grid.el);
    g.appendChild(axisTitle("source \u2192", { sticky: true }));
    g.appendChild(axis.el);
    gridSlot.appendChild(g);
    gridSlot.dataset.target = String(shown);
    gridSlot.dataset.mode = mode;
    ctx.setLegend(legend(scale, { label: `${method} (${MODES[mode]}) \u2192 token ${shown}` }));
    syncCell();
  }

  function colourRow() {
    const r = rowOf.get(shown);
    let lo = 0;
    let hi = 0;
    for (let j = 0; j < shown; j++) {
      lo = Math.min(lo, scoreAt(r, j));
      hi = Math.max(hi, scoreAt(r, j));
    }
    const scale = attributionScale(lo, hi, ctx.theme);
    const sel = Number(get(model, "selected_token", -1));
    row.spans.forEach((s, i) => {
      s.classList.toggle("ew-active", i === shown);
      s.classList.toggle("ew-selected", i === sel);
      s.classList.toggle("ew-dim", i > shown);
      if (i === shown) s.setAttribute("aria-selected", "true");
      else s.removeAttribute("aria-selected");
      if (i < shown) {
        row.setColor(i, scale(scoreAt(r, i)));
        s.dataset.value = String(scoreAt(r, i));
      } else {
        row.setColor(i, null);
        delete s.dataset.value;
      }
    });
  }

  function syncCell() {
    const sel = get(model, "selected_cell", []);
    if (grid && Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < shown) grid.setSelected(sel[0], sel[1]);
    else if (grid) grid.setSelected(-1, -1);
  }

  const show = () => {
    shown = chosen();
    pick.value = String(shown);
    colourRow();
    drawGrid();
  };
  show();
  return {
    row,
    onTrait: {
      selected_token: show,
      selected_cell: syncCell,
      mode: () => {
        const m = get(model, "mode", "layer");
        mode = m in MODES ? m : "layer";
        select.value = mode;
        drawGrid();
      },
    },
  };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "context_mixing",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "method", "targets", "layers", "rolled", "score", "layer_labels"],
    localTraits: ["selected_token", "selected_cell", "mode"],
    build,
  });
}

export default { render };
