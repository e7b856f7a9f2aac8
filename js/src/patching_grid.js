// PatchingGrid: rows = layers (0 at top), columns = positions of a prompt pair. Cell [l, p] = the normalised logit
// difference (0 = corrupted run, 1 = clean run) when point (l, p) of the clean run is restored in the corrupted
// run, on a diverging scale centred on 0. The clean and corrupted tokens sit on top, aligned with the columns, the
// differing ones marked. Clicking a cell commits selected_cell and lists the patched run's top-k at the answer
// position next to the clean and corrupted runs'. Optional attribution_effect: a switcher shows the estimate.
import { decodeArray, at } from "./lib/arrays.js";
import { divergingScale, legend, formatNumber, formatCompact, formatPercent } from "./lib/colors.js";
import { createGrid, gridMode } from "./lib/grid.js";
import { tokenAxis, rowLabels, layerName, axisTitle } from "./lib/axis.js";
import { mountView, commit, get } from "./lib/model.js";
import { tokenSpan } from "./lib/tokens.js";

const EFFECT_LABEL = { exact: "patching", attribution: "attribution estimate" };
const pct = (p) => formatPercent(p);

export function maxAbs(data) {
  let m = 0;
  for (let i = 0; i < data.length; i++) if (Math.abs(data[i]) > m) m = Math.abs(data[i]);
  return m > 0 ? m : 1;
}

/**
 * The summary line: `${points}: logit difference "answer" − "foil"`, then the clean and corrupted runs' logit
 * differences, each only when given (a finite number; the traits are null when the view was made without them).
 */
export function summaryText(model, points, answer, foil) {
  const given = (name) => {
    const v = model.get(name);
    return v != null && v !== "" && Number.isFinite(Number(v)) ? Number(v) : null;
  };
  const runs = [["clean", given("clean_logit_diff")], ["corrupted", given("corrupted_logit_diff")]].filter(([, v]) => v != null);
  return `${points}: logit difference ${JSON.stringify(answer)} \u2212 ${JSON.stringify(foil)}${runs.map(([k, v]) => `, ${k} ${formatNumber(v, 3)}`).join("")}`;
}

/** A segmented toggle between the exact effects and the attribution estimate (`.ew-seg-btn[data-effect]`). */
export function effectSwitcher(current, onSelect) {
  const el = document.createElement("div");
  el.className = "ew-seg";
  el.setAttribute("role", "group");
  el.setAttribute("aria-label", "show");
  const buttons = ["exact", "attribution"].map((m) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ew-seg-btn";
    b.dataset.effect = m;
    b.textContent = m;
    b.title = EFFECT_LABEL[m];
    b.addEventListener("click", () => onSelect(m));
    el.appendChild(b);
    return b;
  });
  el.addEventListener("keydown", (ev) => {
    const i = buttons.indexOf(ev.target);
    const j = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: 0, ArrowUp: 0, Home: 0, End: 1 }[ev.key];
    if (i < 0 || j == null) return;
    ev.preventDefault();
    buttons[j].focus();
  });
  const set = (m) => buttons.forEach((b) => {
    const on = b.dataset.effect === m;
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.classList.toggle("ew-pressed", on);
    b.tabIndex = on ? 0 : -1;
  });
  set(current);
  return { el, set };
}

