// Per-row charts aligned with a grid's rows (one row per layer): signed stacked bars (e.g. attention vs MLP, each
// part to the right of 0 when positive, to the left when negative) and a vertical curve through the row boundaries
// (a value before the first row and after each row). Inline SVG, text through textContent only.
const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

/**
 * Where each part of a signed stack goes: positives stack right from 0, negatives left, in the order given.
 * Example: stackSpans([2, -1, 1]) -> [[0, 2], [-1, 0], [2, 3]].
 */
export function stackSpans(parts) {
  let pos = 0;
  let neg = 0;
  return parts.map((v) => {
    if (!(v === v)) return [0, 0];
    if (v >= 0) return [pos, (pos += v)];
    return [(neg += v), neg - v];
  });
}

/** The largest reach of any row's stack on either side of 0 (1 when all are 0). */
export function stackReach(rows) {
  let m = 0;
  for (const parts of rows) {
    const spans = stackSpans(parts);
    for (const [a, b] of spans) m = Math.max(m, Math.abs(a), Math.abs(b));
  }
  return m > 0 ? m : 1;
}

/**
 * layerBars(rows, {rowH, width, colors, names, className}) -> {el, setActive(i)}: one signed stacked bar per row
 * (rows[i] = [part values]), centred on a 0 line; row i's parts are `rect[data-layer=i][data-part=k]`. Hit areas `rect.ew-la-hit[data-layer]` take the pointer (the caller listens on el).
 */
export function layerBars(rows, opts) {
  const rowH = opts.rowH;
  const w = opts.width || 120;
  const h = rows.length * rowH;
  const m = stackReach(rows);
  const x = (v) => w / 2 + ((w / 2 - 4) * v) / m;
  const svg = svgEl("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img" });
  svg.setAttribute("class", `ew-la-chart ${opts.className || ""}`.trim());
  svg.setAttribute("aria-label", opts.label || "");
  // (rects only, no <g>: a view creates a fixed set of element kinds, see js/test/hostile.test.js)
  const hits = rows.map((parts, i) => {
    const hit = svgEl("rect", { x: 0, y: i * rowH, width: w, height: rowH, class: "ew-la-hit" });
    hit.style.fill = "transparent";
    hit.dataset.layer = String(i);
    svg.appendChild(hit);
    stackSpans(parts).forEach(([a, b], k) => {
      const r = svgEl("rect", { x: x(a), y: i * rowH + 3, width: Math.max(0, x(b) - x(a)), height: rowH - 6 });
      r.style.fill = opts.colors[k];
      r.style.pointerEvents = "none";
      r.dataset.layer = String(i);
      r.dataset.part = String(k);
      svg.appendChild(r);
    });
    return hit;
  });
  const zero = svgEl("line", { x1: w / 2, x2: w / 2, y1: 0, y2: h, stroke: "currentColor", "stroke-opacity": 0.5 });
  svg.appendChild(zero);
  let active = -1;
  return {
    el: svg,
    reach: m,
    setActive(i) {
      if (active >= 0 && hits[active]) hits[active].style.fill = "transparent";
      active = i;
      if (i >= 0 && hits[i]) hits[i].style.fill = "var(--ew-bg2)";
    },
  };
}

/**
 * layerCurve(values, {rowH, width, color, label}) -> {el, domain, zeroX, setActive(i)}: values[0] at the top edge,
 * values[i] at the bottom edge of row i - 1 (a value read before the first row and after each row); x from min(0, lo)
 * to max(0, hi), a dashed 0 line at x = zeroX (px from the left, for a "0" label under it). setActive(i) marks the
 * point after row i.
 */
export function layerCurve(values, opts) {
  const rowH = opts.rowH;
  const w = opts.width || 110;
  const n = values.length;
  const h = Math.max(1, (n - 1) * rowH);
  let lo = 0;
  let hi = 0;
  for (const v of values) if (v === v) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (hi === lo) hi = lo + 1;
  const pad = 5;
  const x = (v) => pad + ((w - 2 * pad) * (v - lo)) / (hi - lo);
  const svg = svgEl("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img" });
  svg.setAttribute("class", "ew-la-chart ew-la-curve");
  svg.style.overflow = "visible"; // (the end points sit on the top and bottom edges, aligned with the grid's rows)
  svg.setAttribute("aria-label", opts.label || "");
  svg.appendChild(svgEl("line", { x1: x(0), x2: x(0), y1: 0, y2: h, stroke: "currentColor", "stroke-opacity": 0.5,
    "stroke-dasharray": "3 3" }));
  const pts = values.map((v, i) => `${x(v === v ? v : 0).toFixed(1)},${(i * rowH).toFixed(1)}`).join(" ");
  const line = svgEl("polyline", { points: pts, fill: "none", "stroke-width": 2 });
  line.style.stroke = opts.color;
  svg.appendChild(line);
  const dot = (c, v, i, r) => {
    for (const [k, val] of Object.entries({ x: x(v === v ? v : 0) - r, y: i * rowH - r, width: 2 * r, height: 2 * r })) c.setAttribute(k, val.toFixed(1));
  };
  const dots = values.map((v, i) => {
    const c = svgEl("rect", {});
    dot(c, v, i, 2.5);
    c.style.fill = opts.color;
    c.dataset.point = String(i);
    svg.appendChild(c);
    return c;
  });
  let active = -1;
  return {
    el: svg,
    domain: [lo, hi],
    zeroX: x(0),
    setActive(i) {
      if (active >= 0 && dots[active]) dot(dots[active], values[active], active, 2.5);
      active = i;
      if (i >= 0 && dots[i]) dot(dots[i], values[i], i, 4.5);
    },
  };
}
