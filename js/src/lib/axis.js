// Token axes and row labels aligned to a grid.
import { tokenSpan, describeToken } from "./tokens.js";

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

/** Row labels column, one per row, `cellH` px high. */
export function rowLabels(labels, cellH) {
  const el = document.createElement("div");
  el.className = "ew-rowlabels";
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
