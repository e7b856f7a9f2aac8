// Colour scales. All scales take a number and return [r, g, b] (0..255).
// Viridis / cividis are perceptually uniform and colour-blind safe; the diverging
// scale is blue - neutral grey-white - orange (safe for the common CVD types).

const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];

// matplotlib viridis sampled at 0, 0.1, ..., 1
export const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"].map(hex);
// matplotlib cividis sampled at 0, 1/9, ..., 1
export const CIVIDIS = ["#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8779", "#a69d75", "#c4b56c", "#e4cf5b", "#fee838"].map(hex);
// matplotlib inferno sampled at 0, 0.1, ..., 1 (0 near-black, 1 pale yellow)
export const INFERNO = ["#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4"].map(hex);
// blue (negative) -> neutral -> orange (positive)
export const DIVERGING = ["#2166ac", "#4393c3", "#92c5de", "#f7f7f7", "#fdb863", "#e08214", "#b35806"].map(hex);
// the same on a dark background: the neutral centre near the background, the extremes bright (WCAG contrast >= 9
// against #1b1d21, where DIVERGING's ends are 2.9 and 3.5 and its white centre glares at 15.8)
export const DIVERGING_DARK = ["#92c5de", "#4393c3", "#2a4d69", "#34373d", "#7a4b12", "#e08214", "#fdb863"].map(hex);
export const NEUTRAL = DIVERGING[3];
// Okabe-Ito qualitative palette (colour-blind safe), without black.
export const CATEGORICAL = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#999999"].map(hex);

const clamp01 = (t) => (t > 1 ? 1 : t < 0 ? 0 : t);

function interp(stops, t) {
  if (!(t === t)) t = 0; // NaN -> 0
  t = clamp01(t);
  const x = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** Viridis at t in [0, 1] (0 = dark purple, 1 = yellow). */
export const viridis = (t) => interp(VIRIDIS, t);
/** Inferno at t in [0, 1] (0 = near-black, 1 = pale yellow). */
export const inferno = (t) => interp(INFERNO, t);
/** Cividis at t in [0, 1] (0 = dark blue, 1 = yellow). */
export const cividis = (t) => interp(CIVIDIS, t);
/** Diverging at t in [-1, 1]; 0 is the neutral centre. */
export const diverging = (t) => interp(DIVERGING, (clamp01((t + 1) / 2)));
/** Diverging for a dark background at t in [-1, 1]. */
export const divergingDark = (t) => interp(DIVERGING_DARK, (clamp01((t + 1) / 2)));

/** A sequential scale mapping [min, max] -> viridis. */
export function sequentialScale(min, max, ramp = viridis) {
  const span = max - min || 1;
  const f = (v) => ramp((v - min) / span);
  f.kind = "sequential";
  f.domain = [min, max];
  f.ramp = ramp;
  return f;
}

/**
 * A diverging scale centred on 0, symmetric with limit max|v|; on a dark theme its centre is near the background and
 * its ends are bright (DIVERGING_DARK), so that the extremes stand out on both.
 * @example divergingScale(2, "dark")(-2) // [146, 197, 222]
 */
export function divergingScale(maxAbs, theme = "light") {
  const m = maxAbs > 0 ? maxAbs : 1;
  const ramp = theme === "dark" ? divergingDark : diverging;
  const f = (v) => ramp(v / m);
  f.kind = "diverging";
  f.domain = [-m, m];
  f.ramp = ramp;
  f.theme = theme === "dark" ? "dark" : "light";
  return f;
}

/**
 * A ramp for a theme, t = 0 the strong end (rank 1, p = 1, KL 0): on a light background the ramp as it is
 * (`ramp(0)` dark, far from white); on a dark background reversed (`ramp(1)`, the bright end) and stopped at
 * `ramp(DARK_WEAK_END)`, so that neither extreme is the background colour (ramp(0) is near-black).
 */
export const DARK_WEAK_END = 0.22;
export function themeRamp(ramp, theme = "light") {
  if (theme !== "dark") return ramp;
  return (t) => ramp(1 - (1 - DARK_WEAK_END) * clamp01(t === t ? t : 0));
}

/** How the strong end of a themed scale looks, for legends: "darkest" (light theme) or "brightest" (dark). */
export const strongWord = (theme) => (theme === "dark" ? "brightest" : "darkest");

/**
 * A scale of magnitudes (attention weights, attributions >= 0) whose largest value is the strong end of the theme
 * and whose smallest recedes into the background (most weights and attributions are small): inferno, from its pale
 * yellow end (0) to dark purple (the largest) on a light background, from dark purple to pale yellow on a dark one.
 * @example strengthScale(0, 1, "light")(1) // [27, 12, 65]: the largest value darkest
 */
export function strengthScale(min, max, theme = "light") {
  const span = max - min || 1;
  const dark = theme === "dark";
  // u = 0 the smallest value, 1 the largest; inferno(0.1), not its near-black end, is the dark extreme
  const ramp = (u) => {
    const x = clamp01(u === u ? u : 0);
    return inferno(dark ? 0.1 + 0.9 * x : 1 - 0.9 * x);
  };
  const f = (v) => ramp((v - min) / span);
  f.kind = "sequential";
  f.domain = [min, max];
  f.ramp = ramp;
  f.theme = theme === "dark" ? "dark" : "light";
  f.strongHigh = true;
  return f;
}

/**
 * The scale of one row of attributions: diverging (centred on 0) when any value in [lo, hi] is negative, else a
 * strength scale from 0 to hi; both keep their extremes visible on the theme's background.
 */
export function attributionScale(lo, hi, theme = "light") {
  return lo < 0 ? divergingScale(Math.max(-lo, hi), theme) : strengthScale(0, hi > 0 ? hi : 1, theme);
}

/** Log-rank scale: rank 1 is the darkest colour (light theme) or the brightest (dark theme), maxRank the other end. */
export function rankScale(maxRank, theme = "light") {
  const top = Math.max(2, maxRank | 0);
  const lt = Math.log(top);
  const ramp = themeRamp(viridis, theme);
  const f = (rank) => {
    if (!(rank >= 1)) return [128, 128, 128];
    return ramp(Math.log(rank) / lt);
  };
  f.kind = "rank";
  f.domain = [1, top];
  f.ramp = ramp;
  f.theme = theme === "dark" ? "dark" : "light";
  return f;
}

/** Pick a diverging scale if any value is negative, else a sequential one over [0|min, max]. */
export function autoScale(data) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return sequentialScale(0, 1);
  if (lo < 0) return divergingScale(Math.max(-lo, hi));
  return sequentialScale(Math.min(0, lo), hi > 0 ? hi : 1);
}

