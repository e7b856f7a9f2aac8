// A view as a static figure (for papers): an SVG redrawn from the browser's own layout (boxes, borders, gradient
// legends, texts, canvases, inline SVGs), a PNG drawn from that SVG, and the small "SVG / PNG" buttons of a view.
// Text goes into the SVG through textContent only; XMLSerializer writes the markup (escaping every character).
import { INVISIBLE } from "./tokens.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// characters XML 1.0 does not allow, and the zero-width / bidi controls (drawn as labelled markers in the view)
const XML_BAD = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const cleanText = (s) => [...s.replace(XML_BAD, "")].filter((ch) => !INVISIBLE[ch]).join("");

const alphaOf = (c) => {
  const m = /rgba\([^)]*,\s*([\d.]+)\)/.exec(c || "");
  if (m) return Number(m[1]);
  return !c || c === "transparent" ? 0 : 1;
};
const r1 = (v) => Math.round(v * 10) / 10;

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, String(v));
  return e;
}

/** Stops of a computed `linear-gradient(to right | 90deg, rgb(...) 0%, ...)`, or null for other gradients. */
function gradientStops(image) {
  const m = /^linear-gradient\((.*)\)$/.exec(image || "");
  if (!m || !/^(to right|90deg)\s*,/.test(m[1])) return null;
  const stops = [];
  const re = /(rgba?\([^)]*\))\s*([\d.]+)%/g;
  let s;
  while ((s = re.exec(m[1]))) stops.push([s[1], Number(s[2])]);
  return stops.length >= 2 ? stops : null;
}

/**
 * The SVG source of a view root, at its current layout (call `prepare` first for the whole, unscrolled view).
 * Elements marked data-ew-nofig (the figure buttons), the tooltip and screen-reader-only text are left out.
 */
