// FactorExplorer: a sparkline per factor over the tokens, each in its factor's colour with a y scale. Hover a
// factor to isolate it (the other sparklines dim) and colour the tokens by it; leaving restores; click / Enter pins
// it (selected_factor). With none isolated, each token is coloured by its dominant factors at once: the strongest
// (relative to each factor's own maximum) as the background, shaded by its strength, and a bar under the token
// with up to three factors in proportion. excluded_tokens (e.g. the attention sink left out of the NMF) are hatched
// and named in the legend.
import { decodeArray } from "./lib/arrays.js";
import { attributionScale, legend, formatNumber, formatCompact, css, factorColor } from "./lib/colors.js";
import { createTokenRow, piecesRow } from "./lib/tokens.js";
import { sparkline } from "./lib/sparkline.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput, marks } = tokenTraits(model);
  const f = decodeArray(model.get("factors"), "factors");
  const ok = !f.empty && f.shape.length === 2;
  const C = ok ? f.shape[0] : 0;
  const T = ok ? f.shape[1] : 0;
  const given = get(model, "factor_labels", []);
  const labels = Array.from({ length: C }, (_, i) => (given[i] != null ? String(given[i]) : `factor ${i}`));
  const val = (c, t) => (t < T ? f.data[c * T + t] : 0);
  const rowData = (c) => f.data.subarray(c * T, (c + 1) * T);
  const scales = [];
  for (let c = 0; c < C; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    const d = rowData(c);
    for (let i = 0; i < d.length; i++) {
      if (d[i] < lo) lo = d[i];
      if (d[i] > hi) hi = d[i];
    }
    scales.push(attributionScale(lo, hi, ctx.theme));
  }
  // each factor's colour contrasts >= 3 : 1 with the background (lines, swatches; Okabe-Ito's yellow is 1.2 on white)
  const swatch = (c) => factorColor(c, ctx.theme);
  const excluded = new Set(get(model, "excluded_tokens", []).map(Number));
  const peak = scales.map((sc) => Math.max(Math.abs(sc.domain[0]), Math.abs(sc.domain[1])) || 1);

  const list = document.createElement("div");
  list.className = "ew-factor-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "factors");
  const rows = [];
  const sparks = [];
  let isolated = -1; // hovered / focused factor
  for (let c = 0; c < C; c++) {
    const r = document.createElement("div");
    r.className = "ew-factor";
    r.setAttribute("role", "option");
    r.tabIndex = c === 0 ? 0 : -1;
    r.dataset.index = String(c);
    r.setAttribute("aria-label", `${labels[c]}`);
    const sw = document.createElement("span");
    sw.className = "ew-factor-swatch";
    sw.style.background = css(swatch(c));
    const lab = document.createElement("span");
    lab.className = "ew-factor-label";
    lab.textContent = labels[c];
    const sp = sparkline(rowData(c), { width: Math.min(600, Math.max(120, T * 3)), height: 26, label: `${labels[c]} over ${T} tokens`, color: css(swatch(c)), domain: scales[c].domain, yAxis: (v) => formatCompact(v, 5, 2) });
    sp.svg.dataset.color = css(swatch(c));
    r.appendChild(sw);
    r.appendChild(lab);
    r.appendChild(sp.el);
    list.appendChild(r);
    rows.push(r);
    sparks.push(sp);
  }
  const factorOf = (t) => {
    while (t && t !== list) {
      if (t.dataset && t.dataset.index !== undefined && t.parentNode === list) return Number(t.dataset.index);
      t = t.parentNode;
    }
    return -1;
  };

  const tokenRow = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    marks,
    label: "tokens",
    onHover(i, span, how, ev) {
      const c = current();
      // the hovered token on every sparkline (only the isolated factor's when one is)
      sparks.forEach((s, k) => s.mark(c < 0 || k === c ? i : -1));
      if (i < 0) return tooltip.hide();
      const lines = [{ label: `token ${i}`, token: tokens[i] }, piecesRow(model, raw, i)];
      if (c >= 0) lines.push([labels[c], formatNumber(val(c, i))]);
      else for (let k = 0; k < Math.min(C, 8); k++) lines.push([labels[k], formatNumber(val(k, i))]);
      tooltip.show(lines, how === "focus" ? span : ev);
    },
  });

  const pinned = () => {
    const s = Number(get(model, "selected_factor", -1));
    return s >= 0 && s < C ? s : -1;
  };
  const current = () => (isolated >= 0 ? isolated : pinned());

  function paint() {
    const c = current();
    list.classList.toggle("ew-isolating", c >= 0);
    tokenRow.spans.forEach((sp, i) => {
      sp.classList.toggle("ew-excluded", excluded.has(i));
      if (c >= 0 || excluded.has(i)) Object.assign(sp.style, { backgroundImage: "", backgroundSize: "", backgroundRepeat: "", backgroundPosition: "" });
    });
    rows.forEach((r, k) => {
      r.classList.toggle("ew-active", k === c);
      r.classList.toggle("ew-selected", k === pinned());
      if (k === pinned()) r.setAttribute("aria-selected", "true");
      else r.removeAttribute("aria-selected");
    });
    if (c >= 0) {
      const sc = scales[c];
      for (let i = 0; i < tokens.length; i++) tokenRow.setColor(i, i < T && !excluded.has(i) ? sc(val(c, i)) : null);
      ctx.setLegend(withNote(legend(sc, { label: labels[c] })));
    } else {
      // each token by its dominant factors at once (see dominantFactors)
      for (let i = 0; i < tokens.length; i++) {
        const top = i < T && !excluded.has(i) ? dominantFactors((k) => val(k, i) / peak[k], C) : [];
        tokenRow.setColor(i, top.length ? shade(swatch(top[0][0]), top[0][1]) : null);
        const st = tokenRow.spans[i].style;
        st.backgroundImage = top.length ? stackBar(top.map(([k, v]) => [css(swatch(k)), v])) : "";
        st.backgroundSize = top.length ? "100% 3px" : "";
        st.backgroundRepeat = top.length ? "no-repeat" : "";
        st.backgroundPosition = top.length ? "left bottom" : "";
      }
      const lg = C ? legend(null, { label: "dominant factors (shade = strength; bar = up to 3 in proportion)", categories: labels.map((l, k) => ({ label: l, rgb: swatch(k) })) }) : null;
      ctx.setLegend(lg && withNote(lg));
    }
  }

  function withNote(lg) {
    if (!excluded.size) return lg;
    const n = document.createElement("span");
    n.className = "ew-legend-note ew-excluded-note";
    const names = [...excluded].sort((x, y) => x - y).map((i) => `${i} ${JSON.stringify(tokens[i] == null ? "" : String(tokens[i]))}`);
    n.textContent = `hatched: token ${names.join(", ")} left out of the factorisation (shown as 0)`;
    lg.appendChild(n);
    return lg;
  }
  const isolate = (c) => {
    if (c === isolated) return;
    isolated = c;
    paint();
  };
  list.addEventListener("mouseover", (ev) => {
    const c = factorOf(ev.target);
    if (c >= 0) isolate(c);
  });
  list.addEventListener("mousemove", (ev) => {
    const c = factorOf(ev.target);
    if (c < 0) return;
    const svg = sparks[c].svg;
    const rect = svg.getBoundingClientRect();
    const i = sparks[c].indexAt(ev.clientX - rect.left);
    sparks[c].mark(i);
    if (ev.clientX >= rect.left && ev.clientX <= rect.right && i < tokens.length) {
      tooltip.show([labels[c], { label: `token ${i}`, token: tokens[i] }, piecesRow(model, raw, i), ["value", formatNumber(val(c, i))]], ev);
    } else tooltip.hide();
  });
  list.addEventListener("mouseleave", () => {
    sparks.forEach((s) => s.mark(-1));
    tooltip.hide();
    isolate(-1);
  });
  const pin = (c) => {
    const cur = Number(get(model, "selected_factor", -1));
    commit(model, "selected_factor", cur === c ? -1 : c);
  };
  list.addEventListener("click", (ev) => {
    const c = factorOf(ev.target);
    if (c >= 0) pin(c);
  });
  list.addEventListener("focusin", (ev) => {
    const c = factorOf(ev.target);
    if (c < 0) return;
    rows.forEach((r, k) => (r.tabIndex = k === c ? 0 : -1));
    isolate(c);
    let lo = Infinity;
    let hi = -Infinity;
    let arg = 0;
    for (let i = 0; i < T; i++) {
      const v = val(c, i);
      if (v < lo) lo = v;
      if (v > hi) {
        hi = v;
        arg = i;
      }
    }
    tooltip.show([labels[c], ["max", `${formatNumber(hi)} at token ${arg}`], { label: "", token: tokens[arg] }, ["min", formatNumber(lo)]], rows[c]);
  });
  list.addEventListener("focusout", (ev) => {
    if (ev.relatedTarget && list.contains(ev.relatedTarget)) return;
    tooltip.hide();
    isolate(-1);
  });
  list.addEventListener("keydown", (ev) => {
    const c = factorOf(ev.target);
    if (c < 0) return;
    let j = -1;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") j = Math.min(C - 1, c + 1);
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") j = Math.max(0, c - 1);
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = C - 1;
    else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      pin(c);
      return;
    } else return;
    ev.preventDefault();
    rows[j].focus();
  });

  if (!C) hint(body, "No factors to show.");
  body.appendChild(list);
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(tokenRow.el);
  body.appendChild(scroll);
  paint();
  return { onTrait: { selected_factor: paint } };
}

