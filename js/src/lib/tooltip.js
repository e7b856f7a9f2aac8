// One floating tooltip per view root. Content set with textContent only.
import { fillToken } from "./tokens.js";

/**
 * Rows: string | [label, value] | {token: text, label?} | Node (built by callers from safe parts).
 */
export function createTooltip(root) {
  const el = document.createElement("div");
  el.className = "ew-tooltip";
  el.setAttribute("role", "tooltip");
  el.hidden = true;
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

  /** anchor: {clientX, clientY} (mouse) or an Element (keyboard focus) or a DOMRect-like {left, top, right, bottom}. */
  function show(rows, anchor) {
    setRows(rows);
    el.hidden = false;
    place(anchor);
  }

  function place(anchor) {
    const rr = root.getBoundingClientRect();
    let x;
    let y;
    if (anchor && typeof anchor.getBoundingClientRect === "function") {
      const r = anchor.getBoundingClientRect();
      x = r.left;
      y = r.bottom + 4;
    } else if (anchor && typeof anchor.clientX === "number") {
      x = anchor.clientX + 12;
      y = anchor.clientY + 14;
    } else if (anchor && typeof anchor.left === "number") {
      x = anchor.left;
      y = anchor.bottom + 4;
    } else {
      x = rr.left;
      y = rr.top;
    }
    let left = x - rr.left;
    const top = Math.max(0, y - rr.top); // a synthetic event at (0, 0) must not fly off above the view
    const w = el.offsetWidth || 0;
    const maxLeft = Math.max(0, (root.clientWidth || rr.width || 0) - w - 4);
    if (left > maxLeft) left = maxLeft;
    if (left < 0) left = 0;
    el.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
  }

  function hide() {
    el.hidden = true;
  }

  return { el, show, hide, place, setRows };
}
