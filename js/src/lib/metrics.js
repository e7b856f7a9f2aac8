// The logit-lens metrics a rank grid can be coloured by, shared by RankGrid and LensComparison.
//   rank     ranks          int    1 = top; log scale (rankScale), rank 1 darkest
//   prob     target_probs   float  p(next token) in [0, 1]; linear, high probability darkest
//   kl       kl_to_final    float  KL(p_final || p_layer) in nats; 0 .. max over the grid, 0 darkest
//   entropy  entropy        float  entropy of the layer's prediction in nats; 0 .. max, 0 darkest
// Dark means "confident / agrees with the final layer" for every metric.
import { decodeArray } from "./arrays.js";
import { rankScale, viridis, cividis, legend, formatRank, formatNumber, formatCompact, themeRamp, strongWord, formatPercent } from "./colors.js";

export const METRICS = Object.freeze(["rank", "prob", "kl", "entropy"]);

export const METRIC_INFO = Object.freeze({
  rank: { trait: "ranks", button: "rank", key: "rank", legend: "rank of the next token" },
  prob: { trait: "target_probs", button: "p(next)", key: "p(target)", legend: "probability of the next token" },
  kl: { trait: "kl_to_final", button: "KL to final", key: "KL to final", legend: "KL(p_final \u2016 p_layer), nats" },
  entropy: { trait: "entropy", button: "entropy", key: "entropy", legend: "entropy of the layer's prediction, nats" },
});

/**
 * The metric arrays of a model whose shape equals `shape` (an array of the wrong shape or an empty one is
 * absent). Returns {rank?, prob?, kl?, entropy?}: decoded arrays ({data, shape}).
 */
export function readMetrics(model, shape) {
  const out = {};
  for (const m of METRICS) {
    const a = decodeArray(model.get(METRIC_INFO[m].trait), METRIC_INFO[m].trait);
    if (!a.empty && a.shape.length === shape.length && a.shape.every((d, i) => d === shape[i])) out[m] = a;
  }
  return out;
}

/** The metrics present in `arrays`, in METRICS order. */
export const availableMetrics = (arrays) => METRICS.filter((m) => arrays[m]);

/** The model's `metric` if it has data, else the first available metric. */
export function pickMetric(value, available) {
  return available.includes(value) ? value : available[0] || "rank";
}

function maxOf(data) {
  let hi = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > hi) hi = data[i];
  return hi;
}

/**
 * The colour scale of a metric over `data` (every value the scale must cover, e.g. all lenses). `theme`
 * ("light" | "dark"): the strong end (rank 1, p = 1, KL / entropy 0) is the darkest colour on a light
 * background and the brightest on a dark one (themeRamp), so it never merges into the background.
 */
export function metricScale(metric, data, theme = "light") {
  if (metric === "rank") return rankScale(Math.max(2, maxOf(data)), theme);
  let f;
  if (metric === "prob") {
    const ramp = themeRamp(viridis, theme);
    f = (v) => ramp(1 - v);
    f.kind = "prob";
    f.domain = [0, 1];
    f.ramp = (t) => ramp(1 - t);
  } else {
    const hi = maxOf(data);
    const top = hi > 0 ? hi : 1;
    const ramp = themeRamp(cividis, theme);
    f = (v) => ramp(v / top);
    f.kind = "sequential";
    f.domain = [0, top];
    f.ramp = ramp;
  }
  f.theme = theme === "dark" ? "dark" : "light";
  return f;
}

const NOTES = { rank: "log scale, rank 1 %s", prob: "linear, high probability %s", kl: "linear, 0 %s", entropy: "linear, 0 %s" };

/** The legend element of a metric's scale (data-metric names the metric). */
export function metricLegend(metric, scale) {
  const format = metric === "rank" ? (v) => String(Math.round(v)) : metric === "prob" ? (v) => `${Math.round(v * 100)}%` : (v) => formatNumber(v, 3);
  const el = legend(scale, { label: METRIC_INFO[metric].legend, format, note: NOTES[metric].replace("%s", strongWord(scale.theme)) });
  el.dataset.metric = metric;
  return el;
}