export function viewToSvg(root) {
  const rr = root.getBoundingClientRect();
  const W = Math.ceil(rr.width);
  const H = Math.ceil(rr.height);
  const svg = svgEl("svg", { xmlns: SVG_NS, width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  svg.dataset.ewView = root.dataset.ewView || "";
  svg.dataset.ewTheme = root.dataset.ewTheme || "";
  const defs = svgEl("defs");
  svg.appendChild(defs);
  let ids = 0;
  const X = (v) => r1(v - rr.left);
  const Y = (v) => r1(v - rr.top);

  const box = (parent, r, cs) => {
    const rad = parseFloat(cs.borderTopLeftRadius) || 0;
    const base = { x: X(r.left), y: Y(r.top), width: r1(r.width), height: r1(r.height), rx: rad ? r1(rad) : null };
    if (alphaOf(cs.backgroundColor) > 0) parent.appendChild(svgEl("rect", { ...base, fill: cs.backgroundColor }));
    const stops = gradientStops(cs.backgroundImage);
    if (stops) {
      const id = `ew-g${ids++}`;
      const g = svgEl("linearGradient", { id, x1: 0, y1: 0, x2: 1, y2: 0 });
      for (const [color, at] of stops) g.appendChild(svgEl("stop", { offset: `${at}%`, "stop-color": color }));
      defs.appendChild(g);
      parent.appendChild(svgEl("rect", { ...base, fill: `url(#${id})` }));
    }
    const sides = ["Top", "Right", "Bottom", "Left"].map((s) => ({
      w: cs[`border${s}Style`] === "none" ? 0 : parseFloat(cs[`border${s}Width`]) || 0,
      c: cs[`border${s}Color`],
    }));
    const same = sides.every((s) => s.w === sides[0].w && s.c === sides[0].c);
    if (same && sides[0].w > 0 && alphaOf(sides[0].c) > 0) {
      const w = sides[0].w;
      parent.appendChild(svgEl("rect", { x: X(r.left + w / 2), y: Y(r.top + w / 2), width: r1(r.width - w), height: r1(r.height - w),
        rx: base.rx, fill: "none", stroke: sides[0].c, "stroke-width": w }));
    } else if (!same) {
      const lines = [[r.left, r.top, r.right, r.top], [r.right, r.top, r.right, r.bottom], [r.left, r.bottom, r.right, r.bottom], [r.left, r.top, r.left, r.bottom]];
      sides.forEach((s, i) => {
        if (!(s.w > 0) || !(alphaOf(s.c) > 0)) return;
        const [x1, y1, x2, y2] = lines[i];
        const off = (i === 0 || i === 3 ? 1 : -1) * (s.w / 2);
        const horiz = i % 2 === 0;
        parent.appendChild(svgEl("line", { x1: X(x1), y1: Y(horiz ? y1 + off : y1), x2: X(x2), y2: Y(horiz ? y2 + off : y2),
          ...(horiz ? {} : { x1: X(x1 + off), x2: X(x2 + off) }), stroke: s.c, "stroke-width": s.w }));
      });
    }
  };

  const textAttrs = (cs) => ({
    fill: cs.color, "font-family": cs.fontFamily, "font-size": cs.fontSize,
    "font-weight": cs.fontWeight === "400" ? null : cs.fontWeight, "font-style": cs.fontStyle === "normal" ? null : cs.fontStyle,
    opacity: null, style: "white-space: pre",
  });

  const text = (parent, node) => {
    const cs = getComputedStyle(node.parentElement);
    const keepSpaces = /pre/.test(cs.whiteSpace);
    const raw = node.data;
    if (!raw || (!keepSpaces && !raw.trim())) return;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0 || r.height > 0);
    if (!rects.length) return;
    // one piece per line box: the whole node, or its characters grouped by the line they sit on
    let pieces = [[raw, rects[0]]];
    if (rects.length > 1) {
      pieces = [];
      let cur = null;
      for (let i = 0; i < raw.length; i++) {
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const r = range.getBoundingClientRect();
        if (!cur || Math.abs(r.top - cur.r.top) > 2) {
          cur = { s: "", r: { left: r.left, top: r.top, right: r.right, bottom: r.bottom } };
          pieces.push(cur);
        }
        cur.s += raw[i];
        cur.r.right = Math.max(cur.r.right, r.right);
        cur.r.bottom = Math.max(cur.r.bottom, r.bottom);
      }
      pieces = pieces.map((p) => [keepSpaces ? p.s : p.s.trim(), { ...p.r, width: p.r.right - p.r.left, height: p.r.bottom - p.r.top }]);
    }
    const fs = parseFloat(cs.fontSize) || 12;
    const vertical = /vertical/.test(cs.writingMode);
    for (const [s, r] of pieces) {
      const t = cleanText(s);
      if (!t || (!keepSpaces && !t.trim())) continue;
      const a = textAttrs(cs);
      let el;
      if (vertical) {
        const x = X(r.left + r.width / 2 + 0.35 * fs);
        const y = Y(r.bottom);
        el = svgEl("text", { ...a, x, y, transform: `rotate(-90 ${x} ${y})`, textLength: r1(r.height), lengthAdjust: "spacingAndGlyphs" });
      } else {
        el = svgEl("text", { ...a, x: X(r.left), y: Y(r.top + r.height / 2 + 0.35 * fs), textLength: r1(r.width), lengthAdjust: "spacingAndGlyphs" });
      }
      el.textContent = t;
      parent.appendChild(el);
    }
  };

  const copySvg = (parent, el, r) => {
    const clone = el.cloneNode(true);
    const src = [el, ...el.querySelectorAll("*")];
    const dst = [clone, ...clone.querySelectorAll("*")];
    src.forEach((s, i) => {
      const cs = getComputedStyle(s);
      const d = dst[i];
      for (const p of ["fill", "stroke", "stroke-width", "opacity", "fill-opacity", "stroke-opacity"]) {
        const v = cs.getPropertyValue(p);
        if (v) d.setAttribute(p, v);
      }
      d.removeAttribute("class");
    });
    clone.setAttribute("x", X(r.left));
    clone.setAttribute("y", Y(r.top));
    clone.setAttribute("width", r1(r.width));
    clone.setAttribute("height", r1(r.height));
    parent.appendChild(clone);
  };

  const walk = (parent, el) => {
    if (el.nodeType === 3) return text(parent, el);
    if (el.nodeType !== 1) return;
    if (el.hasAttribute("data-ew-nofig") || el.classList.contains("ew-tooltip") || el.classList.contains("ew-sr-only")) return;
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") return;
    const r = el.getBoundingClientRect();
    let g = parent;
    const op = Number(cs.opacity);
    if (op < 1) {
      g = svgEl("g", { opacity: op });
      parent.appendChild(g);
    }
    if (el.tagName === "CANVAS") {
      let href = "";
      try {
        href = el.toDataURL("image/png");
      } catch (_) {
        /* a tainted canvas: left out */
      }
      if (href) g.appendChild(svgEl("image", { x: X(r.left), y: Y(r.top), width: r1(r.width), height: r1(r.height), href, preserveAspectRatio: "none" }));
      return;
    }
    if (el.namespaceURI === SVG_NS && el.tagName.toLowerCase() === "svg") return copySvg(g, el, r);
    box(g, r, cs);
    if (el !== root && (cs.overflowX !== "visible" || cs.overflowY !== "visible")) {
      const id = `ew-c${ids++}`;
      const clip = svgEl("clipPath", { id });
      clip.appendChild(svgEl("rect", { x: X(r.left), y: Y(r.top), width: r1(r.width), height: r1(r.height) }));
      defs.appendChild(clip);
      const inner = svgEl("g", { "clip-path": `url(#${id})` });
      g.appendChild(inner);
      g = inner;
    }
    for (const c of el.childNodes) walk(g, c);
  };
  walk(svg, root);
  return new XMLSerializer().serializeToString(svg);
}

/**
 * Lay the view out whole for a figure: the root as wide as its content (no horizontal scrolling) and no hover
 * state. Returns a function that restores the previous layout.
 */
export function prepare(root) {
  if (typeof root.ewFlush === "function") root.ewFlush(); // a view with drawing still to do (the explorer) does it now
  const prev = [root.style.width, root.style.maxWidth, root.style.display];
  root.style.width = "max-content";
  root.style.maxWidth = "none";
  root.classList.add("ew-figure");
  return () => {
    [root.style.width, root.style.maxWidth, root.style.display] = prev;
    root.classList.remove("ew-figure");
  };
}

/** The SVG of the whole view (prepare, draw, restore). */
export function figureSvg(root) {
  const restore = prepare(root);
  try {
    return viewToSvg(root);
  } finally {
    restore();
  }
}

/** A PNG Blob of the figure, drawn from its SVG at `scale` device pixels per CSS pixel. */
export function figurePng(root, scale = 2) {
  const src = figureSvg(root);
  const m = /width="(\d+)" height="(\d+)"/.exec(src);
  const w = m ? Number(m[1]) : 1;
  const h = m ? Number(m[2]) : 1;
  return new Promise((resolve, reject) => {
    const img = new Image();
    const url = URL.createObjectURL(new Blob([src], { type: "image/svg+xml" }));
    img.onload = () => {
      URL.revokeObjectURL(url);
      const c = document.createElement("canvas");
      c.width = Math.max(1, Math.round(w * scale));
      c.height = Math.max(1, Math.round(h * scale));
      const ctx = c.getContext("2d");
      ctx.scale(scale, scale);
      ctx.drawImage(img, 0, 0, w, h);
      c.toBlob((b) => (b ? resolve(b) : reject(new Error("could not encode the PNG"))), "image/png");
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("could not draw the SVG"));
    };
    img.src = url;
  });
}

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/**
 * The figure buttons of a view ("SVG", "PNG": download the figure) and `root.ewFigure` ({svg(), png(scale),
 * prepare()}) for ecco_widgets' Python side (`view.save_svg` / `save_png` drive a headless Chromium).
 */
export function addFigureButtons(root, name) {
  root.ewFigure = { svg: () => figureSvg(root), png: (scale) => figurePng(root, scale), prepare: () => prepare(root) };
  const bar = document.createElement("div");
  bar.className = "ew-fig-btns";
  bar.dataset.ewNofig = "";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "save the view as a figure");
  for (const kind of ["svg", "png"]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ew-fig-btn";
    b.dataset.figure = kind;
    b.textContent = kind.toUpperCase();
    b.title = `save as ${kind.toUpperCase()}`;
    b.addEventListener("click", async () => {
      try {
        const blob = kind === "svg" ? new Blob([figureSvg(root)], { type: "image/svg+xml" }) : await figurePng(root, 2);
        download(blob, `${name}.${kind}`);
      } catch (err) {
        if (typeof console !== "undefined") console.warn("ecco_widgets: figure:", err);
      }
    });
    bar.appendChild(b);
  }
  root.appendChild(bar);
  return bar;
}
