"""Issue 30 ("a newcomer's first ten minutes"), the view side, in Chromium on the exported page: the explorer's
layer-predictions panel in a 291 px panel (tokens and percentages whole, the panel scrolls sideways with the layer
labels sticky, the tooltip says "layer"), neuron and factor labels beside their bars (never under them), the lens
heading, positions and tiny probabilities that read as what they are, dimmed tokens and factor colours that contrast
with the background (WCAG ratios computed from the computed styles), a run of newline tokens breaking its line once,
the hovered token marked on every NMF sparkline, and arrow keys after a click on a part of a view that takes no focus
handled by the view (its selection moves) without reaching the page around it.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecco_widgets import views
from ecco_widgets.views import FactorExplorer, LayerPredictions, RankGrid

from ._data import build

TOKENS = ["The", " keys", " to", " the", " cabinet", " are", ":", "\n", "\n", "-", " A", ":", " The", " first",
          " letter", " of", " the", " alphabet"]
N_IN = 6
L = 30
TINY = 7.92e-13  # p(target) at layer 0 after token 5: once shown as "7.92e-11%"


def explorer(theme: str = "light", selected: int = 5) -> views.Explorer:
    rng = np.random.default_rng(30)
    n = len(TOKENS)
    targets = list(range(N_IN, n))
    vocab = [".", ",", " a", " not", "\n", " (", " and", " the", ":", " cabinet"]
    ranks = rng.integers(1, 40, size=(L, n - 1))
    probs = rng.random((L, n - 1)) / 2
    probs[0, 5] = TINY
    neuron_ids = np.stack([np.full((n, 8), 29), rng.integers(1000, 1600, size=(n, 8))], -1)
    neuron_ids[:, 0, 0] = 28
    return views.Explorer(
        tokens=TOKENS, n_input_tokens=N_IN, layer_labels=[str(i) for i in range(L)], targets=targets,
        attributions={"ig": rng.random((len(targets), n)), "grad_x_input": rng.normal(size=(len(targets), n))},
        ranks=ranks, target_probs=probs, topk_vocab=vocab, topk_index=rng.integers(0, len(vocab), size=(L, n, 5)),
        topk_probs=np.sort(rng.random((L, n, 5)) / 5, -1)[..., ::-1], factors=rng.random((8, n)) ** 2,
        factor_labels=[f"Factor {i}" for i in range(8)], neuron_ids=neuron_ids,
        neuron_values=np.sort(rng.random((n, 8)) * 30, -1)[:, ::-1], selected_token=selected, theme=theme,
        title="explorer")


# panels as narrow as JupyterLab 4.6 showed them (291 px)
_NARROW = """() => { const s = document.createElement('style');
  s.textContent = '.ew-panel { flex: 0 0 291px !important; width: 291px !important; min-width: 0 !important; }';
  document.head.appendChild(s); }"""

# WCAG contrast of CSS colours; a colour with alpha is blended over the background first
_CONTRAST = """
const parse = (s) => {
  let m = /rgba?\\(([\\d.]+)[,\\s]+([\\d.]+)[,\\s]+([\\d.]+)(?:[,\\s/]+([\\d.]+))?/.exec(s);
  if (m) return [+m[1], +m[2], +m[3], m[4] == null ? 1 : +m[4]];
  m = /color\\(srgb ([\\d.]+) ([\\d.]+) ([\\d.]+)(?: \\/ ([\\d.]+))?/.exec(s);
  if (m) return [m[1] * 255, m[2] * 255, m[3] * 255, m[4] == null ? 1 : +m[4]];
  throw new Error('cannot parse colour ' + s);
};
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
window.__contrast = (fg, bg) => { const b = parse(bg); const f = parse(fg);
  const c = [0, 1, 2].map((i) => f[i] * f[3] + b[i] * (1 - f[3]));
  const [x, y] = [lum(c), lum(b)]; return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
"""


_TOOLTIP = """() => { const t = document.querySelector('.ew-tooltip');
  return t && !t.hidden && getComputedStyle(t).display !== 'none' ? t.textContent : null; }"""


def _open(probe, view, tmp_path, narrow=False):
    probe.open_export(view, tmp_path / "page.html")
    page = probe.page
    page.evaluate(f"() => {{ {_CONTRAST} }}")
    if narrow:
        page.evaluate(_NARROW)
    return page


def test_layer_predictions_fit_a_narrow_panel_and_scroll_with_sticky_layers(probe, tmp_path):
    page = _open(probe, explorer(), tmp_path, narrow=True)
    got = page.evaluate("""() => {
      const p = document.querySelector('[data-panel=predictions]');
      const body = p.querySelector('.ew-panel-body');
      const width = (e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect().width; };
      const squeezed = [...p.querySelectorAll('.ew-lp-chip .ew-tok, .ew-lp-chip .ew-lp-pct')]
        .filter((e) => e.getBoundingClientRect().width + 0.5 < width(e)).map((e) => e.textContent);
      const overlaps = [];
      for (const line of p.querySelectorAll('.ew-lp-line')) {
        const parts = [...line.querySelectorAll('.ew-lp-chip .ew-tok, .ew-lp-chip .ew-ex-track, .ew-lp-chip .ew-lp-pct')];
        for (let i = 1; i < parts.length; i++) {
          const a = parts[i - 1].getBoundingClientRect(); const b = parts[i].getBoundingClientRect();
          if (a.right > b.left + 0.5) overlaps.push(parts[i - 1].textContent + ' | ' + parts[i].textContent);
        }
      }
      const narrowest = Math.min(...[...p.querySelectorAll('.ew-lp-chip .ew-tok')].map((e) => e.getBoundingClientRect().width));
      return {panel: p.getBoundingClientRect().width, squeezed, overlaps, narrowest, scrolls: body.scrollWidth > body.clientWidth};
    }""")
    assert got["panel"] == pytest.approx(291, abs=1)
    assert not got["squeezed"], f"tokens / percentages narrower than their text: {got['squeezed'][:8]}"
    assert not got["overlaps"], got["overlaps"][:8]
    assert got["narrowest"] >= 20, "a one-character token (',') is a cell of its own, not a few pixels"
    assert got["scrolls"], "five predictions a layer do not fit 291 px: the panel scrolls sideways"
    # scrolled to its right end, every layer's label is still at the panel's left edge, on top of the chips
    sticky = page.evaluate("""() => {
      const p = document.querySelector('[data-panel=predictions]');
      const body = p.querySelector('.ew-panel-body');
      body.scrollLeft = body.scrollWidth;
      const left = body.getBoundingClientRect().left;
      const labels = [...p.querySelectorAll('.ew-lp-line > .ew-ex-layer')];
      return {n: labels.length, left: labels.map((l) => l.getBoundingClientRect().left - left),
              top: labels.filter((l) => { const r = l.getBoundingClientRect();
                const r2 = body.getBoundingClientRect(); if (r.bottom > r2.bottom) return true;
                const at = document.elementFromPoint(r.left + 3, (r.top + r.bottom) / 2); return at === l || l.contains(at); }).length,
              scrolled: body.scrollLeft};
    }""")
    assert sticky["scrolled"] > 100
    assert sticky["n"] == L
    assert max(abs(x) for x in sticky["left"]) < 2, sticky["left"]
    assert sticky["top"] == L, "a layer label is hidden under the chips"
    # the tooltip of a chip names its layer as a layer
    page.evaluate("() => { document.querySelector('[data-panel=predictions] .ew-panel-body').scrollLeft = 0; }")
    page.hover('[data-panel=predictions] .ew-lp-chip[data-layer="14"][data-rank="1"]')
    page.wait_for_function(_TOOLTIP)
    assert page.evaluate(_TOOLTIP).startswith("layer 14, after token 5"), page.evaluate(_TOOLTIP)
    probe.assert_clean()


def test_neuron_and_factor_labels_stay_beside_their_bars(probe, tmp_path):
    page = _open(probe, explorer(), tmp_path, narrow=True)
    got = page.evaluate("""() => {
      const p = document.querySelector('[data-panel=factors]');
      const text = (e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect(); };
      const bad = [];
      let n = 0;
      for (const item of p.querySelectorAll('.ew-ex-item')) {
        const key = [...item.querySelectorAll('.ew-ex-key')].pop();
        const track = item.querySelector('.ew-ex-track');
        n++;
        if (text(key).right > track.getBoundingClientRect().left + 0.5) bad.push(key.textContent);
      }
      const lefts = [...p.querySelectorAll('[data-neuron-rank] .ew-ex-track')].map((t) => t.getBoundingClientRect().left);
      return {n, bad, aligned: new Set(lefts.map(Math.round)).size};
    }""")
    assert got["n"] == 16  # 8 factors, 8 neurons
    assert not got["bad"], f"labels running under their bars: {got['bad']}"
    assert got["aligned"] == 1, "the neurons' bars start at one x"
    probe.assert_clean()


def test_lens_heading_positions_and_tiny_probabilities_read_as_such(probe, tmp_path):
    page = _open(probe, explorer(selected=9), tmp_path)
    got = page.evaluate("""() => ({
      heading: document.querySelector('[data-panel=lens] .ew-panel-title').textContent,
      keys: [...document.querySelectorAll('[data-panel=saliency] .ew-ex-item .ew-ex-key')].map((k) => k.textContent)})""")
    assert "rank of token 10 " in got["heading"] and got["heading"].endswith(" per layer"), got["heading"]
    assert got["keys"] and all(k.startswith("pos ") and k[4:].isdigit() for k in got["keys"]), got["keys"]
    page.click('.ew-vrow .ew-tok[data-token-index="5"]')
    page.wait_for_function("() => document.querySelector('.ew-root').ewExplorer.shown === 5")
    cell = page.evaluate("() => document.querySelector('[data-panel=lens] [data-metric=prob][data-layer=\"0\"]').textContent")
    assert cell == "<0.01%"
    probe.assert_clean()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_dimmed_tokens_and_factor_colours_contrast_with_the_background(theme, probe, tmp_path):
    page = _open(probe, explorer(theme, selected=8), tmp_path)
    got = page.evaluate("""() => {
      const root = document.querySelector('.ew-root');
      const bg = getComputedStyle(root).backgroundColor;
      const dim = [...document.querySelectorAll('.ew-vrow .ew-tok.ew-dim')];
      const swatches = [...document.querySelectorAll('[data-panel=factors] .ew-factor-swatch')];
      return {n: dim.length, dim: Math.min(...dim.map((t) => window.__contrast(getComputedStyle(t).color, bg))),
              swatch: Math.min(...swatches.map((s) => window.__contrast(getComputedStyle(s).backgroundColor, bg)))};
    }""")
    assert got["n"] == len(TOKENS) - 9
    assert got["dim"] >= 4.5, f"dimmed tokens at {got['dim']:.2f} : 1"
    assert got["swatch"] >= 3, f"a factor swatch at {got['swatch']:.2f} : 1"
    probe.assert_clean()
    view = build(FactorExplorer)
    view.theme = theme
    page = _open(probe, view, tmp_path)
    got = page.evaluate("""() => {
      const bg = getComputedStyle(document.querySelector('.ew-root')).backgroundColor;
      const lines = [...document.querySelectorAll('.ew-spark-line')].map((l) => window.__contrast(getComputedStyle(l).stroke, bg));
      const sw = [...document.querySelectorAll('.ew-factor-swatch')].map((s) => window.__contrast(getComputedStyle(s).backgroundColor, bg));
      return {lines, sw};
    }""")
    assert len(got["lines"]) == 4 and min(got["lines"]) >= 3, got
    assert min(got["sw"]) >= 3, got
    probe.assert_clean()


def test_a_run_of_newline_tokens_breaks_its_line_once(probe, tmp_path):
    page = _open(probe, explorer(), tmp_path)
    tops = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.ew-vrow .ew-tok[data-token-index]')]
      .map((t) => [t.dataset.tokenIndex, Math.round(t.getBoundingClientRect().top)]))""")
    assert tops["6"] == tops["7"] == tops["8"], "':' and the two newlines after it share a line"
    assert tops["9"] > tops["8"], "the text after the newlines starts a line"
    assert len(set(tops.values())) == 2
    probe.assert_clean()


def test_hovering_a_token_marks_it_on_every_sparkline(probe, tmp_path):
    page = _open(probe, build(FactorExplorer), tmp_path)
    page.hover('.ew-body .ew-tokens .ew-tok[data-index="4"]')
    marks = page.evaluate("""() => [...document.querySelectorAll('.ew-spark-mark')].map((m) =>
      [m.getAttribute('visibility'), m.getAttribute('x1')])""")
    assert len(marks) == 4
    assert all(v == "visible" for v, _ in marks), marks
    assert len({x for _, x in marks}) == 1, marks
    page.mouse.move(1, 1)
    page.wait_for_function("() => [...document.querySelectorAll('.ew-spark-mark')].every((m) => m.getAttribute('visibility') === 'hidden')")
    probe.assert_clean()


_LISTEN = """() => { window.__outside = [];
  document.body.addEventListener('keydown', (e) => window.__outside.push(e.key));
  document.addEventListener('keydown', (e) => window.__outside.push(e.key)); }"""


def test_arrow_keys_after_a_click_on_a_grid_header_stay_in_the_view(probe, tmp_path):
    page = _open(probe, build(RankGrid), tmp_path)
    page.evaluate(_LISTEN)
    page.click(".ew-axis .ew-tok >> nth=2")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    got = page.evaluate("""() => ({outside: window.__outside, active: document.activeElement.className,
      r: document.activeElement.dataset.r, c: document.activeElement.dataset.c})""")
    assert got["outside"] == [], "the keys reached the page around the view (a notebook moves its active cell)"
    assert "ew-cell" in got["active"] and got["r"] == "2", got
    probe.assert_clean()


def test_arrow_keys_after_a_click_inside_an_explorer_panel_move_its_selection(probe, tmp_path):
    page = _open(probe, explorer(), tmp_path)
    page.evaluate(_LISTEN)
    page.click("[data-panel=lens] .ew-panel-title")
    assert page.evaluate("() => document.querySelector('.ew-root').ewExplorer.shown") == 5
    page.keyboard.press("ArrowDown")
    got = page.evaluate("() => ({outside: window.__outside, shown: document.querySelector('.ew-root').ewExplorer.shown})")
    assert got["outside"] == []
    assert got["shown"] >= 9, "ArrowDown moved the selection to the next line"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("() => window.__outside") == []
    assert page.evaluate("() => document.querySelector('.ew-root').ewExplorer.shown") < 9
    probe.assert_clean()


def test_layer_predictions_view_gives_a_short_token_a_cell(probe, tmp_path):
    view = LayerPredictions(topk_vocab=[".", ",", " a"], topk_index=[[0, 1, 2]] * 4, topk_probs=[[0.5, 0.2, 1e-12]] * 4)
    page = _open(probe, view, tmp_path)
    got = page.evaluate("""() => ({toks: [...document.querySelectorAll('.ew-lp-chip .ew-tok')].map((t) => t.getBoundingClientRect().width),
      pct: [...document.querySelectorAll('.ew-lp-chip .ew-lp-pct')].map((t) => t.textContent)})""")
    assert len(got["toks"]) == 12 and min(got["toks"]) >= 20, got["toks"]
    assert got["pct"][:3] == ["50%", "20%", "<0.01%"]
    probe.assert_clean()


# --------------------------------------------------------------------------- seen in real JupyterLab 4 (issue 30)

# the effective contrast of every newline / space marker of a whitespace-only token: its colour with alpha, times the
# opacity of the marker and its token, blended over the view's background
_WS_CONTRAST = """(sel) => {
  const bg = getComputedStyle(document.querySelector('.ew-root')).backgroundColor;
  return [...document.querySelectorAll(sel)].filter((m) => /^[\\u21b5\\u00b7\\u2192]+$/.test(m.closest('.ew-tok').textContent))
    .map((m) => { let o = 1; for (let e = m; e && !e.classList.contains('ew-root'); e = e.parentElement) o *= +getComputedStyle(e).opacity;
      const c = getComputedStyle(m).color.replace(/\\)$/, '').replace(/^rgb\\(/, 'rgba(');
      const parts = /rgba\\(([\\d.]+)[,\\s]+([\\d.]+)[,\\s]+([\\d.]+)(?:[,\\s/]+([\\d.]+))?/.exec(c + ')');
      const fg = parts ? `rgba(${parts[1]}, ${parts[2]}, ${parts[3]}, ${(parts[4] == null ? 1 : +parts[4]) * o})`
                       : getComputedStyle(m).color.replace(/\\)$/, ` / ${o})`);
      return [m.closest('.ew-tok').textContent, window.__contrast(fg, bg)]; });
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_newline_token_is_as_readable_as_its_neighbours(theme, probe, tmp_path):
    """Real Lab: the explorer's dimmed "\u21b5" tokens after the selection, and "\u21b5" / "\u00b7" predictions in the
    layer-predictions panel, read at 1.7 : 1 (the faint marker of a leading space, on a token that is nothing else)."""
    page = _open(probe, explorer(theme, selected=6), tmp_path)
    row = page.evaluate(_WS_CONTRAST, ".ew-vrow .ew-tok.ew-dim .ew-ws")
    assert len(row) == 2, row  # tokens 7 and 8
    assert min(c for _, c in row) >= 4.5, row
    chips = page.evaluate(_WS_CONTRAST, "[data-panel=predictions] .ew-lp-chip .ew-ws")
    assert chips, "the panel shows newline predictions"
    assert min(c for _, c in chips) >= 4.5, chips[:4]
    probe.assert_clean()
    view = LayerPredictions(topk_vocab=["\n", " ", " cabinet"], topk_index=[[0, 1, 2]] * 3, topk_probs=[[0.5, 0.2, 0.1]] * 3,
                            theme=theme)
    page = _open(probe, view, tmp_path)
    got = page.evaluate(_WS_CONTRAST, ".ew-lp-chip .ew-ws")
    assert len(got) == 6 and min(c for _, c in got) >= 4.5, got
    probe.assert_clean()


_COLUMNS = """(sel) => {
  const lines = [...document.querySelectorAll(sel)].slice(0, 12);
  const K = lines[0].querySelectorAll('.ew-lp-chip').length;
  const cols = [];
  for (let j = 0; j < K; j++) {
    const x = (q, side) => new Set(lines.map((l) => Math.round(l.querySelectorAll('.ew-lp-chip')[j].querySelector(q).getBoundingClientRect()[side])));
    cols.push({bar: [...x('.ew-ex-track, .ew-lp-track', 'left')], pct: [...x('.ew-lp-pct', 'right')]});
  }
  return cols;
}"""


def test_layer_prediction_columns_line_up(probe, tmp_path):
    """Real Lab: a column's bars and percentages moved with the length of each layer's token (' and' vs ',')."""
    page = _open(probe, explorer(), tmp_path)
    cols = page.evaluate(_COLUMNS, "[data-panel=predictions] .ew-lp-line")
    assert len(cols) == 5
    for j, c in enumerate(cols):
        assert len(c["bar"]) == 1 and len(c["pct"]) == 1, f"column {j}: {c}"
    probe.assert_clean()
    vocab = [",", " and", " cabinet", ".", "ing", "0.0868", " couple"]
    rng = np.random.default_rng(3)
    view = LayerPredictions(topk_vocab=vocab, topk_index=rng.integers(0, len(vocab), size=(8, 5)),
                            topk_probs=np.array([[0.95, 0.0236, 0.000868, 0.5, 1e-12]] * 8))
    page = _open(probe, view, tmp_path)
    cols = page.evaluate(_COLUMNS, ".ew-lp-line")
    for j, c in enumerate(cols):
        assert len(c["bar"]) == 1 and len(c["pct"]) == 1, f"column {j}: {c}"
    probe.assert_clean()


def test_layer_predictions_heading_shows_its_token_on_the_line(probe, tmp_path):
    """Real Lab: "position 13, after ·first" had its token raised 3 px off the line, in the prose font, without the chip
    the explorer's headings give a token."""
    view = LayerPredictions(topk_vocab=[".", ","], topk_index=[[0, 1]] * 2, topk_probs=[[0.5, 0.2]] * 2, position=13,
                            context_token=" first")
    page = _open(probe, view, tmp_path)
    got = page.evaluate("""() => {
      const tok = document.querySelector('.ew-controls .ew-tok');
      const r = (n) => { const g = document.createRange(); g.selectNodeContents(n); return g.getBoundingClientRect(); };
      const prose = r(tok.parentElement.firstChild), text = r([...tok.childNodes].pop());
      const s = getComputedStyle(tok);
      return {mid: (text.top + text.bottom) / 2 - (prose.top + prose.bottom) / 2, font: s.fontFamily, bg: s.backgroundColor};
    }""")
    assert abs(got["mid"]) <= 1, f"the token sits {got['mid']:.1f} px off the line of 'position 13, after'"
    assert "mono" in got["font"].lower(), got["font"]
    assert got["bg"] not in ("rgba(0, 0, 0, 0)", "transparent"), "the token is a chip, as in the explorer's headings"
    probe.assert_clean()


def test_arrow_key_in_a_panel_below_the_fold_keeps_the_reader_there(probe, tmp_path):
    """Real Lab: after a click in the lens panel with the token row scrolled out of view, ArrowDown focused the row and
    so scrolled the notebook up to it; the row then lay under the resting pointer, whose hover showed token 0 in every
    panel ("Lens after token 0"), as if the key had moved the selection to the first token."""
    page = _open(probe, explorer(selected=6), tmp_path)
    page.set_viewport_size({"width": 700, "height": 400})
    body = page.locator("[data-panel=predictions] .ew-panel-body").first
    body.scroll_into_view_if_needed()
    body.click(position={"x": 5, "y": 5})
    y0 = page.evaluate("() => window.scrollY")
    assert y0 > 200, "the token row is out of view"
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(200)
    got = page.evaluate("""() => ({y: window.scrollY, shown: document.querySelector('.ew-root').ewExplorer.shown,
      selected: +(document.querySelector('.ew-vrow [aria-selected=true]') || {dataset: {tokenIndex: -1}}).dataset.tokenIndex})""")
    assert abs(got["y"] - y0) < 50, f"the page scrolled from {y0} to {got['y']} px"  # (scroll anchoring: a few px)
    assert got["shown"] > 6 and got["shown"] == got["selected"], got
    # the selected token's tooltip is not pinned to the top of the window, over what the reader looks at (in Lab: over
    # its menu and toolbar), while the token itself is out of view
    assert page.evaluate(_TOOLTIP) is None, page.evaluate(_TOOLTIP)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.keyboard.press("ArrowUp")
    page.wait_for_function(_TOOLTIP)  # in view, a key shows it
    probe.assert_clean()
