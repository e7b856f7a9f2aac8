// All styles, injected once per document (or shadow root) as <style id="ew-style-v1">.
export const STYLE_ID = "ew-style-v1";

export const CSS = `
.ew-root {
  --ew-bg: #ffffff; --ew-bg2: #f3f4f6; --ew-fg: #1b1f24; --ew-muted: #5c6370; --ew-border: #d0d7de;
  --ew-accent: #0072b2; --ew-focus: #d55e00; --ew-select: #000000; --ew-tt-bg: #ffffff; --ew-bar: #0072b2;
  --ew-pos: #d55e00; --ew-neg: #0072b2;
  position: relative; box-sizing: border-box; max-width: 100%; margin: 2px 0; padding: 8px 10px; border-radius: 6px;
  background: var(--ew-bg); color: var(--ew-fg);
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif); font-size: 13px; line-height: 1.4;
}
.ew-root.ew-dark {
  --ew-bg: #1b1d21; --ew-bg2: #2a2d33; --ew-fg: #e6e6e6; --ew-muted: #a0a7b4; --ew-border: #444b55;
  --ew-accent: #56b4e9; --ew-focus: #f0e442; --ew-select: #ffffff; --ew-tt-bg: #25282e; --ew-bar: #56b4e9;
  --ew-pos: #e69f00; --ew-neg: #56b4e9;
}
.ew-root.ew-jp {
  --ew-bg: var(--jp-layout-color0); --ew-bg2: var(--jp-layout-color2); --ew-fg: var(--jp-content-font-color1);
  --ew-muted: var(--jp-content-font-color2); --ew-border: var(--jp-border-color1); --ew-tt-bg: var(--jp-layout-color1);
}
.ew-root:focus { outline: none; }
.ew-root *, .ew-root *::before, .ew-root *::after { box-sizing: border-box; }
.ew-root [hidden] { display: none !important; }
.ew-title { font-weight: 600; font-size: 14px; margin: 0 0 6px 0; }
.ew-controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 6px; color: var(--ew-muted); }
.ew-controls select { background: var(--ew-bg); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; padding: 1px 4px; font: inherit; }
.ew-scroll { overflow: auto; max-width: 100%; padding: 2px; }
.ew-hint { color: var(--ew-muted); font-size: 12px; margin: 4px 0; }
.ew-error { color: #d55e00; font-family: var(--jp-code-font-family, ui-monospace, monospace); white-space: pre-wrap; }
.ew-sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

.ew-tokens { display: flex; flex-wrap: wrap; gap: 3px 2px; align-items: flex-end; font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace); font-size: 13px; }
.ew-tok { display: inline-block; unicode-bidi: isolate; white-space: pre; padding: 1px 3px; border-radius: 3px; max-width: 24em; overflow: hidden; text-overflow: ellipsis; vertical-align: bottom; border-bottom: 2px solid transparent; cursor: default; }
.ew-tok-prompt { border-bottom-color: var(--ew-border); }
.ew-tok-gen { border-bottom: 2px solid var(--ew-accent); font-weight: 600; }
.ew-tok:focus { outline: none; }
.ew-tok:focus-visible, .ew-tok.ew-active { outline: 2px solid var(--ew-focus); outline-offset: 1px; }
.ew-tok.ew-selected { box-shadow: 0 0 0 2px var(--ew-select); }
.ew-tok.ew-target { text-decoration: underline dotted var(--ew-muted); text-underline-offset: 3px; cursor: pointer; }
.ew-tok.ew-target.ew-unconverged { text-decoration: underline wavy var(--ew-focus); }
.ew-tok.ew-dim { color: var(--ew-muted); border-bottom-color: var(--ew-border); } /* set back, still readable (not opacity: 0.45, 2.5 : 1 on white) */
.ew-ws { opacity: 0.45; font-weight: normal; }
.ew-ws.ew-ws-solo { opacity: 1; font-weight: inherit; } /* a whitespace-only token: its marker is the token */
/* zero-width / bidi control characters: the character stays in the DOM inside its own isolated box
   (a U+202E override ends there), with a visible label; every token is bidi-isolated from its neighbours */
.ew-ws-ctl { display: inline-block; unicode-bidi: isolate; direction: ltr; opacity: 0.85; color: var(--ew-focus); }
.ew-ws-ctl::before { content: attr(data-mark); display: inline-block; font-family: system-ui, sans-serif; font-size: 0.6em; line-height: 1.2;
  vertical-align: middle; padding: 0 1px; margin: 0 1px; border: 1px dashed currentColor; border-radius: 2px; }
.ew-ws-space { font-size: 0.85em; }

.ew-tooltip { position: absolute; left: 0; top: 0; z-index: 1000; pointer-events: none; will-change: transform; contain: layout paint style; background: var(--ew-tt-bg); color: var(--ew-fg);
  border: 1px solid var(--ew-border); border-radius: 4px; padding: 4px 7px; font-size: 12px; max-width: 30em;
  box-shadow: 0 2px 8px rgba(0,0,0,0.25); overflow-wrap: anywhere; }
/* in the top layer (Popover API): undo the UA's popover box (inset 0, margin auto, overflow auto, Canvas colours) */
.ew-tooltip[popover] { position: fixed; inset: auto; left: 0; top: 0; margin: 0; overflow: visible; width: max-content; height: auto; }
.ew-tt-line { font-weight: 600; }
.ew-tt-row { display: flex; gap: 8px; justify-content: space-between; }
.ew-tt-key { color: var(--ew-muted); }
.ew-tt-val { font-variant-numeric: tabular-nums; }
.ew-tt-table { display: grid; gap: 0 10px; margin-top: 2px; }
.ew-tt-table > .ew-tt-val { text-align: right; }
.ew-tt-table > .ew-tt-cur { font-weight: 600; }
.ew-tt-name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 12em; unicode-bidi: isolate; }
.ew-tt-tok { unicode-bidi: isolate; font-family: var(--jp-code-font-family, ui-monospace, monospace); white-space: pre; overflow: hidden; text-overflow: ellipsis; max-width: 18em; }

.ew-legend { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin-top: 8px; font-size: 12px; color: var(--ew-muted); }
.ew-legend-bar { position: relative; display: inline-block; width: 160px; height: 10px; border-radius: 2px; border: 1px solid var(--ew-border); }
.ew-legend-mid { position: absolute; left: 50%; top: 10px; transform: translateX(-50%); font-size: 10px; }
.ew-legend-item { display: inline-flex; align-items: center; gap: 3px; }
.ew-legend-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; }
.ew-nocell { background: repeating-linear-gradient(135deg, var(--ew-bg) 0 3px, var(--ew-border) 3px 5px) !important; }
.ew-legend-swatch.ew-nocell { border: 1px solid var(--ew-border); box-sizing: border-box; }

.ew-grid { position: relative; }
.ew-grid-canvas-el { contain: strict; }
/* fixed size (set inline): a layout / paint boundary, so hover never re-lays out the cells */
.ew-grid-dom { display: grid; contain: strict; }
.ew-grid-row { display: contents; }
/* block + line-height (not flex) so a value too wide for its cell is clipped with an ellipsis */
.ew-cell { display: block; text-align: center; line-height: var(--ew-cell-h, 16px); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  padding: 0 1px; font-size: 10px; font-variant-numeric: tabular-nums;
  box-shadow: inset 0 0 0 0.5px var(--ew-bg); cursor: pointer; user-select: none; }
.ew-cell:focus { outline: none; }
.ew-cell:focus-visible, .ew-cell:hover { outline: 2px solid var(--ew-focus); outline-offset: -2px; }
.ew-cell.ew-selected { outline: 2px solid var(--ew-select); outline-offset: -2px; }
.ew-grid-canvas { cursor: crosshair; }
.ew-grid-canvas:focus { outline: 1px dashed var(--ew-muted); }
.ew-grid-canvas-el { display: block; image-rendering: pixelated; }
.ew-grid-hover, .ew-grid-selected { position: absolute; left: 0; top: 0; pointer-events: none; will-change: transform; }
.ew-grid-hover { outline: 2px solid var(--ew-focus); }
.ew-grid-selected { outline: 2px solid var(--ew-select); }

.ew-axis { display: flex; contain: layout style; font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 11px; }
.ew-axis .ew-tok { padding: 0 1px; border-radius: 0; max-width: none; flex: none; text-align: center; }
.ew-axis-vertical .ew-tok { writing-mode: vertical-rl; transform: rotate(180deg); height: 64px; text-align: left; border: none; }
.ew-axis-vertical .ew-tok-gen { color: var(--ew-accent); }
.ew-axis-top { align-items: flex-end; }
.ew-axis-bottom { align-items: flex-start; }
.ew-axis-vertical.ew-axis-bottom .ew-tok { transform: none; }
.ew-axis-title { color: var(--ew-muted); font-size: 11px; }
.ew-axis .ew-tok.ew-active { outline: 2px solid var(--ew-focus); outline-offset: -2px; }
/* a cut column header shows its whole text over its neighbours while its column is hovered / focused */
.ew-axis { position: relative; }
.ew-axis .ew-axis-full { position: absolute; top: 0; z-index: 3; pointer-events: none; padding: 0 2px; max-width: none; white-space: pre;
  background: var(--ew-bg2); color: var(--ew-fg); outline: 2px solid var(--ew-focus); outline-offset: -2px; }
/* figure buttons (SVG / PNG): top right, shown while the view is hovered or focused; never in the figure */
.ew-fig-btns { position: absolute; top: 4px; right: 6px; display: flex; gap: 2px; opacity: 0; transition: opacity 0.15s; z-index: 5; }
.ew-root:hover > .ew-fig-btns, .ew-fig-btns:focus-within { opacity: 1; }
.ew-root.ew-figure > .ew-fig-btns { visibility: hidden; }
.ew-fig-btn { font: inherit; font-size: 10px; line-height: 1.3; padding: 0 4px; background: var(--ew-bg); color: var(--ew-muted);
  border: 1px solid var(--ew-border); border-radius: 3px; cursor: pointer; }
.ew-fig-btn:focus { outline: none; }
.ew-fig-btn:focus-visible { outline: 2px solid var(--ew-focus); }
/* layer labels and the titles above / below them stay in view when a wide grid scrolls sideways */
.ew-sticky-col { position: sticky; left: 0; z-index: 4; background: var(--ew-bg); }
.ew-rowlabels { contain: layout style; display: flex; flex-direction: column; font-size: 11px; color: var(--ew-muted); padding-right: 4px; text-align: right; }
.ew-rowlabels > span { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 12em; }
/* hover / selection styles never change a label's width (no font-weight): a wider label would resize the
   max-content label column and force a layout of the whole grid on every hover */
.ew-rowlabels > span.ew-active { color: var(--ew-fg); background: var(--ew-bg2); box-shadow: inset -2px 0 0 var(--ew-focus); }
.ew-rowlabels > span.ew-selected { color: var(--ew-fg); text-decoration: underline; }
.ew-gridwrap { display: flex; align-items: stretch; }
.ew-gridcol { display: flex; flex-direction: column; }

.ew-sal-detailed .ew-tokens { align-items: stretch; }
.ew-sal-detailed .ew-tok { display: inline-flex; flex-direction: column; align-items: stretch; min-width: 2.8em; text-align: center; }
.ew-bar-wrap { display: block; height: 22px; position: relative; margin-top: 2px; }
.ew-bar { position: absolute; bottom: 10px; left: 0; width: 100%; border-radius: 1px; }
.ew-bar-val { position: absolute; bottom: 0; left: 0; right: 0; font-size: 9px; line-height: 10px; text-align: center; font-weight: normal;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }

.ew-factor-list { display: flex; flex-direction: column; gap: 2px; margin-bottom: 8px; }
.ew-factor { display: flex; align-items: center; gap: 8px; padding: 2px 4px; border-radius: 4px; cursor: pointer; border: 1px solid transparent; }
.ew-factor:hover, .ew-factor.ew-active { background: var(--ew-bg2); }
.ew-factor:focus { outline: none; }
.ew-factor:focus-visible { outline: 2px solid var(--ew-focus); }
.ew-factor.ew-selected { border-color: var(--ew-select); }
.ew-factor-label { min-width: 6em; font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 14em; }
.ew-factor-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; flex: none; }
.ew-spark-line { stroke: var(--ew-accent); stroke-width: 1.5; }
.ew-tok.ew-tok-special { opacity: 0.45; }
.ew-tok.ew-turn-start { box-shadow: inset 3px 0 0 var(--ew-turn, var(--ew-muted)); padding-left: 5px; }
.ew-turn-system { --ew-turn: #999999; } .ew-turn-user { --ew-turn: #0072b2; } .ew-turn-assistant { --ew-turn: #d55e00; }
.ew-tokens .ew-tok[data-turn-role]::before { content: attr(data-turn-role) ": "; font-size: 10px; color: var(--ew-turn); font-weight: 600; }
.ew-charts { display: flex; flex-wrap: wrap; gap: 12px 24px; }
.ew-chart-title { font-size: 12px; font-weight: 600; margin: 6px 0 2px; }
.ew-chart-axis { stroke: var(--ew-muted); stroke-width: 1; }
.ew-chart-tick { fill: var(--ew-muted); font-size: 10px; }
.ew-chart-bar.ew-active { stroke: var(--ew-select); stroke-width: 1.5; outline: 1px solid var(--ew-select); }
.ew-chart-hit:focus-visible { outline: 2px solid var(--ew-focus); }
.ew-spark-mark { stroke: var(--ew-focus); stroke-width: 1; }
.ew-heat-cells { position: relative; }
.ew-heat-focus-col { position: absolute; top: 0; bottom: 0; box-shadow: inset 0 0 0 2px var(--ew-focus); pointer-events: none; }
.ew-axis .ew-tok.ew-heat-focus { font-weight: 700; color: var(--ew-focus); }
.ew-legend-note { flex-basis: 100%; font-size: 11px; }
.ew-spark-wrap { display: inline-flex; align-items: stretch; gap: 2px; }
.ew-spark-y { display: inline-flex; flex-direction: column; justify-content: space-between; min-width: 3em; text-align: right; font-size: 9px; line-height: 9px; color: var(--ew-muted); font-variant-numeric: tabular-nums; }
.ew-factor-list.ew-isolating .ew-factor:not(.ew-active) { opacity: 0.25; }
.ew-factor-list.ew-isolating .ew-factor:not(.ew-active) .ew-spark-line { stroke: var(--ew-muted) !important; }
.ew-tok.ew-excluded { background-image: repeating-linear-gradient(45deg, transparent 0 3px, var(--ew-border) 3px 4px); }
.ew-lp-table.ew-lp-compact { gap: 1px 8px; font-size: 12px; }
.ew-lp-compact .ew-lp-label[hidden], .ew-lp-compact .ew-lp-line[hidden] { display: none; }
.ew-lp-compact .ew-lp-line { display: flex; flex-wrap: nowrap; gap: 4px; height: 18px; }
.ew-lp-compact .ew-lp-item.ew-lp-chip { flex-direction: row; align-items: center; gap: 3px; width: auto; min-width: 0; padding: 0 3px; white-space: nowrap; }
.ew-lp-compact .ew-lp-chip .ew-tok { max-width: 9em; min-width: 2.2em; flex: none; overflow: hidden; text-overflow: ellipsis;
  font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace); }
.ew-lp-compact .ew-lp-chip .ew-lp-pct { min-width: 4.2em; text-align: right; font-variant-numeric: tabular-nums; }
.ew-lp-compact .ew-lp-chip .ew-lp-track { width: 28px; flex: none; }
.ew-lp-compact .ew-lp-chip .ew-lp-bar { height: 5px; }
.ew-lp-pick { font-size: 12px; margin-left: 8px; }
/* the heading's token on the line of its words, as a chip (as in the explorer's panel headings) */
.ew-lp-head { display: inline-flex; align-items: baseline; gap: 0.35em; } /* (an inline-block that clips has its baseline at its bottom) */
.ew-lp-head .ew-tok { padding: 0 3px; border-bottom: 0; color: var(--ew-fg); background: var(--ew-bg2); font-weight: 600;
  font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace); }
.ew-toggle { font-size: 12px; display: inline-flex; align-items: center; gap: 4px; margin-left: 8px; }
.ew-toggle[aria-pressed="true"] { box-shadow: inset 0 0 0 2px var(--ew-focus); }

.ew-lp-table { display: grid; gap: 3px 10px; align-items: center; }
.ew-lp-label { font-size: 12px; color: var(--ew-muted); white-space: nowrap; }
.ew-lp-row { display: flex; gap: 6px; }
.ew-lp-item { display: flex; flex-direction: column; width: 92px; padding: 2px 3px; border-radius: 3px; cursor: default; }
.ew-lp-item:focus { outline: none; }
.ew-lp-item:focus-visible, .ew-lp-item:hover { outline: 2px solid var(--ew-focus); }
.ew-lp-item .ew-tok { padding: 0; font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 12px; max-width: 100%; }
.ew-lp-bar { height: 6px; background: var(--ew-bar); border-radius: 1px; min-width: 1px; }
.ew-lp-track { background: var(--ew-bg2); border-radius: 1px; }
.ew-lp-pct { font-size: 10px; color: var(--ew-muted); font-variant-numeric: tabular-nums; }

.ew-heads { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
.ew-head { display: flex; flex-direction: column; gap: 2px; font-size: 11px; color: var(--ew-muted); border-radius: 3px; padding: 2px; border: 1px solid transparent; }
.ew-head.ew-active { border-color: var(--ew-focus); }
.ew-head:focus { outline: none; }
.ew-head:focus-visible { outline: 2px solid var(--ew-focus); }
.ew-head-box { position: relative; }
.ew-head canvas { display: block; image-rendering: pixelated; border: 1px solid var(--ew-border); cursor: crosshair; }
.ew-head-mark { position: absolute; left: 0; right: 0; height: 0; border-top: 1px solid var(--ew-focus); pointer-events: none; }
.ew-context { margin-bottom: 8px; }

/* metric switcher: a segmented button group (aria-pressed), one tab stop */
.ew-seg { display: inline-flex; align-items: center; gap: 0; }
.ew-seg-caption { margin-right: 6px; }
.ew-seg-btn { font: inherit; font-size: 12px; padding: 1px 8px; background: var(--ew-bg); color: var(--ew-fg); border: 1px solid var(--ew-border);
  margin-left: -1px; cursor: pointer; }
.ew-seg-btn:first-of-type { border-radius: 4px 0 0 4px; margin-left: 0; }
.ew-seg-btn:last-of-type { border-radius: 0 4px 4px 0; }
.ew-seg-btn.ew-pressed { background: var(--ew-accent); border-color: var(--ew-accent); color: var(--ew-bg); }
.ew-seg-btn:focus { outline: none; }
.ew-seg-btn:focus-visible { outline: 2px solid var(--ew-focus); outline-offset: 1px; position: relative; }

/* first layer from which the next token stays in the top k: a corner mark on that cell, and a row of labels */
.ew-cell.ew-found { background-image: linear-gradient(135deg, var(--ew-focus) 0, var(--ew-focus) 5px, transparent 5px); }
.ew-found-row { display: flex; font-size: 10px; color: var(--ew-muted); font-variant-numeric: tabular-nums; margin-top: 2px; }
.ew-found-row > span { flex: none; text-align: center; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; border-top: 2px solid var(--ew-focus); cursor: default; }
.ew-found-row > span.ew-never { border-top-color: var(--ew-border); }
.ew-found-row > span.ew-active { color: var(--ew-fg); background: var(--ew-bg2); }
.ew-found-title { font-size: 10px; color: var(--ew-muted); text-align: right; padding-right: 4px; white-space: nowrap; margin-top: 2px; }

/* lens comparison: linked hover across the grids, one summary per lens */
.ew-cell.ew-linked { outline: 2px solid var(--ew-focus); outline-offset: -2px; }
.ew-grid-linked { position: absolute; left: 0; top: 0; pointer-events: none; outline: 2px solid var(--ew-focus); }
.ew-lens-name { font-weight: 600; font-size: 12px; margin: 6px 0 2px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 14em; }
.ew-summary { display: flex; flex-direction: column; padding: 0 8px 0 2px; }
.ew-summary-head { display: flex; gap: 4px; font-size: 10px; color: var(--ew-muted); margin: 6px 0 2px 0; white-space: nowrap; align-self: end; }
.ew-summary-head > span, .ew-summary-row > span { width: 64px; flex: none; }
.ew-summary-row { display: flex; gap: 4px; align-items: center; font-size: 10px; font-variant-numeric: tabular-nums; }
.ew-summary-row.ew-active { background: var(--ew-bg2); }
.ew-sbar { position: relative; display: block; height: 70%; background: var(--ew-bg2); border-radius: 1px; overflow: hidden; }
.ew-sbar-fill { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ew-bar); opacity: 0.55; }
.ew-sbar-val { position: relative; display: block; padding-left: 2px; line-height: 1; white-space: nowrap; }
`;

/**
 * Add the style sheet `css` as <style id=`id`> once to the document, or to the shadow root holding `el` (marimo renders
 * each view in one). Every view and panel injects its sheet through this.
 */
export function injectStyleSheet(el, id, css) {
  if (typeof document === "undefined") return;
  const root = el && typeof el.getRootNode === "function" ? el.getRootNode() : document;
  const isShadow = typeof ShadowRoot !== "undefined" && root instanceof ShadowRoot;
  if (isShadow ? root.querySelector(`#${id}`) : document.getElementById(id)) return;
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  (isShadow ? root : document.head || document.documentElement).appendChild(style);
}

/** Inject the shared stylesheet once into the document (or the shadow root holding `el`). */
export function injectStyles(el) {
  injectStyleSheet(el, STYLE_ID, CSS);
}
