// SVG sparkline from a numeric array, in its own colour, with an optional y scale (the min and max labelled).
const SVG = "http://www.w3.org/2000/svg";

/** [lo, hi] of values (lo = hi = 0 when empty). Example: range([1, 3, 2]) -> [1, 3]. */
export function range(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  return values.length ? [lo, hi] : [0, 0];
}

/** Polyline points for values in a w x h box (pad px inside), y from `domain` ([lo, hi], default the values' range). */
export function sparkPoints(values, w, h, pad = 2, domain = null, x0 = 0) {
  const n = values.length;
  if (!n) return "";
  const [lo, hi] = domain || range(values);
  const span = hi - lo || 1;
  const pts = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = x0 + (n === 1 ? (w - x0) / 2 : pad + ((w - x0 - 2 * pad) * i) / (n - 1));
    const y = h - pad - ((h - 2 * pad) * (values[i] - lo)) / span;
    pts[i] = `${x.toFixed(1)},${y.toFixed(1)}`;
  }
  return pts.join(" ");
}

/** The y scale: the domain's top and bottom as text, stacked to the sparkline's height. */
function yLabels(domain, h, fmt) {
  const el = document.createElement("span");
  el.className = "ew-spark-y";
  el.style.height = `${h}px`;
  el.setAttribute("aria-hidden", "true");
  for (const v of [domain[1], domain[0]]) {
    const s = document.createElement("span");
    s.textContent = fmt(v);
    el.appendChild(s);
  }
  return el;
}

/**
 * Build a sparkline. opts: {width, height, label (aria), color, domain ([lo, hi]), yAxis (a function formatting
 * the domain's ends: el is then a span holding them, stacked, left of the svg, which has a y axis line)}.
 * Returns {el, svg, line, mark(i|-1), indexAt(x from the svg's left)}. Example: sparkline([0, 2, 1], {color: "#d55e00", yAxis: String}).
 */
export function sparkline(values, opts = {}) {
  const w = opts.width || 160;
  const h = opts.height || 28;
  const domain = opts.domain || range(values);
  const x0 = opts.yAxis ? 2 : 0; // room for the y axis line
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "ew-spark");
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  if (opts.label) svg.setAttribute("aria-label", opts.label);
  if (opts.yAxis) {
    const axis = document.createElementNS(SVG, "line");
    axis.setAttribute("class", "ew-spark-axis");
    axis.setAttribute("x1", String(x0));
    axis.setAttribute("x2", String(x0));
    axis.setAttribute("y1", "2");
    axis.setAttribute("y2", String(h - 2));
    axis.setAttribute("stroke", "currentColor");
    axis.setAttribute("stroke-opacity", "0.4");
    svg.appendChild(axis);
  }
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", "ew-spark-line");
  line.setAttribute("points", sparkPoints(values, w, h, 2, domain, x0));
  line.setAttribute("fill", "none");
  // inline style: the stylesheet's default stroke would override a presentation attribute
  if (opts.color) line.style.stroke = opts.color;
  svg.appendChild(line);
  const marker = document.createElementNS(SVG, "line");
  marker.setAttribute("class", "ew-spark-mark");
  marker.setAttribute("y1", "0");
  marker.setAttribute("y2", String(h));
  marker.setAttribute("visibility", "hidden");
  svg.appendChild(marker);
  const n = values.length;
  const inner = w - x0 - 4;
  const xOf = (i) => (n <= 1 ? x0 + (w - x0) / 2 : x0 + 2 + (inner * i) / (n - 1));
  let el = svg;
  if (opts.yAxis) {
    el = document.createElement("span");
    el.className = "ew-spark-wrap";
    el.appendChild(yLabels(domain, h, opts.yAxis));
    el.appendChild(svg);
  }
  return {
    el,
    svg,
    line,
    mark(i) {
      if (i == null || i < 0 || i >= n) {
        marker.setAttribute("visibility", "hidden");
        return;
      }
      const x = xOf(i).toFixed(1);
      marker.setAttribute("x1", x);
      marker.setAttribute("x2", x);
      marker.setAttribute("visibility", "visible");
    },
    indexAt(x) {
      if (n <= 1) return 0;
      const i = Math.round(((x - x0 - 2) / inner) * (n - 1));
      return Math.max(0, Math.min(n - 1, i));
    },
  };
}