/**
 * The dominant factors of one token: up to `max` [factor, strength] with strength = value / the factor's peak in
 * [0, 1], strongest first, those under a quarter of the strongest dropped.
 * Example: dominantFactors((k) => [0.2, 0.9, 0.5][k], 3) -> [[1, 0.9], [2, 0.5]].
 */
export function dominantFactors(rel, C, max = 3) {
  const all = [];
  for (let k = 0; k < C; k++) {
    const v = rel(k);
    if (v > 0) all.push([k, Math.min(1, v)]);
  }
  all.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return all.filter(([, v], i) => i === 0 || v >= all[0][1] / 4).slice(0, max);
}

/** rgb blended toward white by strength t in [0, 1] (t = 1: the colour itself, t = 0: a faint tint). */
export function shade(rgb, t) {
  const a = 0.15 + 0.85 * Math.max(0, Math.min(1, t));
  return rgb.map((v) => Math.round(255 - (255 - v) * a));
}

/** A 3 px bar along a token's bottom: colours side by side in proportion to their weights. */
export function stackBar(parts) {
  const total = parts.reduce((s, [, v]) => s + v, 0) || 1;
  let at = 0;
  const stops = parts.map(([color, v]) => {
    const from = (100 * at) / total;
    at += v;
    return `${color} ${from.toFixed(1)}% ${((100 * at) / total).toFixed(1)}%`;
  });
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "factor_explorer",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "factors", "factor_labels", "excluded_tokens"],
    localTraits: ["selected_factor"],
    build,
  });
}

export default { render };