/** A value as cell text (short). */
export function cellText(metric, v) {
  if (metric === "rank") return formatRank(v);
  if (metric === "prob") return `${formatCompact(v * 100, 4, 2)}%`;
  return formatCompact(v, 4, 2);
}

/** A value for tooltips and aria-labels (full). */
export function valueText(metric, v) {
  if (metric === "rank") return String(v);
  if (metric === "prob") return formatPercent(v);
  return `${formatNumber(v, 3)} nats`;
}

/** Tooltip rows [key, value] of every available metric at flat index i, the current one first. */
export function metricRows(arrays, i, current) {
  const order = [current, ...METRICS.filter((m) => m !== current)];
  return order.filter((m) => arrays[m]).map((m) => [METRIC_INFO[m].key, valueText(m, arrays[m].data[i])]);
}

const TABLE_HEAD = { rank: "rank", prob: "p(target)", kl: "KL (nats)", entropy: "entropy (nats)" };

/**
 * A small table for a tooltip (a Node built with textContent only): one row per name (e.g. per lens), one
 * column per metric, the current metric first and marked (.ew-tt-cur). valueAt(metric, row) -> number.
 */
export function metricTable(names, metrics, current, valueAt) {
  const order = [current, ...metrics.filter((m) => m !== current)].filter((m) => metrics.includes(m));
  const t = document.createElement("div");
  t.className = "ew-tt-table";
  t.style.gridTemplateColumns = `minmax(0, max-content) repeat(${order.length}, max-content)`;
  const put = (text, cls) => {
    const c = document.createElement("span");
    c.className = cls;
    c.textContent = text;
    t.appendChild(c);
  };
  put("lens", "ew-tt-key");
  for (const m of order) put(TABLE_HEAD[m], `ew-tt-key${m === current ? " ew-tt-cur" : ""}`);
  names.forEach((name, row) => {
    put(name, "ew-tt-name");
    for (const m of order) {
      const v = valueAt(m, row);
      put(m === "rank" ? String(v) : m === "prob" ? formatPercent(v) : formatNumber(v, 3), `ew-tt-val${m === current ? " ew-tt-cur" : ""}`);
    }
  });
  return t;
}

/**
 * A segmented button group choosing the metric: one tab stop (the pressed button), arrow keys move between
 * buttons, Enter / Space / click choose. `onSelect(metric)` is called on a choice; `set(metric)` shows one.
 */
export function metricSwitcher(metrics, current, onSelect) {
  const el = document.createElement("div");
  el.className = "ew-seg";
  el.setAttribute("role", "group");
  el.setAttribute("aria-label", "colour the cells by");
  const caption = document.createElement("span");
  caption.className = "ew-seg-caption";
  caption.setAttribute("aria-hidden", "true");
  caption.textContent = "colour by";
  el.appendChild(caption);
  const buttons = metrics.map((m) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ew-seg-btn";
    b.dataset.metric = m;
    b.textContent = METRIC_INFO[m].button;
    b.title = METRIC_INFO[m].legend;
    b.addEventListener("click", () => onSelect(m));
    el.appendChild(b);
    return b;
  });
  el.addEventListener("keydown", (ev) => {
    const i = buttons.indexOf(ev.target);
    if (i < 0) return;
    const n = buttons.length;
    const j = { ArrowRight: (i + 1) % n, ArrowDown: (i + 1) % n, ArrowLeft: (i + n - 1) % n, ArrowUp: (i + n - 1) % n, Home: 0, End: n - 1 }[ev.key];
    if (j == null) return;
    ev.preventDefault();
    buttons[i].tabIndex = -1;
    buttons[j].tabIndex = 0;
    buttons[j].focus();
  });
  const set = (metric) => {
    for (const b of buttons) {
      const on = b.dataset.metric === metric;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("ew-pressed", on);
      b.tabIndex = on ? 0 : -1;
    }
  };
  set(current);
  return { el, buttons, set };
}
