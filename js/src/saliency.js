// SaliencyView: hover / focus an explained (target) token and the inputs before it take colour
// and show their attribution. Click / Enter on a target pins it (selected_token).
// causal = false (bidirectional encoders): every token, before and after the target and the target
// itself, takes colour; nothing is dimmed.
// completeness_error (optional, (n_methods, n_targets), NaN = none): integrated gradients' relative
// completeness error; the tooltip of a target shows it and targets above COMPLETENESS_TOLERANCE are marked.
// baselines (optional, one string per method, "" = none): shown next to the method and in the tooltip.
import { decodeArray } from "./lib/arrays.js";
import { attributionScale, legend, formatNumber, formatCompact, css } from "./lib/colors.js";
import { createTokenRow, piecesRow, positionLabel } from "./lib/tokens.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";

export const COMPLETENESS_TOLERANCE = 0.01; // as ecco_widgets.errors.COMPLETENESS_TOLERANCE (a test checks)

const percent = (e) => `${(100 * e).toFixed(e < 0.1 ? 2 : 1)} %`;

function build(ctx) {
  const { model, body, controls, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const N = tokens.length;
  const targetsArr = decodeArray(model.get("targets"), "targets");
  const attr = decodeArray(model.get("attributions"), "attributions");
  const methods = get(model, "methods", []).map(String);
  const baselines = get(model, "baselines", []).map(String);
  const baselineOf = () => baselines[methodIdx] || "";
  const style = get(model, "saliency_style", "minimal") === "detailed" ? "detailed" : "minimal";
  const causal = get(model, "causal", true) !== false;
  // unit "word": tokens are words, each value the sum over the word's pieces (raw_tokens lists them)
  const unit = get(model, "unit", "token") === "word" ? "word" : "token";
  // the positions that explain target t: those before it (causal), or all of them (bidirectional)
  const inputsEnd = (t) => (causal ? t : N);
  const explains = (p, t) => p < inputsEnd(t);
  body.classList.toggle("ew-sal-detailed", style === "detailed");
  const targets = Array.from(targetsArr.data);
  const ok = !attr.empty && attr.shape.length === 3 && attr.shape[1] === targets.length;
  const M = ok ? attr.shape[0] : 0;
  const NT = ok ? attr.shape[2] : 0;
  const rowOfPos = new Map();
  targets.forEach((t, i) => rowOfPos.set(t, i));
  const completeness = decodeArray(model.get("completeness_error"), "completeness_error");
  const hasCompleteness = !completeness.empty && completeness.shape.length === 2 && completeness.shape[0] === M &&
    completeness.shape[1] === targets.length;
  // relative completeness error of target row r under the current method, or null when there is none
  const errorOf = (r) => {
    if (!hasCompleteness) return null;
    const e = completeness.data[methodIdx * targets.length + r];
    return Number.isFinite(e) ? e : null;
  };

  let methodIdx = 0;
  const readMethod = () => {
    const m = String(get(model, "method", methods[0] || ""));
    const i = methods.indexOf(m);
    methodIdx = i >= 0 && i < M ? i : 0;
  };
  readMethod();

  let select = null;
  if (methods.length > 1) {
    const lab = document.createElement("label");
    lab.textContent = "method ";
    select = document.createElement("select");
    select.className = "ew-method";
    for (const m of methods) {
      const o = document.createElement("option");
      o.value = m;
      o.textContent = m;
      select.appendChild(o);
    }
    select.value = methods[methodIdx];
    select.addEventListener("change", () => commit(model, "method", select.value));
    lab.appendChild(select);
    controls.appendChild(lab);
  } else if (methods.length === 1) {
    const s = document.createElement("span");
    s.textContent = `method: ${methods[0]}`;
    controls.appendChild(s);
  }
  // what the current method was measured against (integrated gradients' and occlusion's baseline)
  const baselineNote = document.createElement("span");
  baselineNote.className = "ew-baseline";
  controls.appendChild(baselineNote);
  const showBaseline = () => {
    const b = baselineOf();
    baselineNote.textContent = b ? `baseline: ${b}` : "";
    baselineNote.hidden = !b;
  };
  showBaseline();

  const value = (row, p) => (ok && p < NT ? attr.data[(methodIdx * targets.length + row) * NT + p] : 0);
  const scaleFor = (row, t) => {
    let lo = 0;
    let hi = 0;
    for (let p = 0; p < inputsEnd(t) && p < NT; p++) {
      const v = value(row, p);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return attributionScale(lo, hi, ctx.theme);
  };

  let activeTarget = -1; // token position
  const row = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    marks,
    label: "tokens; explained tokens can be selected",
    onHover(i, span, how, ev) {
      if (i < 0) {
        tooltip.hide();
        show(defaultTarget());
        return;
      }
      if (rowOfPos.has(i)) {
        show(i);
        const r = rowOfPos.get(i);
        const ranked = [];
        for (let p = 0; p < inputsEnd(i) && p < NT; p++) ranked.push([p, value(r, p)]);
        ranked.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
        const lines = [`explained ${unit} ${i}`, { token: tokens[i] }, piecesRow(model, raw, i), ["method", methods[methodIdx] || ""]];
        if (baselineOf()) lines.push(["baseline", baselineOf()]);
        const e = errorOf(r);
        if (e !== null) {
          lines.push(["completeness error", percent(e)]);
          if (e > COMPLETENESS_TOLERANCE) lines.push("not converged: this row does not add up to f(x) \u2212 f(baseline)");
        }
        if (ranked.length) lines.push("strongest inputs (by |attribution|)");
        // the key is the input's position in the text, not its place in this list
        for (const [p, v] of ranked.slice(0, 3)) lines.push({ label: positionLabel(p), token: tokens[p], value: formatNumber(v) });
        tooltip.show(lines, how === "focus" ? span : ev);
      } else if (activeTarget >= 0 && rowOfPos.has(activeTarget) && explains(i, activeTarget)) {
        const v = value(rowOfPos.get(activeTarget), i);
        tooltip.show([{ label: `${unit} ${i}`, token: tokens[i] }, piecesRow(model, raw, i), [`attribution \u2192 ${activeTarget}`, formatNumber(v)]], how === "focus" ? span : ev);
      } else {
        tooltip.show([{ label: `${unit} ${i}`, token: tokens[i] }, piecesRow(model, raw, i), i < nInput ? `prompt ${unit}` : `generated ${unit}`], how === "focus" ? span : ev);
      }
    },
    onCommit(i) {
      if (!rowOfPos.has(i)) return;
      const cur = Number(get(model, "selected_token", -1));
      commit(model, "selected_token", cur === i ? -1 : i);
    },
  });
  const bars = [];
  row.spans.forEach((s, i) => {
    if (rowOfPos.has(i)) {
      s.classList.add("ew-target");
      s.setAttribute("aria-label", `${s.getAttribute("aria-label")}, explained`);
    }
    if (style === "detailed") {
      const txt = document.createElement("span");
      txt.className = "ew-tok-text";
      while (s.firstChild) txt.appendChild(s.firstChild);
      s.appendChild(txt);
      const wrap = document.createElement("span");
      wrap.className = "ew-bar-wrap";
      const bar = document.createElement("span");
      bar.className = "ew-bar";
      const val = document.createElement("span");
      val.className = "ew-bar-val";
      wrap.appendChild(bar);
      wrap.appendChild(val);
      s.appendChild(wrap);
      bars[i] = { bar, val };
    }
  });
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(row.el);
  body.appendChild(scroll);
  if (!ok || !targets.length) hint(body, "No attributions to show.");

  const defaultTarget = () => {
    const sel = Number(get(model, "selected_token", -1));
    if (rowOfPos.has(sel)) return sel;
    return targets.length ? targets[targets.length - 1] : -1;
  };

  function show(t) {
    activeTarget = t;
    const r = rowOfPos.has(t) ? rowOfPos.get(t) : -1;
    const scale = r >= 0 ? scaleFor(r, t) : null;
    let maxAbs = 0;
    if (scale) for (let p = 0; p < inputsEnd(t); p++) maxAbs = Math.max(maxAbs, Math.abs(value(r, p)));
    for (let i = 0; i < N; i++) {
      const s = row.spans[i];
      s.classList.toggle("ew-active", i === t);
      s.classList.toggle("ew-dim", causal && r >= 0 && i > t);
      const b = bars[i];
      if (r >= 0 && explains(i, t)) {
        const v = value(r, i);
        const rgb = scale(v);
        row.setColor(i, rgb);
        if (b) {
          b.bar.style.height = `${Math.max(1, Math.round((12 * Math.abs(v)) / (maxAbs || 1)))}px`;
          b.bar.style.background = css(rgb);
          b.val.textContent = formatCompact(v, 5, 2);
        }
      } else {
        row.setColor(i, null);
        if (b) {
          b.bar.style.height = "0px";
          b.val.textContent = "";
        }
      }
    }
    ctx.setLegend(scale ? legend(scale, { label: `attribution (${methods[methodIdx] || "method"}) \u2192 ${unit} ${t}${unit === "word" ? " (each word: the sum over its pieces)" : ""}` }) : null);
  }

  // targets whose row did not converge (current method) get a wavy underline
  const markUnconverged = () => {
    targets.forEach((t, r) => {
      const e = errorOf(r);
      const span = row.spans[t];
      if (span) span.classList.toggle("ew-unconverged", e !== null && e > COMPLETENESS_TOLERANCE);
    });
  };
  markUnconverged();

  const syncSelected = () => {
    const sel = Number(get(model, "selected_token", -1));
    row.spans.forEach((s, i) => {
      s.classList.toggle("ew-selected", i === sel);
      if (i === sel) s.setAttribute("aria-selected", "true");
      else s.removeAttribute("aria-selected");
    });
    show(defaultTarget());
  };
  syncSelected();

  return {
    row,
    onTrait: {
      selected_token: syncSelected,
      method: () => {
        readMethod();
        markUnconverged();
        showBaseline();
        if (select) select.value = methods[methodIdx];
        show(activeTarget >= 0 ? activeTarget : defaultTarget());
      },
    },
  };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "saliency",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "targets", "methods", "attributions", "saliency_style", "causal",
      "completeness_error", "baselines", "unit"],
    localTraits: ["selected_token", "method"],
    build,
  });
}

export default { render };
