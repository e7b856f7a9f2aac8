// A rows x columns grid of coloured cells (layers x tokens, neurons x tokens, ...).
// DOM cells up to `threshold` cells (default 4,000), a single canvas above. The canvas is
// drawn once; hover and keyboard focus move a small absolutely-positioned box (no redraw).
import { css, textColorFor } from "./colors.js";

export const DEFAULT_THRESHOLD = 4000;

/** Shift / Ctrl / Alt / Meta held: Enter is then the host's (Shift+Enter runs a notebook cell), not a commit. */
export const modified = (ev) => ev.shiftKey || ev.ctrlKey || ev.altKey || ev.metaKey;

/** Which rendering mode a grid of this size uses. */
export function gridMode(nRows, nCols, threshold = DEFAULT_THRESHOLD) {
  return nRows * nCols <= threshold ? "dom" : "canvas";
}

/** Map local pixel coordinates to a cell, or null outside. */
export function hitTest(x, y, cellW, cellH, nRows, nCols) {
  if (!(x >= 0) || !(y >= 0)) return null;
  const c = Math.floor(x / cellW);
  const r = Math.floor(y / cellH);
  if (r < 0 || c < 0 || r >= nRows || c >= nCols) return null;
  return { r, c };
}

/** Next cell for a navigation key, or null if the key is not a navigation key. */
export function navigate(key, r, c, nRows, nCols, ctrl = false) {
  switch (key) {
    case "ArrowRight":
      return { r, c: Math.min(nCols - 1, c + 1) };
    case "ArrowLeft":
      return { r, c: Math.max(0, c - 1) };
    case "ArrowDown":
      return { r: Math.min(nRows - 1, r + 1), c };
    case "ArrowUp":
      return { r: Math.max(0, r - 1), c };
    case "Home":
      return ctrl ? { r: 0, c: 0 } : { r, c: 0 };
    case "End":
      return ctrl ? { r: nRows - 1, c: nCols - 1 } : { r, c: nCols - 1 };
    case "PageDown":
      return { r, c: Math.min(nCols - 1, c + 10) };
    case "PageUp":
      return { r, c: Math.max(0, c - 10) };
    default:
      return null;
  }
}

/**
 * opts: {nRows, nCols, cellW, cellH, color(r,c) -> [r,g,b], text(r,c) -> string|null,
 *        label(r,c) -> string (aria), onHover(r, c, how, ev) (r = -1 on leave), onCommit(r, c),
 *        threshold, mode ("dom"|"canvas" to force), ariaLabel, noValue(r,c) -> bool (DOM cells with no value: class
 *        ew-nocell, hatched in the theme's colours; the canvas draws color(r,c))}
 * The returned grid's refresh() repaints every cell from these callbacks (DOM) or redraws the canvas.
 */
