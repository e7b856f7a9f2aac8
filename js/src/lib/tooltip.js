// One floating tooltip per view root. Content set with textContent only.
// Where the browser has the Popover API the tooltip is a manual popover: shown in the top layer, it escapes
// every clipping ancestor (JupyterLab / Notebook 7 / VS Code / Colab output areas are overflow: auto) and any
// transformed ancestor, and is placed in viewport coordinates (position: fixed). Elsewhere it stays absolutely
// positioned in the root and flips / clamps into the area that its clipping ancestors leave visible.
import { fillToken } from "./tokens.js";

/**
 * Rows: string | [label, value] | {token: text, label?} | Node (built by callers from safe parts).
 */
export function createTooltip(root) {
  const el = document.createElement("div");
  el.className = "ew-tooltip";
  el.setAttribute("role", "tooltip");
  el.hidden = true;
  // the top layer (Popover API) where available; the attribute also gives the element the UA's popover styles,
  // which styles.js resets for .ew-tooltip[popover]
  const topLayer = typeof el.showPopover === "function";
  if (topLayer) el.setAttribute("popover", "manual");
  root.appendChild(el);

  function setRows(rows) {
    el.textContent = "";
    for (const row of rows) {
      if (row == null) continue;
      let line;
      if (typeof row === "string") {
        line = document.createElement("div");
        line.className = "ew-tt-line";
        line.textContent = row;
      } else if (Array.isArray(row)) {
        line = document.createElement("div");
        line.className = "ew-tt-row";
        const k = document.createElement("span");
        k.className = "ew-tt-key";
        k.textContent = String(row[0]);
        const v = document.createElement("span");
        v.className = "ew-tt-val";
        v.textContent = String(row[1]);
        line.appendChild(k);
        line.appendChild(v);
      } else if (typeof row === "object" && "token" in row) {
        line = document.createElement("div");
        line.className = "ew-tt-row";
        if (row.label != null) {
          const k = document.createElement("span");
          k.className = "ew-tt-key";
          k.textContent = String(row.label);
          line.appendChild(k);
        }
        const t = document.createElement("span");
        t.className = "ew-tt-tok";
        fillToken(t, row.token);
        line.appendChild(t);
        if (row.value != null) {
          const v = document.createElement("span");
          v.className = "ew-tt-val";
          v.textContent = String(row.value);
          line.appendChild(v);
        }
      } else if (row.nodeType) {
        line = row;
      } else continue;
      el.appendChild(line);
    }
  }

  // Ancestors that clip the tooltip (overflow other than visible, e.g. JupyterLab's
  // .jp-OutputArea-output). Found once per hover session (when a hidden tooltip is shown), not
  // on every move: getComputedStyle on every ancestor per hover is wasted work.
  let clippers = null;
  const parentOf = (n) => n.parentElement || (n.parentNode && n.parentNode.host) || null;
  function findClippers() {
    const out = [];
    if (topLayer || typeof getComputedStyle !== "function") return out; // nothing clips the top layer
    const top = document.documentElement;
    for (let n = parentOf(root); n && n !== top && n !== document.body; n = parentOf(n)) {
      const s = getComputedStyle(n);
      const ox = s.overflowX || s.overflow || "visible";
      const oy = s.overflowY || s.overflow || "visible";
      if (ox !== "visible" || oy !== "visible") out.push(n);
    }
    return out;
  }

  /** The visible area (viewport coordinates): the viewport cut by every clipping ancestor. */
  function bounds() {
    const de = document.documentElement;
    const vw = (de && de.clientWidth) || (typeof window !== "undefined" && window.innerWidth) || 0;
    const vh = (de && de.clientHeight) || (typeof window !== "undefined" && window.innerHeight) || 0;
    const b = { left: 0, top: 0, right: vw || Infinity, bottom: vh || Infinity };
    for (const n of clippers || []) {
      const r = n.getBoundingClientRect();
      if (!(r.right > r.left) || !(r.bottom > r.top)) continue; // unlaid-out (0 x 0) boxes clip nothing useful
      const left = r.left + (n.clientLeft || 0);
      const top = r.top + (n.clientTop || 0);
      b.left = Math.max(b.left, left);
      b.top = Math.max(b.top, top);
      b.right = Math.min(b.right, n.clientWidth ? left + n.clientWidth : r.right);
      b.bottom = Math.min(b.bottom, n.clientHeight ? top + n.clientHeight : r.bottom);
    }
    if (b.right < b.left) b.right = b.left;
    if (b.bottom < b.top) b.bottom = b.top;
    return b;
  }

  /**
   * One side of an axis: `lo`/`hi` are the anchor's edges, `gap` the distance, `size` the tooltip's
   * extent, `min`/`max` the visible area. After (below / right of) the anchor if it fits, else before
   * it (above / left) if that fits, else the side with more room; then clamped into the area so the
   * start (top / left) of the tooltip stays visible.
   */
  function side(lo, hi, gap, size, min, max, beforeAlign) {
    const after = hi + gap;
    const before = (beforeAlign == null ? lo - gap : beforeAlign) - size;
    let pos;
    if (after + size <= max) pos = after;
    else if (before >= min) pos = before;
    else pos = max - hi > lo - min ? after : before;
    if (pos + size > max) pos = max - size;
    if (pos < min) pos = min;
    return pos;
  }

  /**
   * Is the element `a` out of sight: outside the viewport, or scrolled out of an ancestor that clips it (a notebook's
   * scroll area)? Its tooltip would be pinned to the window's edge, over whatever is there (JupyterLab's toolbar).
   * Read on keyboard moves only (a mouse anchor is under the pointer).
   */
  function outOfSight(a) {
    if (typeof getComputedStyle !== "function" || typeof a.getBoundingClientRect !== "function") return false;
    const r = a.getBoundingClientRect();
    if (!(r.right > r.left) && !(r.bottom > r.top)) return false; // not laid out: place() copes
    const de = document.documentElement;
    const vw = (de && de.clientWidth) || (typeof window !== "undefined" && window.innerWidth) || 0;
    const vh = (de && de.clientHeight) || (typeof window !== "undefined" && window.innerHeight) || 0;
    if ((vh && (r.bottom <= 0 || r.top >= vh)) || (vw && (r.right <= 0 || r.left >= vw))) return true;
    for (let n = parentOf(a); n && n !== de && n !== document.body; n = parentOf(n)) {
      const st = getComputedStyle(n);
      if ((st.overflowX || "visible") === "visible" && (st.overflowY || "visible") === "visible") continue;
      const c = n.getBoundingClientRect();
      if (!(c.right > c.left) || !(c.bottom > c.top)) continue;
      if (r.bottom <= c.top || r.top >= c.bottom || r.right <= c.left || r.left >= c.right) return true;
    }
    return false;
  }

  /** anchor: {clientX, clientY} (mouse) or an Element (keyboard focus) or a DOMRect-like {left, top, right, bottom}. */
  function show(rows, anchor) {
    if (anchor && anchor.nodeType === 1 && outOfSight(anchor)) {
      hide();
      return;
    }
    if (el.hidden || clippers == null) clippers = findClippers();
    setRows(rows);
    el.hidden = false;
    if (topLayer && !isOpen()) {
      try {
        el.showPopover();
      } catch (_) {
        /* not connected yet */
      }
    }
    place(anchor);
  }

  function place(anchor) {
    // Reads first (one layout, of the tooltip only when nothing else is dirty), then one write.
    let a;
    let mouse = false;
    if (anchor && typeof anchor.getBoundingClientRect === "function") a = anchor.getBoundingClientRect();
    else if (anchor && typeof anchor.clientX === "number") {
      mouse = true;
      a = { left: anchor.clientX, right: anchor.clientX, top: anchor.clientY, bottom: anchor.clientY };
    } else if (anchor && typeof anchor.left === "number") a = anchor;
    const rr = root.getBoundingClientRect();
    if (!a) a = { left: rr.left, right: rr.left, top: rr.top, bottom: rr.top };
    const w = el.offsetWidth || 0;
    const h = el.offsetHeight || 0;
    if (clippers == null) clippers = findClippers();
    const b = bounds();
    // mouse: 12 px right / 14 px below the pointer, or mirrored; element: under its left edge, or
    // above it, right-aligned with it when there is no room on the right.
    const x = mouse ? side(a.left, a.right, 12, w, b.left, b.right) : side(a.left, a.left, 0, w, b.left, b.right, a.right);
    const y = side(a.top, a.bottom, mouse ? 14 : 4, h, b.top, b.bottom);
    // top layer: fixed at the viewport's origin; else absolute in the root
    const left = topLayer ? x : x - rr.left - (root.clientLeft || 0);
    const top = topLayer ? y : y - rr.top - (root.clientTop || 0);
    el.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
  }

  function isOpen() {
    try {
      return el.matches(":popover-open");
    } catch (_) {
      return false;
    }
  }

  function hide() {
    el.hidden = true;
    if (topLayer && isOpen()) el.hidePopover();
  }

  /** Forget the cached clipping ancestors (the view was moved in the page). */
  function invalidate() {
    clippers = null;
  }

  return { el, show, hide, place, setRows, invalidate, topLayer };
}