/** One top-k list: a heading and one `.ew-patch-topk-item` (rank, token, probability) per entry. */
export function topkList(heading, kind, entries) {
  const box = document.createElement("div");
  box.className = "ew-patch-topk";
  box.dataset.run = kind;
  box.style.cssText = "display:inline-block;vertical-align:top;margin:0 18px 4px 0;min-width:140px";
  const h = document.createElement("div");
  h.className = "ew-patch-topk-title";
  h.style.fontWeight = "600";
  h.textContent = heading;
  box.appendChild(h);
  entries.forEach(([token, p], k) => {
    const row = document.createElement("div");
    row.className = "ew-patch-topk-item";
    row.dataset.k = String(k);
    const rank = document.createElement("span");
    rank.textContent = `${k + 1}. `;
    rank.style.color = "var(--ew-muted)";
    const value = document.createElement("span");
    value.className = "ew-patch-topk-prob";
    value.textContent = ` ${pct(p)}`;
    row.appendChild(rank);
    row.appendChild(tokenSpan(token, { raw: token }));
    row.appendChild(value);
    box.appendChild(row);
  });
  return box;
}

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const clean = get(model, "clean_tokens", []).map(String);
  const corrupted = get(model, "corrupted_tokens", []).map(String);
  const cleanRaw = get(model, "clean_raw_tokens", clean);
  const corruptedRaw = get(model, "corrupted_raw_tokens", corrupted);
  const effect = decodeArray(model.get("effect"), "effect");
  if (effect.empty || effect.shape.length !== 2) {
    const p = document.createElement("div");
    p.className = "ew-hint";
    p.textContent = "No effects to show.";
    body.appendChild(p);
    return {};
  }
  const [L, P] = effect.shape;
  const attr = decodeArray(model.get("attribution_effect"), "attribution_effect");
  const hasAttr = !attr.empty && attr.shape[0] === L && attr.shape[1] === P;
  const method = get(model, "effect_method", "exact");
  const arrays = { [method]: effect, ...(hasAttr ? { attribution: attr } : {}) };
  const topIdx = decodeArray(model.get("topk_index"), "topk_index");
  const topProb = decodeArray(model.get("topk_probs"), "topk_probs");
  const refIdx = decodeArray(model.get("reference_topk_index"), "reference_topk_index");
  const refProb = decodeArray(model.get("reference_topk_probs"), "reference_topk_probs");
  const vocab = get(model, "topk_vocab", []);
  const hasTop = !topIdx.empty && topIdx.shape[0] === L && topIdx.shape[1] === P;
  const K = hasTop ? topIdx.shape[2] : 0;
  const word = (vi) => (vocab[vi] != null ? String(vocab[vi]) : `#${vi}`);
  const labels = Array.from({ length: L }, (_, i) => String(get(model, "layer_labels", [])[i] ?? i));
  const answer = String(get(model, "answer", ""));
  const foil = String(get(model, "foil", ""));
  const points = String(get(model, "points", "resid"));
  const differs = (p) => clean[p] !== corrupted[p] || cleanRaw[p] !== corruptedRaw[p];
  let shown = arrays[get(model, "shown", method)] ? get(model, "shown", method) : method;
  const scales = {};
  const scaleOf = (m) => scales[m] || (scales[m] = divergingScale(maxAbs(arrays[m].data), ctx.theme));
  const valueAt = (m, l, p) => arrays[m].data[l * P + p];
  const mode = gridMode(L, P);
  const cellW = mode === "dom" ? 44 : 14;
  const cellH = mode === "dom" ? 22 : 14;

  const wrap = document.createElement("div");
  wrap.className = "ew-scroll";
  const g = document.createElement("div");
  g.style.cssText = "display:grid;grid-template-columns:max-content max-content;width:max-content;align-items:stretch";
  const vertical = mode === "canvas";
  const kindOf = (p) => (differs(p) ? "ew-patch-diff" : "");
  const axes = [
    ["clean", tokenAxis(clean, cleanRaw, cellW, { side: "top", vertical, kindOf })],
    ["corrupted", tokenAxis(corrupted, corruptedRaw, cellW, { side: "top", vertical, kindOf })],
  ];
  for (const [name, axis] of axes) {
    axis.el.classList.add("ew-patch-prompt");
    axis.el.dataset.prompt = name;
    axis.spans.forEach((s, p) => {
      if (!differs(p)) return;
      s.dataset.differs = "1";
      s.style.fontWeight = "700";
      s.style.boxShadow = "inset 0 -2px 0 var(--ew-accent)";
    });
    const title = axisTitle(name, { sticky: true });
    title.style.alignSelf = "end";
    g.appendChild(title);
    g.appendChild(axis.el);
  }
  const rows = rowLabels(labels, cellH);
  const describe = (l, p) => `${layerName(labels[l])}, position ${p}: ${JSON.stringify(clean[p])} restored over ${JSON.stringify(corrupted[p])}, ${EFFECT_LABEL[shown]} ${formatNumber(valueAt(shown, l, p), 3)}`;
  const setActive = (l, p) => {
    axes.forEach(([, a]) => a.setActive(p));
    rows.setActive(l);
  };
  const grid = createGrid({
    nRows: L,
    nCols: P,
    cellW,
    cellH,
    mode,
    ariaLabel: `effect of restoring each ${points} point of the clean run`,
    color: (l, p) => scaleOf(shown)(valueAt(shown, l, p)),
    // float noise of a batched forward (|v| < 5e-4, e.g. -8e-8 where nothing changed) reads as 0; the tooltip has it
    text: mode === "dom" ? (l, p) => (Math.abs(valueAt(shown, l, p)) < 5e-4 ? "0" : formatCompact(valueAt(shown, l, p), 5, 2)) : null,
    label: describe,
    onHover(l, p, how, ev) {
      if (l < 0) {
        tooltip.hide();
        setActive(-1, -1);
        return;
      }
      setActive(l, p);
      const lines = [layerName(labels[l]), ["position", p], { label: "clean", token: clean[p] }, { label: "corrupted", token: corrupted[p] }];
      for (const m of Object.keys(arrays)) lines.push([EFFECT_LABEL[m], formatNumber(valueAt(m, l, p), 3)]);
      if (hasTop) lines.push({ label: "patched top 1", token: word(at(topIdx, l, p, 0)), value: pct(at(topProb, l, p, 0)) });
      tooltip.show(lines, how === "focus" ? grid.anchor(l, p) : ev);
    },
    onCommit(l, p) {
      const cur = get(model, "selected_cell", []);
      const same = Array.isArray(cur) && cur.length === 2 && cur[0] === l && cur[1] === p;
      commit(model, "selected_cell", same ? [] : [l, p]);
    },
  });
  g.appendChild(rows.el);
  g.appendChild(grid.el);
  wrap.appendChild(g);
  body.appendChild(wrap);

  const detail = document.createElement("div");
  detail.className = "ew-patch-detail";
  detail.setAttribute("aria-live", "polite");
  detail.style.marginTop = "6px";
  body.appendChild(detail);
  const showDetail = (l, p) => {
    detail.textContent = "";
    if (l < 0) {
      const h = document.createElement("div");
      h.className = "ew-hint";
      h.textContent = hasTop ? `Click a cell for the patched run's top ${K} after the last token.` : "The patched runs' predictions were not computed (attribution only).";
      detail.appendChild(h);
      return;
    }
    const head = document.createElement("div");
    head.className = "ew-patch-detail-title";
    head.textContent = `${layerName(labels[l])}, position ${p} restored (${JSON.stringify(clean[p])} over ${JSON.stringify(corrupted[p])}): ${EFFECT_LABEL[shown]} ${formatNumber(valueAt(shown, l, p), 3)}`;
    detail.appendChild(head);
    if (!hasTop) return;
    detail.appendChild(topkList("patched run", "patched", Array.from({ length: K }, (_, k) => [word(at(topIdx, l, p, k)), at(topProb, l, p, k)])));
    if (!refIdx.empty && refIdx.shape[0] === 2) {
      const k2 = refIdx.shape[1];
      detail.appendChild(topkList("clean run", "clean", Array.from({ length: k2 }, (_, k) => [word(at(refIdx, 0, k)), at(refProb, 0, k)])));
      detail.appendChild(topkList("corrupted run", "corrupted", Array.from({ length: k2 }, (_, k) => [word(at(refIdx, 1, k)), at(refProb, 1, k)])));
    }
  };

  const summary = document.createElement("span");
  summary.className = "ew-patch-summary";
  summary.textContent = summaryText(model, points, answer, foil);
  summary.style.marginRight = "12px";
  controls.appendChild(summary);
  const switcher = hasAttr ? effectSwitcher(shown, (m) => {
    show(m);
    if (get(model, "shown", method) !== m) commit(model, "shown", m);
  }) : null;
  if (switcher) controls.appendChild(switcher.el);
  const agree = { pearson: model.get("pearson"), sign_agreement: model.get("sign_agreement"), signed_cells: get(model, "signed_cells", 0) };
  if (hasAttr && (agree.pearson != null || agree.sign_agreement != null)) {
    const a = document.createElement("span");
    a.className = "ew-patch-agreement"; // (no margin of its own: the controls' gap spaces it, also when it wraps)
    const r = agree.pearson != null ? `Pearson r = ${formatNumber(agree.pearson, 3)}` : "Pearson r: n/a";
    const s = agree.sign_agreement != null ? `signs agree in ${formatNumber(agree.sign_agreement * 100, 3)}% of the ${agree.signed_cells} cells with |effect| \u2265 0.01` : "";
    a.textContent = `attribution vs exact: ${r}${s ? `; ${s}` : ""}`;
    controls.appendChild(a);
  }
  const legendFor = (m) => {
    const lg = legend(scaleOf(m), { label: `${EFFECT_LABEL[m]}: 0 = corrupted, 1 = clean`, note: "diverging, centred on 0" });
    lg.dataset.effect = m;
    return lg;
  };
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
  const syncSelected = () => {
    const sel = get(model, "selected_cell", []);
    const ok = Array.isArray(sel) && sel.length === 2 && sel[0] >= 0 && sel[0] < L && sel[1] >= 0 && sel[1] < P;
    grid.setSelected(ok ? sel[0] : -1, ok ? sel[1] : -1);
    showDetail(ok ? sel[0] : -1, ok ? sel[1] : -1);
  };
  syncSelected();
  return { grid, onTrait: { selected_cell: syncSelected, shown: () => show(get(model, "shown", method)) } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "patching_grid",
    traits: ["clean_tokens", "corrupted_tokens", "clean_raw_tokens", "corrupted_raw_tokens", "layer_labels", "effect", "effect_method",
      "attribution_effect", "pearson", "sign_agreement", "signed_cells", "answer", "foil", "points", "clean_logit_diff", "corrupted_logit_diff", "topk_vocab", "topk_index",
      "topk_probs", "reference_topk_index", "reference_topk_probs"],
    localTraits: ["selected_cell", "shown"],
    build,
  });
}

export default { render };
