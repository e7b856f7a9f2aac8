// SVG sparkline from a numeric array.
const SVG = "http://www.w3.org/2000/svg";

/** Polyline points for values in a w x h box (pad px inside). Returns a string. */
export function sparkPoints(values, w, h, pad = 2) {
  const n = values.length;
  if (!n) return "";
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  const pts = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = n === 1 ? w / 2 : pad + ((w - 2 * pad) * i) / (n - 1);
    const y = h - pad - ((h - 2 * pad) * (values[i] - lo)) / span;
    pts[i] = `${x.toFixed(1)},${y.toFixed(1)}`;
  }
  return pts.join(" ");
}

/**
 * Build a sparkline. opts: {width, height, label (aria), color}
 * Returns {el, mark(i|-1), indexAt(localX)}.
 */
export function sparkline(values, opts = {}) {
  const w = opts.width || 160;
  const h = opts.height || 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "ew-spark");
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  if (opts.label) svg.setAttribute("aria-label", opts.label);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", "ew-spark-line");
  line.setAttribute("points", sparkPoints(values, w, h));
  line.setAttribute("fill", "none");
  if (opts.color) line.setAttribute("stroke", opts.color);
  svg.appendChild(line);
  const marker = document.createElementNS(SVG, "line");
  marker.setAttribute("class", "ew-spark-mark");
  marker.setAttribute("y1", "0");
  marker.setAttribute("y2", String(h));
  marker.setAttribute("visibility", "hidden");
  svg.appendChild(marker);
  const n = values.length;
  const xOf = (i) => (n <= 1 ? w / 2 : 2 + ((w - 4) * i) / (n - 1));
  return {
    el: svg,
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
      const i = Math.round(((x - 2) / (w - 4)) * (n - 1));
      return Math.max(0, Math.min(n - 1, i));
    },
  };
}