export const css = (rgb) => `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;

/** WCAG relative luminance of an sRGB colour (0..1). */
export function luminance(rgb) {
  const lin = (c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
}

/** Black or white text, whichever contrasts more with the background. */
export function textColorFor(rgb) {
  const L = luminance(rgb);
  const withWhite = 1.05 / (L + 0.05);
  const withBlack = (L + 0.05) / 0.05;
  return withBlack >= withWhite ? "#000000" : "#ffffff";
}

/** WCAG contrast ratio of two colours ([r, g, b]), from 1 (the same) to 21 (black on white). */
export function contrastRatio(a, b) {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** The views' background per theme (styles.js --ew-bg). */
export const THEME_BG = Object.freeze({ light: [255, 255, 255], dark: [27, 29, 33] });

/**
 * The colour of a cell that has no value, per theme: styles.js --ew-border (muted, set apart from a diverging scale's
 * centre, not glaring on a dark background). DOM cells also carry the class ew-nocell (hatched with --ew-border on
 * --ew-bg); a legend swatch of that class explains it.
 */
export const NO_VALUE = Object.freeze({ light: [208, 215, 222], dark: [68, 75, 85] });
export const noValueColor = (theme) => (theme === "dark" ? NO_VALUE.dark : NO_VALUE.light).slice();

/**
 * `rgb` darkened (on a light background) or lightened (on a dark one) just enough for a contrast of at least `min`
 * against `bg` (WCAG 1.4.11: 3 for lines, marks and swatches), its hue kept. A colour that already contrasts enough
 * is returned as it is. Example: onBackground([240, 228, 66], [255, 255, 255]) -> a dark yellow (Okabe-Ito's yellow
 * is 1.2 : 1 on white).
 */
export function onBackground(rgb, bg = THEME_BG.light, min = 3) {
  if (contrastRatio(rgb, bg) >= min) return rgb.slice();
  const target = luminance(bg) > 0.18 ? [0, 0, 0] : [255, 255, 255];
  let lo = 0;
  let hi = 1; // the share of `target` mixed in
  const mix = (t) => rgb.map((v, i) => Math.round(v + (target[i] - v) * t));
  for (let k = 0; k < 20; k++) {
    const m = (lo + hi) / 2;
    if (contrastRatio(mix(m), bg) >= min) hi = m;
    else lo = m;
  }
  return mix(hi);
}

/** Factor c's colour on a theme's background: the Okabe-Ito colour, made to contrast >= 3 : 1 with the background. */
export function factorColor(c, theme = "light") {
  return onBackground(CATEGORICAL[((c % CATEGORICAL.length) + CATEGORICAL.length) % CATEGORICAL.length], theme === "dark" ? THEME_BG.dark : THEME_BG.light);
}

/**
 * A probability in [0, 1] as a percentage of `digits` significant digits; one under 0.01 % reads "<0.01%" (not
 * "7.92e-11%"), and one that rounds to 100 % without being 1 reads ">99.99%". The exact value belongs in data-value.
 * Examples: formatPercent(0.3512) -> "35.1%", formatPercent(7.92e-13) -> "<0.01%", formatPercent(0) -> "0%".
 */
export function formatPercent(p, digits = 3) {
  if (typeof p !== "number" || !Number.isFinite(p)) return String(p);
  if (p === 0) return "0%";
  const v = p * 100;
  if (Math.abs(v) < 0.01) return v > 0 ? "<0.01%" : ">-0.01%";
  if (p < 1 && v > 99.99) return ">99.99%";
  return `${formatNumber(v, digits)}%`;
}

/** Compact number formatting for cells and tooltips. */
export function formatNumber(v, digits = 3) {
  if (typeof v !== "number" || !Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e6) return String(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}

const dropLeadingZero = (str) => str.replace(/^(-?)0\./, "$1.");

/**
 * A value for a small heatmap cell: at most `maxChars` characters where possible, `digits` significant
 * digits or fewer (0.1666 -> "0.17", 0.0045 -> ".0045", -0.0045 -> "-.004", 12345.6 -> "12k",
 * 0.00012 -> "1e-4"). The full value belongs in the tooltip / aria-label; cells also clip with an
 * ellipsis (CSS) should a value still be too wide.
 */
export function formatCompact(v, maxChars = 5, digits = 2) {
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "\u221e" : "-\u221e";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && String(v).length <= maxChars) return String(v);
  const fits = (str) => !str.includes("e") && str.length <= maxChars;
  if (a >= 1e-3 && a < 1000) {
    for (let d = digits; d >= 1; d--) {
      const str = String(Number(v.toPrecision(d))); // "1.0e+2" -> "100"
      if (fits(str)) return str;
      const short = dropLeadingZero(str);
      if (fits(short)) return short;
    }
  }
  for (const [suffix, base] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
    if (a < base * 0.9995 || a >= base * 1e3) continue; // 999,999 -> "1M", 950,000 -> "950k"
    for (let d = digits; d >= 1; d--) {
      const str = String(Number((v / base).toPrecision(d))) + suffix;
      if (fits(str)) return str;
    }
  }
  // very small or very large: "1e-4", "-5e-7", "2e15"
  return v.toExponential(0).replace("e+", "e");
}

/** Compact integer formatting for rank cells ("12345" -> "12k" if long). */
export function formatRank(r) {
  if (r < 100000) return String(r);
  return `${Math.round(r / 1000)}k`;
}

function gradientCss(ramp, lo, hi, n = 11) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    const t = lo + ((hi - lo) * i) / (n - 1);
    parts.push(`${css(ramp(t))} ${Math.round((i / (n - 1)) * 100)}%`);
  }
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

/**
 * Build a legend element for a scale made by this module.
 * opts: {label, format, note (aria-label detail, e.g. "linear, 0 darkest")}. For categorical legends pass
 * {categories: [{label, rgb}]}.
 */
export function legend(scale, opts = {}) {
  const el = document.createElement("div");
  el.className = "ew-legend";
  el.setAttribute("role", "img");
  const label = document.createElement("span");
  label.className = "ew-legend-label";
  label.textContent = opts.label || "";
  el.appendChild(label);
  if (opts.categories) {
    for (const c of opts.categories) {
      const item = document.createElement("span");
      item.className = "ew-legend-item";
      const sw = document.createElement("span");
      sw.className = "ew-legend-swatch";
      sw.style.background = css(c.rgb);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(c.label));
      el.appendChild(item);
    }
    el.setAttribute("aria-label", `${opts.label || "legend"}: ${opts.categories.map((c) => c.label).join(", ")}`);
    return el;
  }
  const fmt = opts.format || formatNumber;
  const [d0, d1] = scale.domain;
  const lo = document.createElement("span");
  lo.className = "ew-legend-min";
  const hi = document.createElement("span");
  hi.className = "ew-legend-max";
  const bar = document.createElement("span");
  bar.className = "ew-legend-bar";
  if (scale.kind === "diverging") {
    bar.style.background = gradientCss(scale.ramp, -1, 1);
    const mid = document.createElement("span");
    mid.className = "ew-legend-mid";
    mid.textContent = "0";
    bar.appendChild(mid);
  } else {
    bar.style.background = gradientCss(scale.ramp, 0, 1);
  }
  lo.textContent = fmt(d0);
  hi.textContent = fmt(d1);
  el.appendChild(lo);
  el.appendChild(bar);
  el.appendChild(hi);
  const extra = opts.note ? ` (${opts.note})` : scale.kind === "rank" ? ` (log scale, rank 1 ${strongWord(scale.theme)})`
    : scale.kind === "diverging" ? " (centred on 0)" : scale.strongHigh ? ` (the largest ${strongWord(scale.theme)})` : "";
  el.setAttribute("aria-label", `${opts.label || "colour scale"}${extra}: ${fmt(d0)} to ${fmt(d1)}`);
  return el;
}
