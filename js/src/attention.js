// AttentionView: hover / focus a query token to colour the keys by its attention; heads as small
// multiples (one canvas heatmap each). Click / Enter on a token selects it (selected_token).
// exclude_first (default on, a checkbox in the view): attention to the first token (the attention sink) is left out
// of every colour scale: its column is grey in the heatmaps, it is hatched in the token row, and the legend says so.
import { decodeArray } from "./lib/arrays.js";
import { viridis, strengthScale, legend, formatNumber } from "./lib/colors.js";
import { createTokenRow, piecesRow } from "./lib/tokens.js";
import { mountView, commit, get, tokenTraits, hint } from "./lib/model.js";

const MAX_RES = 256; // heatmap pixels per side (max-pooled above this)

const SET_ASIDE = [160, 160, 160]; // key 0 while it is set aside

/** Largest weight of head h, over keys from `first` on. */
export function headMaxOf(data, h, T, first = 0) {
  let m = 0;
  const o = h * T * T;
  for (let q = 0; q < T; q++) for (let k = first; k < T; k++) if (data[o + q * T + k] > m) m = data[o + q * T + k];
  return m;
}

/**
 * Max-pool a T x T attention matrix of head h into an R x R Uint8ClampedArray RGBA image, scaled by headMax (values
 * above it drawn at the top of the scale). skipFirst: key 0 is left out of the pooling; pixels that cover key 0
 * alone are grey. ramp(u): the colour of u = weight / headMax in [0, 1] (the view passes its theme's strength ramp).
 */
