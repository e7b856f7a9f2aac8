// FactorExplorer: a sparkline per factor over the tokens. Hover a factor to colour the tokens
// by it; leaving restores; click / Enter pins it (selected_factor).
import { decodeArray } from "./lib/arrays.js";
import { CATEGORICAL, sequentialScale, divergingScale, legend, formatNumber, css } from "./lib/colors.js";
import { createTokenRow } from "./lib/tokens.js";
import { sparkline } from "./lib/sparkline.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput } = tokenTraits(model);
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
    scales.push(lo < 0 ? divergingScale(Math.max(-lo, hi)) : sequentialScale(0, hi > 0 ? hi : 1));
  }
  const swatch = (c) => CATEGORICAL[c % CATEGORICAL.length];

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
    const sp = sparkline(rowData(c), { width: Math.min(600, Math.max(120, T * 3)), height: 26, label: `${labels[c]} over ${T} tokens`, color: css(swatch(c)) });
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
    label: "tokens",
    onHover(i, span, how, ev) {
      const c = current();
      sparks.forEach((s, k) => s.mark(k === c ? i : -1));
      if (i < 0) return tooltip.hide();
      const lines = [{ label: `token ${i}`, token: tokens[i] }];
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
    rows.forEach((r, k) => {
      r.classList.toggle("ew-active", k === c);
      r.classList.toggle("ew-selected", k === pinned());
      if (k === pinned()) r.setAttribute("aria-selected", "true");
      else r.removeAttribute("aria-selected");
    });
    if (c >= 0) {
      const sc = scales[c];
      for (let i = 0; i < tokens.length; i++) tokenRow.setColor(i, i < T ? sc(val(c, i)) : null);
      ctx.setLegend(legend(sc, { label: labels[c] }));
    } else {
      // dominant factor per token, in the factor's categorical colour
      for (let i = 0; i < tokens.length; i++) {
        let best = -1;
        let bv = 0;
        for (let k = 0; k < C; k++) {
          const v = val(k, i);
          if (v > bv) {
            bv = v;
            best = k;
          }
        }
        tokenRow.setColor(i, best >= 0 && i < T ? swatch(best) : null);
      }
      ctx.setLegend(C ? legend(null, { label: "dominant factor", categories: labels.map((l, k) => ({ label: l, rgb: swatch(k) })) }) : null);
    }
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
    const svg = sparks[c].el;
    const rect = svg.getBoundingClientRect();
    const i = sparks[c].indexAt(ev.clientX - rect.left);
    sparks[c].mark(i);
    if (ev.clientX >= rect.left && ev.clientX <= rect.right && i < tokens.length) {
      tooltip.show([labels[c], { label: `token ${i}`, token: tokens[i] }, ["value", formatNumber(val(c, i))]], ev);
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

export function render({ model, el }) {
  return mountView(model, el, {
    name: "factor_explorer",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "factors", "factor_labels"],
    localTraits: ["selected_factor"],
    build,
  });
}

export default { render };
