// Styles of the explorer (virtualised token row, turn markers, panels), injected once per document or shadow root
// next to styles.js's sheet.
import { injectStyleSheet } from "./styles.js";

export const EXPLORER_STYLE_ID = "ew-style-explorer-v1";

export const EXPLORER_CSS = `
.ew-tokens.ew-vrow { display: block; position: relative; overflow-y: auto; overflow-x: hidden; border: 1px solid var(--ew-border);
  border-radius: 4px; padding: 2px 4px; }
.ew-tokens.ew-vrow:focus { outline: none; }
.ew-tokens.ew-vrow:focus-visible { outline: 2px solid var(--ew-focus); outline-offset: 1px; }
.ew-vrow-space { position: relative; }
.ew-vrow-line { contain: layout paint style; position: absolute; left: 0; right: 0; height: 24px; display: flex; flex-wrap: nowrap; gap: 2px; align-items: center;
  overflow: hidden; white-space: nowrap; }
.ew-vrow .ew-tok { flex: none; cursor: pointer; }
.ew-vrow .ew-tok[aria-selected="true"] { box-shadow: 0 0 0 2px var(--ew-select); }
.ew-tok.ew-special { opacity: 0.45; font-style: italic; }
/* Paint chunks: every box with its own clip or opacity is a chunk of its own, and a hover's paint, pre-paint and
   layerization cost grows with their number (thousands in a 1,000-token explorer). So in the explorer a token clips
   its text (ellipsis) only when it may be too long (.ew-tok-clip: lib/virtual_tokens.js, lib/panels.js setToken),
   and dimming is a colour with alpha, not opacity. */
.ew-root.ew-view-explorer .ew-tok:not(.ew-tok-clip) { overflow: visible; }
.ew-view-explorer .ew-ws:not(.ew-ws-ctl) { opacity: 1; color: color-mix(in srgb, currentColor 45%, transparent); }
.ew-view-explorer .ew-ws.ew-ws-solo { color: inherit; }
/* dimmed tokens (after the shown one, special ones) in the muted text colour: readable (>= 4.5 : 1), yet set back */
.ew-view-explorer .ew-tok.ew-dim, .ew-view-explorer .ew-tok.ew-special { opacity: 1; color: var(--ew-muted); }
.ew-view-explorer .ew-tok-prompt.ew-dim, .ew-view-explorer .ew-tok-prompt.ew-special { border-bottom-color: color-mix(in srgb, var(--ew-border) 45%, transparent); }
.ew-view-explorer .ew-tok-gen.ew-dim, .ew-view-explorer .ew-tok-gen.ew-special { border-bottom-color: color-mix(in srgb, var(--ew-accent) 45%, transparent); }
.ew-turn-mark { flex: none; width: 68px; margin-right: 4px; font-family: system-ui, sans-serif; font-size: 10px; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--ew-muted); border-left: 3px solid var(--ew-border); padding-left: 4px; }
.ew-turn-mark[data-turn-role="system"] { border-left-color: #999999; }
.ew-turn-mark[data-turn-role="user"] { border-left-color: #0072b2; }
.ew-turn-mark[data-turn-role="assistant"] { border-left-color: #d55e00; }
.ew-ex-status { font-size: 11px; color: var(--ew-muted); margin: 2px 0 6px 0; }
.ew-ex-panels { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
/* contained: a hover rewrites every panel, and each is laid out on its own (not the page) */
.ew-panel { contain: layout paint style; flex: 1 1 300px; min-width: 260px; max-width: 100%; border: 1px solid var(--ew-border); border-radius: 6px; padding: 6px 8px; }
.ew-panel-head { display: flex; gap: 8px; align-items: baseline; justify-content: space-between; margin-bottom: 4px; }
.ew-panel-title { font-weight: 600; font-size: 12px; overflow-wrap: anywhere; }
.ew-panel-title .ew-tok { font-family: var(--jp-code-font-family, ui-monospace, monospace); font-weight: 600; background: var(--ew-bg2); }
.ew-panel-tools select { background: var(--ew-bg); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; font: inherit; font-size: 12px; }
.ew-panel-body { contain: layout paint style; max-height: 380px; overflow: auto; font-size: 12px; }
.ew-ex-item { display: grid; grid-template-columns: minmax(3em, max-content) minmax(0, 10em) 60px max-content max-content; gap: 6px; align-items: center; }
.ew-ex-item .ew-tok { max-width: 10em; overflow: hidden; text-overflow: ellipsis; font-family: var(--jp-code-font-family, ui-monospace, monospace); }
.ew-ex-key { color: var(--ew-muted); white-space: nowrap; }
.ew-ex-val { font-variant-numeric: tabular-nums; text-align: right; }
.ew-ex-track { display: block; height: 6px; background: var(--ew-bg2); border-radius: 1px; overflow: hidden; }
/* a bar paints its first --ew-frac of the track (lib/panels.js setBar): a hover repaints it and lays nothing out */
.ew-ex-bar { display: block; height: 100%;
  background: linear-gradient(to right, var(--ew-fill, var(--ew-bar)) var(--ew-frac, 0%), transparent var(--ew-frac, 0%)); }
.ew-ex-table { display: grid; gap: 1px 6px; align-items: center; }
.ew-ex-layer { color: var(--ew-muted); white-space: nowrap; font-size: 11px; }
.ew-ex-colhead { font-size: 10px; color: var(--ew-muted); }
.ew-ex-table .ew-tok.ew-ex-colhead { min-width: 0; max-width: 100%; }
.ew-ex-cell { display: block; text-align: center; border-radius: 2px; font-variant-numeric: tabular-nums; line-height: 16px; font-size: 11px; }
.ew-ex-num { font-variant-numeric: tabular-nums; font-size: 11px; text-align: right; }
.ew-lp-chip .ew-ex-track { width: 28px; height: 5px; }
/* the layer predictions: chips keep their width (tokens and percentages whole), the panel scrolls sideways and each
   line's layer label stays at its left edge (sticky within its line, which is as wide as its chips) */
.ew-ex-lp { width: max-content; min-width: 100%; font-size: 12px; }
.ew-ex-lp .ew-lp-line { display: flex; flex-wrap: nowrap; align-items: center; gap: 8px; height: 18px; width: max-content; min-width: 100%; }
.ew-ex-lp .ew-ex-lp-layer { position: sticky; left: 0; z-index: 1; flex: none; min-width: 2.4em; padding-right: 4px; background: var(--ew-bg); }
.ew-ex-lp .ew-lp-item.ew-lp-chip { display: flex; flex: none; flex-direction: row; align-items: center; gap: 3px; width: auto; padding: 0 2px;
  white-space: nowrap; }
.ew-ex-lp .ew-lp-chip .ew-tok { flex: none; min-width: 2.2em; max-width: 9em; padding: 0 2px; font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 12px; }
.ew-ex-lp .ew-lp-chip .ew-ex-track { flex: none; }
.ew-ex-lp .ew-lp-pct { flex: none; min-width: 4.2em; text-align: right; font-variant-numeric: tabular-nums; }
/* factor and neuron lines: one grid, so that a label's column is as wide as the longest label (never under a bar) */
.ew-ex-rows { display: grid; gap: 2px 6px; align-items: center; }
.ew-ex-rows > .ew-ex-item { display: contents; }
.ew-ex-factor-rows { grid-template-columns: max-content max-content minmax(32px, 10em) max-content; }
.ew-ex-neuron-rows { grid-template-columns: max-content minmax(32px, 10em) max-content; }
/* the 30 x 5 prediction chips are the explorer's largest layout: lines scrolled out of the panel are skipped */
.ew-panel .ew-lp-line { content-visibility: auto; contain-intrinsic-size: auto 18px; }
.ew-figure .ew-panel .ew-lp-line { content-visibility: visible; }
`;

/** Inject the explorer's stylesheet once into the document (or the shadow root holding `el`). */
export function injectExplorerStyles(el) {
  injectStyleSheet(el, EXPLORER_STYLE_ID, EXPLORER_CSS);
}
