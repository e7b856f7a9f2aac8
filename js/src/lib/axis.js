// Token axes and row labels aligned to a grid.
import { tokenSpan, describeToken, fillToken } from "./tokens.js";

/** A row of token labels, one per column, each `cellW` px wide. */
export function tokenAxis(texts, raws, cellW, opts = {}) {
  const el = document.createElement("div");
  el.className = `ew-axis ew-axis-${opts.side || "bottom"}` + (opts.vertical ? " ew-axis-vertical" : "");
  el.setAttribute("aria-hidden", "true");
  const spans = [];
  for (let i = 0; i < texts.length; i++) {
    const t = texts[i] == null ? "" : texts[i];
    const s = tokenSpan(t, { raw: raws && raws[i] != null ? raws[i] : t, className: opts.kindOf ? opts.kindOf(i) : "" });
    s.style.width = `${cellW}px`;
    if (opts.vertical) s.style.height = `${opts.height || 64}px`;
    spans.push(s);
    el.appendChild(s);
  }
  // A label cut by its column width ("·airp…") is shown whole, over its neighbours, while its column is active
  // (a hovered or focused cell): one overlay per axis, filled with textContent (markers included) and moved.
  // (added on first use, so the axis's children are its labels until then)
  const full = document.createElement("span");
  full.className = "ew-axis-full";
  full.setAttribute("aria-hidden", "true");
  full.hidden = true;
  let active = -1;
  return {
    el,
    spans,
    full,
    setActive(i) {
      if (active >= 0 && spans[active]) spans[active].classList.remove("ew-active");
      active = i;
      if (i >= 0 && spans[i]) spans[i].classList.add("ew-active");
      const s = i >= 0 && !opts.vertical ? spans[i] : null;
      // only when the label is cut (its text is wider than its box)
      if (!s || !(s.scrollWidth > s.clientWidth + 1)) {
        full.hidden = true;
        return;
      }
      fillToken(full, texts[i] == null ? "" : texts[i]);
      if (!full.parentNode) el.appendChild(full);
      full.style.left = `${s.offsetLeft}px`;
      full.hidden = false;
    },
  };
}

/** Row labels column, one per row, `cellH` px high. */
export function rowLabels(labels, cellH) {
  const el = document.createElement("div");
  el.className = "ew-rowlabels ew-sticky-col";
  el.setAttribute("aria-hidden", "true");
  const spans = labels.map((l) => {
    const s = document.createElement("span");
    s.textContent = String(l);
    s.title = String(l);
    s.style.height = `${cellH}px`;
    s.style.lineHeight = `${cellH}px`;
    el.appendChild(s);
    return s;
  });
  let active = -1;
  return {
    el,
    spans,
    setActive(i) {
      if (active >= 0 && spans[active]) spans[active].classList.remove("ew-active");
      active = i;
      if (i >= 0 && spans[i]) spans[i].classList.add("ew-active");
    },
  };
}

export { describeToken };

/** A layer label for headlines: a bare number ("15", "3.attn") becomes "layer 15"; "L3", "embed" stay. */
export const layerName = (label) => (/^\d/.test(String(label)) ? `layer ${label}` : String(label));

/** 1 -> "1st", 2 -> "2nd", 5 -> "5th", 11 -> "11th", 22 -> "22nd". */
export function ordinal(n) {
  const t = n % 100;
  const suffix = t >= 11 && t <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}

/** A muted axis title ("layer", "output →"), optionally kept in view when the grid scrolls sideways. */
export function axisTitle(text, opts = {}) {
  const el = document.createElement("div");
  el.className = "ew-axis-title" + (opts.sticky ? " ew-sticky-col" : "") + (opts.className ? ` ${opts.className}` : "");
  el.textContent = text;
  return el;
}