export function createGrid(opts) {
  const { nRows, nCols } = opts;
  const cellW = opts.cellW || 16;
  const cellH = opts.cellH || 16;
  const mode = opts.mode || gridMode(nRows, nCols, opts.threshold == null ? DEFAULT_THRESHOLD : opts.threshold);
  const el = document.createElement("div");
  el.className = `ew-grid ew-grid-${mode}`;
  el.setAttribute("role", "grid");
  if (opts.ariaLabel) el.setAttribute("aria-label", opts.ariaLabel);
  el.style.width = `${nCols * cellW}px`;
  el.style.height = `${nRows * cellH}px`;
  el.style.setProperty("--ew-cell-h", `${cellH}px`);
  let active = { r: 0, c: 0 };
  let selected = null;
  let hovered = null;
  const label = opts.label || ((r, c) => `row ${r}, column ${c}`);

  const hover = (cell, how, ev) => {
    const same = hovered && cell && hovered.r === cell.r && hovered.c === cell.c;
    if (same && how === "mouse") return;
    hovered = cell;
    if (opts.onHover) {
      if (cell) opts.onHover(cell.r, cell.c, how, ev);
      else opts.onHover(-1, -1, how, ev);
    }
  };
  const commit = (cell) => {
    if (cell && opts.onCommit) opts.onCommit(cell.r, cell.c);
  };

  let api;
  if (mode === "dom") {
    el.style.gridTemplateColumns = `repeat(${nCols}, ${cellW}px)`;
    el.style.gridAutoRows = `${cellH}px`;
    const cells = new Array(nRows * nCols);
    const paint = (d, r, c) => {
      const rgb = opts.color(r, c);
      d.style.backgroundColor = rgb ? css(rgb) : "";
      d.style.color = rgb ? textColorFor(rgb) : "";
      if (opts.noValue) d.classList.toggle("ew-nocell", !!opts.noValue(r, c));
      const t = opts.text ? opts.text(r, c) : null;
      d.textContent = t != null ? t : "";
      d.setAttribute("aria-label", label(r, c));
    };
    for (let r = 0; r < nRows; r++) {
      const row = document.createElement("div");
      row.className = "ew-grid-row";
      row.setAttribute("role", "row");
      for (let c = 0; c < nCols; c++) {
        const d = document.createElement("div");
        d.className = "ew-cell";
        d.setAttribute("role", "gridcell");
        d.dataset.r = String(r);
        d.dataset.c = String(c);
        d.tabIndex = r === 0 && c === 0 ? 0 : -1;
        paint(d, r, c);
        row.appendChild(d);
        cells[r * nCols + c] = d;
      }
      el.appendChild(row);
    }
    const cellOf = (t) => {
      while (t && t !== el) {
        if (t.dataset && t.dataset.r !== undefined) return { r: Number(t.dataset.r), c: Number(t.dataset.c) };
        t = t.parentNode;
      }
      return null;
    };
    const setActive = (cell) => {
      const prev = cells[active.r * nCols + active.c];
      if (prev) prev.tabIndex = -1;
      active = cell;
      const d = cells[cell.r * nCols + cell.c];
      if (d) d.tabIndex = 0;
      return d;
    };
    el.addEventListener("mouseover", (ev) => {
      const cell = cellOf(ev.target);
      if (cell) hover(cell, "mouse", ev);
    });
    el.addEventListener("mouseleave", (ev) => hover(null, "mouse", ev));
    el.addEventListener("click", (ev) => {
      const cell = cellOf(ev.target);
      if (!cell) return;
      setActive(cell);
      commit(cell);
    });
    el.addEventListener("focusin", (ev) => {
      const cell = cellOf(ev.target);
      if (!cell) return;
      setActive(cell);
      hover(cell, "focus", ev.target);
    });
    el.addEventListener("focusout", (ev) => {
      if (ev.relatedTarget && el.contains(ev.relatedTarget)) return;
      hover(null, "focus");
    });
    el.addEventListener("keydown", (ev) => {
      const cell = cellOf(ev.target);
      if (!cell) return;
      if ((ev.key === "Enter" || ev.key === " ") && !modified(ev)) {
        ev.preventDefault();
        commit(cell);
        return;
      }
      const next = navigate(ev.key, cell.r, cell.c, nRows, nCols, ev.ctrlKey || ev.metaKey);
      if (!next) return;
      ev.preventDefault();
      const d = setActive(next);
      if (d) d.focus();
    });
    api = {
      cells,
      cellElement: (r, c) => cells[r * nCols + c] || null,
      /** Repaint every cell from opts.color / opts.text / opts.label (e.g. after a change of metric). */
      refresh() {
        for (let r = 0; r < nRows; r++) for (let c = 0; c < nCols; c++) paint(cells[r * nCols + c], r, c);
      },
      setSelected(r, c) {
        if (selected) {
          const p = cells[selected.r * nCols + selected.c];
          if (p) {
            p.classList.remove("ew-selected");
            p.removeAttribute("aria-selected");
          }
        }
        selected = r == null || r < 0 ? null : { r, c };
        if (selected) {
          const d = cells[r * nCols + c];
          if (d) {
            d.classList.add("ew-selected");
            d.setAttribute("aria-selected", "true");
          }
        }
      },
      focusCell(r, c) {
        const d = setActive({ r, c });
        if (d) d.focus();
      },
      anchor: (r, c) => cells[r * nCols + c] || el,
    };
  } else {
    el.tabIndex = 0;
    const canvas = document.createElement("canvas");
    canvas.className = "ew-grid-canvas-el";
    canvas.setAttribute("aria-hidden", "true");
    const W = nCols * cellW;
    const H = nRows * cellH;
    let dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    // Stay inside browsers' canvas limits (32,767 px a side, ~268M px area).
    dpr = Math.min(dpr, 32000 / W, 32000 / H, Math.sqrt(200e6 / (W * H)));
    dpr = Math.max(dpr, 0.25);
    canvas.width = Math.max(1, Math.floor(W * dpr));
    canvas.height = Math.max(1, Math.floor(H * dpr));
    canvas.style.width = `${W}px`;
    canvas.style.height = `${H}px`;
    el.appendChild(canvas);
    const hoverBox = document.createElement("div");
    hoverBox.className = "ew-grid-hover";
    hoverBox.hidden = true;
    hoverBox.style.width = `${cellW}px`;
    hoverBox.style.height = `${cellH}px`;
    const selBox = document.createElement("div");
    selBox.className = "ew-grid-selected";
    selBox.hidden = true;
    selBox.style.width = `${cellW}px`;
    selBox.style.height = `${cellH}px`;
    const live = document.createElement("div");
    live.className = "ew-sr-only";
    live.setAttribute("aria-live", "polite");
    el.appendChild(selBox);
    el.appendChild(hoverBox);
    el.appendChild(live);
    let drawCount = 0;

    const draw = () => {
      const ctx = canvas.getContext && canvas.getContext("2d");
      if (!ctx) return;
      drawCount++;
      // One pixel per cell in an ImageData, then scaled up without smoothing: ~O(cells), once.
      const small = document.createElement("canvas");
      small.width = nCols;
      small.height = nRows;
      const sctx = small.getContext("2d");
      if (sctx && typeof sctx.createImageData === "function") {
        const img = sctx.createImageData(nCols, nRows);
        const px = img.data;
        for (let r = 0; r < nRows; r++) {
          for (let c = 0; c < nCols; c++) {
            const rgb = opts.color(r, c) || [128, 128, 128];
            const o = (r * nCols + c) * 4;
            px[o] = rgb[0];
            px[o + 1] = rgb[1];
            px[o + 2] = rgb[2];
            px[o + 3] = 255;
          }
        }
        sctx.putImageData(img, 0, 0);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
      } else {
        for (let r = 0; r < nRows; r++) {
          for (let c = 0; c < nCols; c++) {
            ctx.fillStyle = css(opts.color(r, c) || [128, 128, 128]);
            ctx.fillRect(c * cellW * dpr, r * cellH * dpr, cellW * dpr, cellH * dpr);
          }
        }
      }
      // thin separators between rows (and columns when cells are wide enough)
      ctx.fillStyle = "rgba(255,255,255,0.45)";
      for (let r = 1; r < nRows; r++) ctx.fillRect(0, Math.round(r * cellH * dpr), canvas.width, Math.max(1, Math.round(dpr)));
      if (cellW >= 8) for (let c = 1; c < nCols; c++) ctx.fillRect(Math.round(c * cellW * dpr), 0, Math.max(1, Math.round(dpr * 0.5)), canvas.height);
    };
    draw();

    const place = (box, cell) => {
      box.hidden = !cell;
      if (cell) box.style.transform = `translate(${cell.c * cellW}px, ${cell.r * cellH}px)`;
    };
    const local = (ev) => {
      const rect = canvas.getBoundingClientRect();
      return hitTest(ev.clientX - rect.left, ev.clientY - rect.top, cellW, cellH, nRows, nCols);
    };
    el.addEventListener("mousemove", (ev) => {
      const cell = local(ev);
      if (!cell) {
        place(hoverBox, null);
        hover(null, "mouse", ev);
        return;
      }
      place(hoverBox, cell);
      hover(cell, "mouse", ev);
    });
    el.addEventListener("mouseleave", (ev) => {
      place(hoverBox, null);
      hover(null, "mouse", ev);
    });
    el.addEventListener("click", (ev) => {
      const cell = local(ev);
      if (!cell) return;
      active = cell;
      commit(cell);
    });
    const focusActive = () => {
      place(hoverBox, active);
      live.textContent = label(active.r, active.c);
      if (typeof hoverBox.scrollIntoView === "function") {
        try {
          hoverBox.scrollIntoView({ block: "nearest", inline: "nearest" });
        } catch (_) {
          /* ignore */
        }
      }
      hover(active, "focus", hoverBox);
    };
    el.addEventListener("focus", () => focusActive());
    el.addEventListener("blur", () => {
      place(hoverBox, null);
      hover(null, "focus");
    });
    el.addEventListener("keydown", (ev) => {
      if ((ev.key === "Enter" || ev.key === " ") && !modified(ev)) {
        ev.preventDefault();
        commit(active);
        return;
      }
      const next = navigate(ev.key, active.r, active.c, nRows, nCols, ev.ctrlKey || ev.metaKey);
      if (!next) return;
      ev.preventDefault();
      active = next;
      focusActive();
    });
    api = {
      canvas,
      hoverBox,
      get drawCount() {
        return drawCount;
      },
      redraw: draw,
      refresh: draw,
      cellElement: () => null,
      setSelected(r, c) {
        selected = r == null || r < 0 ? null : { r, c };
        place(selBox, selected);
      },
      focusCell(r, c) {
        active = { r, c };
        el.focus();
        focusActive();
      },
      anchor: (r, c) => {
        const rect = canvas.getBoundingClientRect();
        return { left: rect.left + c * cellW, top: rect.top + r * cellH, right: rect.left + (c + 1) * cellW, bottom: rect.top + (r + 1) * cellH };
      },
    };
  }
  return Object.assign(api, {
    el,
    mode,
    cellW,
    cellH,
    nRows,
    nCols,
    get active() {
      return active;
    },
    get selected() {
      return selected;
    },
    cellAt: (x, y) => hitTest(x, y, cellW, cellH, nRows, nCols),
  });
}
