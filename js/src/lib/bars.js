// A small SVG bar chart (one bar per entry) with a y axis, x labels, hover / arrow-key tooltips. Text through
// textContent only. Used by the batch summary; any view with a 1-D series can use it.
const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

/** The y axis top: the max of values (at least `min`), rounded up to 1, 2 or 5 x 10^k. niceMax(0.37) -> 0.5. */
export function niceMax(max, min = 0) {
  const m = Math.max(max, min);
  if (!(m > 0) || !isFinite(m)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  for (const f of [1, 2, 5, 10]) if (m <= f * p * (1 + 1e-9)) return f * p;
  return 10 * p;
}

/**
 * barChart(values, {name, labels, title, yLabel, format, color, yMax, onHover, tooltipRows}) -> {el, bars, select(i)}.
 * values: array of numbers (NaN drawn as no bar); labels[i]: the x label of bar i (every few shown).
 * tooltipRows(i): the tooltip's rows for bar i. Each chart is one tab stop; Left/Right/Home/End move the focus
 * from bar to bar (the bars' transparent full-height hit areas, [data-index], take the pointer and the focus).
 */
export function barChart(values, opts) {
  const n = values.length;
  const every = Math.max(1, Math.ceil(n / 12)); // every few bars labelled
  // with every bar labelled, bars at least as wide as their longest label (~6 px a character at 10 px)
  const longest = every === 1 ? Math.max(0, ...opts.labels.slice(0, n).map((l) => String(l).length)) : 0;
  const barW = Math.max(4, Math.min(18, Math.floor(360 / Math.max(1, n))), Math.min(40, 6 * longest + 4));
  const h = opts.height || 110;
  const padL = 44;
  const padB = 30;
  const w = padL + n * barW + 8;
  let finite = values.filter((v) => Number.isFinite(v));
  const top = opts.yMax != null ? opts.yMax : niceMax(finite.length ? Math.max(...finite) : 0);
  const fmt = opts.format || ((v) => String(v));
  const wrap = document.createElement("div");
  wrap.className = "ew-chart";
  wrap.dataset.chart = opts.name;
  const heading = document.createElement("div");
  heading.className = "ew-chart-title";
  heading.textContent = opts.title;
  wrap.appendChild(heading);
  const svg = svgEl("svg", { width: w, height: h + padB, viewBox: `0 0 ${w} ${h + padB}`, role: "img" });
  svg.setAttribute("aria-label", opts.title);
  svg.classList.add("ew-chart-svg");
  svg.appendChild(svgEl("line", { x1: padL, y1: 4, x2: padL, y2: h, class: "ew-chart-axis" }));
  svg.appendChild(svgEl("line", { x1: padL, y1: h, x2: w - 4, y2: h, class: "ew-chart-axis" }));
  for (const v of [0, top / 2, top]) {
    const y = h - ((h - 4) * v) / top;
    const t = svgEl("text", { x: padL - 4, y: y + 3, "text-anchor": "end", class: "ew-chart-tick" });
    t.textContent = fmt(v);
    svg.appendChild(t);
  }
  if (opts.yLabel) {
    const t = svgEl("text", { x: 4, y: 10, class: "ew-chart-tick" });
    t.textContent = opts.yLabel;
    svg.appendChild(t);
  }
  const bars = [];
  const hits = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const bh = Number.isFinite(v) ? Math.max(v > 0 ? 1 : 0, ((h - 4) * Math.min(v, top)) / top) : 0;
    const x = padL + i * barW + 1;
    const rect = svgEl("rect", { x, y: h - bh, width: barW - 2, height: bh, class: "ew-chart-bar" });
    rect.style.fill = opts.color || "var(--ew-accent, #0072b2)";
    rect.dataset.bar = String(i);
    svg.appendChild(rect);
    bars.push(rect);
    // a transparent full-height hit area, so tiny bars are easy to hover
    const hit = svgEl("rect", { x: x - 1, y: 4, width: barW, height: h - 4, fill: "transparent", class: "ew-chart-hit" });
    hit.dataset.index = String(i);
    hit.setAttribute("tabindex", i === 0 ? "0" : "-1"); // one tab stop a chart; arrows move it (roving tabindex)
    hit.setAttribute("aria-label", `${opts.labels[i]}: ${Number.isFinite(v) ? fmt(v) : "none"}`);
    hits.push(hit);
    svg.appendChild(hit);
    if ((i % every === 0 && n - 1 - i >= every) || i === n - 1) { // (none so close to the last that they overlap)
      const t = svgEl("text", { x: x + (barW - 2) / 2, y: h + 12, "text-anchor": "middle", class: "ew-chart-tick" });
      t.textContent = opts.labels[i];
      svg.appendChild(t);
    }
  }
  if (opts.xLabel) {
    const t = svgEl("text", { x: padL + (n * barW) / 2, y: h + 26, "text-anchor": "middle", class: "ew-chart-tick" });
    t.textContent = opts.xLabel;
    svg.appendChild(t);
  }
  wrap.appendChild(svg);
  let current = -1;
  const select = (i, how, ev) => {
    if (current >= 0) bars[current].classList.remove("ew-active");
    current = i;
    if (i < 0) return opts.onHover && opts.onHover(-1);
    bars[i].classList.add("ew-active");
    if (opts.onHover) opts.onHover(i, how === "focus" ? bars[i] : ev, opts.tooltipRows(i));
  };
  svg.addEventListener("mousemove", (ev) => {
    const i = ev.target && ev.target.dataset ? Number(ev.target.dataset.index) : NaN;
    if (Number.isInteger(i) && i !== current) select(i, "mouse", ev);
  });
  svg.addEventListener("mouseleave", () => select(-1));
  svg.addEventListener("focusin", (ev) => {
    const i = Number(ev.target.dataset.index);
    if (Number.isInteger(i)) select(i, "focus");
  });
  svg.addEventListener("focusout", (ev) => {
    if (!svg.contains(ev.relatedTarget)) select(-1);
  });
  svg.addEventListener("keydown", (ev) => {
    const moves = { ArrowRight: 1, ArrowLeft: -1 };
    let next = null;
    if (ev.key in moves) next = Math.min(n - 1, Math.max(0, (current < 0 ? 0 : current + moves[ev.key])));
    else if (ev.key === "Home") next = 0;
    else if (ev.key === "End") next = n - 1;
    if (next == null || !n) return;
    ev.preventDefault();
    hits.forEach((h, k) => h.setAttribute("tabindex", k === next ? "0" : "-1"));
    hits[next].focus();
    select(next, "focus");
  });
  return { el: wrap, bars, select };
}