export function headImage(data, h, T, R, headMax, skipFirst = false, ramp = viridis) {
  const px = new Uint8ClampedArray(R * R * 4);
  const base = h * T * T;
  const m = headMax > 0 ? headMax : 1;
  for (let y = 0; y < R; y++) {
    const q0 = Math.floor((y * T) / R);
    const q1 = Math.max(q0 + 1, Math.floor(((y + 1) * T) / R));
    for (let x = 0; x < R; x++) {
      let k0 = Math.floor((x * T) / R);
      const k1 = Math.max(k0 + 1, Math.floor(((x + 1) * T) / R));
      const i = (y * R + x) * 4;
      if (skipFirst && k0 === 0) {
        k0 = 1;
        if (k1 <= 1) {
          px.set([...SET_ASIDE, 255], i);
          continue;
        }
      }
      let v = 0;
      for (let q = q0; q < q1; q++) {
        const o = base + q * T;
        for (let k = k0; k < k1; k++) if (data[o + k] > v) v = data[o + k];
      }
      const rgb = ramp(Math.min(1, v / m));
      px[i] = rgb[0];
      px[i + 1] = rgb[1];
      px[i + 2] = rgb[2];
      px[i + 3] = 255;
    }
  }
  return px;
}

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const { tokens, raw, nInput, marks: chat } = tokenTraits(model);
  const att = decodeArray(model.get("attention"), "attention");
  const ok = !att.empty && att.shape.length === 3 && att.shape[1] === att.shape[2];
  const H = ok ? att.shape[0] : 0;
  const T = ok ? att.shape[1] : 0;
  const given = get(model, "head_labels", []);
  const labels = Array.from({ length: H }, (_, i) => (given[i] != null ? String(given[i]) : `head ${i}`));
  const A = (h, q, k) => att.data[(h * T + q) * T + k];
  const tok = (i) => (tokens[i] != null ? String(tokens[i]) : "");
  let skip = Boolean(get(model, "exclude_first", true)) && T > 1;
  const headMax = new Float32Array(H);
  const setMax = () => {
    for (let h = 0; h < H; h++) headMax[h] = headMaxOf(att.data, h, T, skip ? 1 : 0);
  };
  setMax();

  let hoverQuery = -1;
  let activeHead = -1; // -1 = mean over heads
  const selected = () => {
    const s = Number(get(model, "selected_token", -1));
    return s >= 0 && s < T ? s : -1;
  };
  const query = () => (hoverQuery >= 0 ? hoverQuery : selected());
  const weight = (q, k) => {
    if (activeHead >= 0) return A(activeHead, q, k);
    let s = 0;
    for (let h = 0; h < H; h++) s += A(h, q, k);
    return H ? s / H : 0;
  };

  const row = createTokenRow({
    tokens,
    rawTokens: raw,
    nInput,
    marks: chat,
    label: "tokens; hover or focus a query token to see its attention",
    onHover(i, span, how, ev) {
      if (i < 0) {
        hoverQuery = -1;
        paint();
        return tooltip.hide();
      }
      const q = query();
      if (i < T) {
        hoverQuery = i;
        paint();
      }
      const lines = [{ label: `query ${i}`, token: tok(i) }, piecesRow(model, raw, i), ["heads", activeHead >= 0 ? labels[activeHead] : `mean of ${H}`]];
      const top = [];
      if (i < T) for (let k = 0; k < T; k++) top.push([k, weight(i, k)]);
      top.sort((x, y) => y[1] - x[1]);
      if (top.length) lines.push("attends most to");
      for (const [k, w] of top.slice(0, 3)) lines.push({ label: `${k}`, token: tok(k), value: formatNumber(w) });
      void q;
      tooltip.show(lines, how === "focus" ? span : ev);
    },
    onCommit(i) {
      if (i >= T) return;
      commit(model, "selected_token", selected() === i ? -1 : i);
    },
  });
  const scroll = document.createElement("div");
  scroll.className = "ew-scroll";
  scroll.appendChild(row.el);
  body.appendChild(scroll);
  if (!ok) {
    hint(body, "No attention to show.");
    return {};
  }

  // small multiples
  const R = Math.min(T, MAX_RES);
  const D = Math.max(64, Math.min(160, T * 8)); // CSS px per side
  const heads = document.createElement("div");
  heads.className = "ew-heads";
  heads.setAttribute("role", "listbox");
  heads.setAttribute("aria-label", "attention heads");
  const marks = [];
  const boxes = [];
  const redraws = [];
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "ew-toggle ew-exclude-first";
  toggle.textContent = `set the first token ${JSON.stringify(tok(0))} aside (attention sink)`;
  toggle.setAttribute("aria-pressed", String(skip));
  ctx.controls.appendChild(toggle);
  const setSkip = (on) => {
    skip = Boolean(on) && T > 1;
    toggle.setAttribute("aria-pressed", String(skip));
    setMax();
    redraws.forEach((d) => d());
    boxes.forEach((b, h) => b.setAttribute("aria-label", `${labels[h]} (max ${formatNumber(headMax[h])}${skip ? ", first token aside" : ""})`));
    paint();
  };
  toggle.addEventListener("click", () => {
    setSkip(!skip);
    commit(model, "exclude_first", skip);
  });
  for (let h = 0; h < H; h++) {
    const box = document.createElement("div");
    box.className = "ew-head";
    box.setAttribute("role", "option");
    box.tabIndex = h === 0 ? 0 : -1;
    box.dataset.index = String(h);
    box.setAttribute("aria-label", `${labels[h]} (max ${formatNumber(headMax[h])})`);
    const cap = document.createElement("span");
    cap.textContent = labels[h];
    const inner = document.createElement("div");
    inner.className = "ew-head-box";
    const cv = document.createElement("canvas");
    cv.width = R;
    cv.height = R;
    cv.style.width = `${D}px`;
    cv.style.height = `${D}px`;
    cv.setAttribute("aria-hidden", "true");
    const c2 = cv.getContext && cv.getContext("2d");
    const draw = () => {
      if (!(c2 && typeof c2.createImageData === "function")) return;
      const img = c2.createImageData(R, R);
      img.data.set(headImage(att.data, h, T, R, headMax[h], skip, strengthScale(0, 1, ctx.theme).ramp));
      c2.putImageData(img, 0, 0);
    };
    draw();
    redraws.push(draw);
    const mark = document.createElement("div");
    mark.className = "ew-head-mark";
    mark.hidden = true;
    inner.appendChild(cv);
    inner.appendChild(mark);
    box.appendChild(cap);
    box.appendChild(inner);
    heads.appendChild(box);
    marks.push(mark);
    boxes.push(box);
    cv.addEventListener("mousemove", (ev) => {
      const r = cv.getBoundingClientRect();
      const q = Math.min(T - 1, Math.max(0, Math.floor(((ev.clientY - r.top) / (r.height || D)) * T)));
      const k = Math.min(T - 1, Math.max(0, Math.floor(((ev.clientX - r.left) / (r.width || D)) * T)));
      hoverQuery = q;
      paint();
      tooltip.show([labels[h], { label: `query ${q}`, token: tok(q) }, { label: `key ${k}`, token: tok(k) }, ["weight", formatNumber(A(h, q, k))]], ev);
    });
    cv.addEventListener("mouseleave", () => {
      hoverQuery = -1;
      paint();
      tooltip.hide();
    });
  }
  const headOf = (t) => {
    while (t && t !== heads) {
      if (t.dataset && t.dataset.index !== undefined && t.parentNode === heads) return Number(t.dataset.index);
      t = t.parentNode;
    }
    return -1;
  };
  const toggleHead = (h) => {
    activeHead = activeHead === h ? -1 : h;
    paint();
  };
  heads.addEventListener("click", (ev) => {
    const h = headOf(ev.target);
    if (h >= 0) toggleHead(h);
  });
  heads.addEventListener("focusin", (ev) => {
    const h = headOf(ev.target);
    if (h < 0) return;
    boxes.forEach((b, i) => (b.tabIndex = i === h ? 0 : -1));
    const q = query();
    const lines = [labels[h], ["max weight", formatNumber(headMax[h])]];
    if (q >= 0) {
      let best = 0;
      for (let k = 1; k < T; k++) if (A(h, q, k) > A(h, q, best)) best = k;
      lines.push({ label: `query ${q} \u2192 key ${best}`, token: tok(best), value: formatNumber(A(h, q, best)) });
    }
    lines.push("Enter: colour tokens by this head");
    tooltip.show(lines, boxes[h]);
  });
  heads.addEventListener("focusout", (ev) => {
    if (!(ev.relatedTarget && heads.contains(ev.relatedTarget))) tooltip.hide();
  });
  heads.addEventListener("keydown", (ev) => {
    const h = headOf(ev.target);
    if (h < 0) return;
    let j = -1;
    if (ev.key === "ArrowRight" || ev.key === "ArrowDown") j = Math.min(H - 1, h + 1);
    else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") j = Math.max(0, h - 1);
    else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      toggleHead(h);
      return;
    } else return;
    ev.preventDefault();
    boxes[j].focus();
  });
  body.appendChild(heads);

  function paint() {
    const q = query();
    let m = 0;
    if (q >= 0) for (let k = skip ? 1 : 0; k < T; k++) m = Math.max(m, weight(q, k));
    const scale = strengthScale(0, m > 0 ? m : 1, ctx.theme);
    for (let i = 0; i < tokens.length; i++) {
      row.spans[i].classList.toggle("ew-active", i === q);
      row.spans[i].classList.toggle("ew-excluded", skip && i === 0);
      const wv = q >= 0 && i < T ? weight(q, i) : 0;
      // keys after the query with zero weight (causal mask) stay uncoloured; so does the sink while set aside
      row.setColor(i, q >= 0 && i < T && !(skip && i === 0) && (i <= q || wv > 0) ? scale(wv) : null);
    }
    boxes.forEach((b, h) => b.classList.toggle("ew-active", h === activeHead));
    marks.forEach((mk) => {
      mk.hidden = q < 0;
      if (q >= 0) mk.style.top = `${(((q + 0.5) / T) * D).toFixed(1)}px`;
    });
    const sel = selected();
    row.spans.forEach((s, i) => s.classList.toggle("ew-selected", i === sel));
    const lg = legend(q >= 0 ? scale : strengthScale(0, 1, ctx.theme), {
      label: q >= 0 ? `attention from token ${q} (${activeHead >= 0 ? labels[activeHead] : "mean over heads"})` : "attention weight (heatmaps: per-head max)",
      note: skip ? "first token set aside" : undefined,
    });
    if (skip) {
      const n = document.createElement("span");
      n.className = "ew-legend-note ew-sink-note";
      const share = q >= 0 ? ` (it takes ${formatNumber(100 * weight(q, 0), 3)}% of token ${q}'s attention)` : "";
      n.textContent = `first token ${JSON.stringify(tok(0))} set aside: left out of the scales, grey in the heatmaps, hatched above${share}`;
      lg.appendChild(n);
    }
    ctx.setLegend(lg);
  }
  paint();
  return { onTrait: { selected_token: paint, exclude_first: () => setSkip(get(model, "exclude_first", true)) } };
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "attention",
    traits: ["tokens", "raw_tokens", "n_input_tokens", "attention", "head_labels"],
    localTraits: ["selected_token", "exclude_first"],
    build,
  });
}

export default { render };
