// HeadPatchingGrid: rows = layers (0 at top), columns = attention heads, at one patched position of a prompt pair
// (a selector, and the patched tokens of the pair, pick the position). Cell [l, h] = the normalised logit
// difference (0 = corrupted run, 1 = clean run) when head h of layer l of the clean run is restored at that
// position in the corrupted run, on a diverging scale centred on 0. Clicking a cell commits selected_cell
// ([layer, head]) and lists the patched run's top-k at the answer position next to the clean and corrupted runs'.
import { decodeArray, at } from "./lib/arrays.js";
import { divergingScale, legend, formatNumber, formatCompact, formatPercent } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get } from "./lib/model.js";
import { tokenSpan } from "./lib/tokens.js";
import { maxAbs, effectSwitcher, topkList, summaryText } from "./patching_grid.js";

const EFFECT_LABEL = { exact: "patching", attribution: "attribution estimate" };

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const clean = get(model, "clean_tokens", []).map(String);
  const corrupted = get(model, "corrupted_tokens", []).map(String);
  const cleanRaw = get(model, "clean_raw_tokens", clean);
  const corruptedRaw = get(model, "corrupted_raw_tokens", corrupted);
  const effect = decodeArray(model.get("effect"), "effect");
  if (effect.empty || effect.shape.length !== 3) {
    body.appendChild(el("div", "ew-hint", "No effects to show."));
    return {};
  }
  const [L, H, P] = effect.shape;
  const positions = get(model, "positions", []).map(Number);
  const posOf = (j) => (positions[j] != null ? positions[j] : j);
  const attr = decodeArray(model.get("attribution_effect"), "attribution_effect");
  const hasAttr = !attr.empty && attr.shape.length === 3 && attr.shape.every((s, i) => s === effect.shape[i]);
  const method = get(model, "effect_method", "exact");
  const arrays = { [method]: effect, ...(hasAttr ? { attribution: attr } : {}) };
  const topIdx = decodeArray(model.get("topk_index"), "topk_index");
  const topProb = decodeArray(model.get("topk_probs"), "topk_probs");
  const refIdx = decodeArray(model.get("reference_topk_index"), "reference_topk_index");
  const refProb = decodeArray(model.get("reference_topk_probs"), "reference_topk_probs");
  const vocab = get(model, "topk_vocab", []);
  const hasTop = !topIdx.empty && topIdx.shape.length === 4 && topIdx.shape[0] === L && topIdx.shape[1] === H && topIdx.shape[2] === P;
  const K = hasTop ? topIdx.shape[3] : 0;
  const word = (vi) => (vocab[vi] != null ? String(vocab[vi]) : `#${vi}`);
  const labels = Array.from({ length: L }, (_, i) => String(get(model, "layer_labels", [])[i] ?? i));
  const heads = Array.from({ length: H }, (_, i) => String(get(model, "head_labels", [])[i] ?? `h${i}`));
  const answer = String(get(model, "answer", ""));
  const foil = String(get(model, "foil", ""));
  const differs = (p) => clean[p] !== corrupted[p] || cleanRaw[p] !== corruptedRaw[p];
  const clampCol = (j) => (Number.isInteger(j) && j >= 0 && j < P ? j : P - 1);
  let col = clampCol(get(model, "selected_position", P - 1));
  let shown = arrays[get(model, "shown", method)] ? get(model, "shown", method) : method;
  // one scale per effect over every position, so that switching positions compares like with like
  const scales = {};
  const scaleOf = (m) => scales[m] || (scales[m] = divergingScale(maxAbs(arrays[m].data), ctx.theme));
  const valueAt = (m, l, h) => arrays[m].data[(l * H + h) * P + col];
  const mode = gridMode(L, H);
  const cellW = mode === "dom" ? 44 : 14;
  const cellH = mode === "dom" ? 22 : 14;
  const tokenText = (p) => `${JSON.stringify(clean[p])} over ${JSON.stringify(corrupted[p])}`;

  // ---- the prompt pair: every token, the patched ones clickable, the shown position marked
  const pair = el("div", "ew-patch-pair");
  pair.style.cssText = "display:grid;grid-template-columns:max-content auto;column-gap:8px;row-gap:2px;margin-bottom:6px";
  const pairSpans = { clean: [], corrupted: [] };
  for (const [name, texts, raws] of [["clean", clean, cleanRaw], ["corrupted", corrupted, corruptedRaw]]) {
    pair.appendChild(axisTitle(name));
    const line = el("div", "ew-patch-prompt");
    line.dataset.prompt = name;
    texts.forEach((t, p) => {
      const s = tokenSpan(t, { raw: raws[p] != null ? raws[p] : t });
      if (differs(p)) {
        s.dataset.differs = "1";
        s.style.fontWeight = "700";
      }
      const j = positions.indexOf(p);
      if (j >= 0) {
        s.dataset.column = String(j);
        s.style.cursor = "pointer";
        s.addEventListener("click", () => choose(j));
      } else {
        s.style.opacity = "0.7";
      }
      pairSpans[name].push(s);
      line.appendChild(s);
    });
    pair.appendChild(line);
  }
  body.appendChild(pair);

  // ---- the grid: head labels on top, layer labels on the left
  const wrap = el("div", "ew-scroll");
  const g = el("div");
  g.style.cssText = "display:grid;grid-template-columns:max-content max-content;width:max-content;align-items:stretch";
  const top = el("div", "ew-axis ew-axis-top ew-patch-heads");
  top.setAttribute("aria-hidden", "true");
  heads.forEach((h, i) => {
    const narrow = mode !== "dom";
    const s = el("span", "ew-patch-head", narrow ? (i % 4 === 0 ? String(i) : "") : h);
    s.title = h;
    s.style.cssText = `display:inline-block;width:${cellW}px;text-align:center;font-size:11px;color:var(--ew-muted);overflow:hidden`;
    top.appendChild(s);
  });
  const corner = axisTitle("layer \\ head");
  corner.style.alignSelf = "end";
  g.appendChild(corner);
  g.appendChild(top);
  const rows = rowLabels(labels, cellH);
  const describe = (l, h) => `${layerName(labels[l])}, ${heads[h]}, position ${posOf(col)}: ${EFFECT_LABEL[shown]} ${formatNumber(valueAt(shown, l, h), 3)}`;
  const headSpans = [...top.children];
  let activeHead = -1;
  const setActive = (l, h) => {
    rows.setActive(l);
    if (activeHead >= 0) headSpans[activeHead].classList.remove("ew-active");
    activeHead = h;
    if (h >= 0) headSpans[h].classList.add("ew-active");
  };
  const grid = createGrid({
    nRows: L,
    nCols: H,
    cellW,
    cellH,
    mode,
    ariaLabel: "effect of restoring each attention head of the clean run",
    color: (l, h) => scaleOf(shown)(valueAt(shown, l, h)),
    text: mode === "dom" ? (l, h) => (Math.abs(valueAt(shown, l, h)) < 5e-4 ? "0" : formatCompact(valueAt(shown, l, h), 5, 2)) : null,
    label: describe,
    onHover(l, h, how, ev) {
      if (l < 0) {
        tooltip.hide();
        setActive(-1, -1);
        return;
      }
      setActive(l, h);
      const p = posOf(col);
      const lines = [layerName(labels[l]), ["head", heads[h]], ["position", p], { label: "clean", token: clean[p] }, { label: "corrupted", token: corrupted[p] }];
      for (const m of Object.keys(arrays)) lines.push([EFFECT_LABEL[m], formatNumber(valueAt(m, l, h), 3)]);
      if (hasTop) lines.push({ label: "patched top 1", token: word(at(topIdx, l, h, col, 0)), value: formatPercent(at(topProb, l, h, col, 0)) });
      tooltip.show(lines, how === "focus" ? grid.anchor(l, h) : ev);
    },
    onCommit(l, h) {
      const cur = get(model, "selected_cell", []);
      const same = Array.isArray(cur) && cur.length === 2 && cur[0] === l && cur[1] === h;
      commit(model, "selected_cell", same ? [] : [l, h]);
    },
  });
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  wrap.appendChild(g);
  body.appendChild(wrap);

  const detail = el("div", "ew-patch-detail");
  detail.setAttribute("aria-live", "polite");
  detail.style.marginTop = "6px";
  body.appendChild(detail);
  const showDetail = (l, h) => {
    detail.textContent = "";
    if (l < 0) {
      detail.appendChild(el("div", "ew-hint", hasTop ? `Click a cell for the patched run's top ${K} after the last token.` : "The patched runs' predictions were not computed (attribution only)."));
      return;
    }
    const p = posOf(col);
    detail.appendChild(el("div", "ew-patch-detail-title", `${layerName(labels[l])}, ${heads[h]} restored at position ${p} (${tokenText(p)}): ${EFFECT_LABEL[shown]} ${formatNumber(valueAt(shown, l, h), 3)}`));
    if (!hasTop) return;
    detail.appendChild(topkList("patched run", "patched", Array.from({ length: K }, (_, k) => [word(at(topIdx, l, h, col, k)), at(topProb, l, h, col, k)])));
    if (!refIdx.empty && refIdx.shape[0] === 2) {
      const k2 = refIdx.shape[1];
      detail.appendChild(topkList("clean run", "clean", Array.from({ length: k2 }, (_, k) => [word(at(refIdx, 0, k)), at(refProb, 0, k)])));
      detail.appendChild(topkList("corrupted run", "corrupted", Array.from({ length: k2 }, (_, k) => [word(at(refIdx, 1, k)), at(refProb, 1, k)])));
    }
  };

  // ---- controls: the summary, the position selector, the effect switcher
  const summary = el("span", "ew-patch-summary", summaryText(model, "head", answer, foil));
  summary.style.marginRight = "12px";
  controls.appendChild(summary);
  const select = el("select", "ew-patch-position");
  select.setAttribute("aria-label", "patched position");
  for (let j = 0; j < P; j++) {
    const p = posOf(j);
    const o = el("option", "", `position ${p}: ${JSON.stringify(clean[p] ?? "")}${differs(p) ? ` / ${JSON.stringify(corrupted[p] ?? "")}` : ""}`);
    o.value = String(j);
    select.appendChild(o);
  }
  select.disabled = P < 2;
  select.addEventListener("change", () => choose(Number(select.value)));
  controls.appendChild(select);
  const switcher = hasAttr ? effectSwitcher(shown, (m) => {
    show(m);
    if (get(model, "shown", method) !== m) commit(model, "shown", m);
  }) : null;
  if (switcher) controls.appendChild(switcher.el);
  const agree = { pearson: model.get("pearson"), sign_agreement: model.get("sign_agreement"), signed_cells: get(model, "signed_cells", 0) };
  if (hasAttr && (agree.pearson != null || agree.sign_agreement != null)) {
    const r = agree.pearson != null ? `Pearson r = ${formatNumber(agree.pearson, 3)}` : "Pearson r: n/a";
    const s = agree.sign_agreement != null ? `signs agree in ${formatNumber(agree.sign_agreement * 100, 3)}% of the ${agree.signed_cells} cells with |effect| \u2265 0.01` : "";
    // (no margin of its own: the controls' gap spaces it, also when it wraps to a line of its own)
    const a = el("span", "ew-patch-agreement", `attribution vs exact: ${r}${s ? `; ${s}` : ""}`);
    controls.appendChild(a);
  }
  const legendFor = (m) => {
    const lg = legend(scaleOf(m), { label: `${EFFECT_LABEL[m]}: 0 = corrupted, 1 = clean`, note: "diverging, centred on 0" });
    lg.dataset.effect = m;
    return lg;
  };
  const markPosition = () => {
    select.value = String(col);
    for (const spans of Object.values(pairSpans)) {
      spans.forEach((s, p) => {
        const on = p === posOf(col);
        s.classList.toggle("ew-active", on);
        s.style.boxShadow = on ? "inset 0 -2px 0 var(--ew-accent)" : "";
      });
    }
  };
  const syncSelected = () => {
    const sel = get(model, "selected_cell", []);
    const ok = Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < H;
    grid.setSelected(ok ? sel[0] : -1, ok ? sel[1] : -1);
    showDetail(ok ? sel[0] : -1, ok ? sel[1] : -1);
  };
  const setColumn = (j) => {
    const next = clampCol(j);
    if (next === col) return;
    col = next;
    markPosition();
    grid.refresh();
    tooltip.hide();
    syncSelected();
  };
  function choose(j) {
    setColumn(j);
    if (get(model, "selected_position", P - 1) !== col) commit(model, "selected_position", col);
  }
  const show = (m) => {
    const next = arrays[m] ? m : method;
    if (switcher) switcher.set(next);
    if (next === shown) return;
    shown = next;
    ctx.setLegend(legendFor(shown));
    grid.refresh();
    tooltip.hide();
    syncSelected();
  };
  ctx.setLegend(legendFor(shown));
  markPosition();
  syncSelected();
  return {
    grid,
    onTrait: {
      selected_cell: syncSelected,
      shown: () => show(get(model, "shown", method)),
      selected_position: () => setColumn(get(model, "selected_position", P - 1)),
    },
  };
}

export function render({ model, el: root }) {
  return mountView(model, root, {
    name: "patching_heads",
    traits: ["clean_tokens", "corrupted_tokens", "clean_raw_tokens", "corrupted_raw_tokens", "layer_labels", "head_labels", "positions", "effect",
      "effect_method", "attribution_effect", "pearson", "sign_agreement", "signed_cells", "answer", "foil", "points", "clean_logit_diff",
      "corrupted_logit_diff", "topk_vocab", "topk_index", "topk_probs", "reference_topk_index", "reference_topk_probs"],
    localTraits: ["selected_cell", "shown", "selected_position"],
    build,
  });
}

export default { render };
