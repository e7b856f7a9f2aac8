"""RankGrid's metric switcher and first_layer row, and LensComparison's linked hover, in Chromium.

Both views on one exported page (file://, offline), and in the host page of ``_harness`` inside a clipping
output area.  Expected values are read from the arrays given to the views, not from the page's code.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecco_widgets.views import LensComparison, RankGrid

from ._data import RAW, TOKENS, lens_comparison

_TOOLTIP = """(scope) => { const t = document.querySelector(scope + ' .ew-tooltip');
  return t && !t.hidden && getComputedStyle(t).display !== 'none' ? t.textContent : null; }"""
_BG = "(sel) => getComputedStyle(document.querySelector(sel)).backgroundColor"


def _grid() -> RankGrid:
    """A 6-layer grid over TOKENS with every metric and a first_layer row (top 3)."""
    rng = np.random.default_rng(3)
    L, P = 6, len(TOKENS) - 1
    ranks = np.ceil(np.exp(rng.random((L, P)) * 6 * (1 - np.arange(L) / L)[:, None])).astype(np.int64)
    ranks[-1] = 1
    ranks[-1, 0] = 4  # position 0 never reaches the top 3
    # the first layer from which the rank stays <= 3 down to the last layer
    first = [next((layer for layer in range(L) if (ranks[layer:, p] <= 3).all()), -1) for p in range(P)]
    return RankGrid(TOKENS, ranks, raw_tokens=RAW, n_input_tokens=5, target_probs=np.clip(1 / ranks, 0, 1),
                    kl_to_final=np.log(ranks) * 0.7, entropy=0.2 + np.log(ranks), first_layer=first,
                    first_layer_k=3, title="grid")


def _lenses() -> LensComparison:
    return lens_comparison(TOKENS, RAW, 5, np.random.default_rng(4), title="lenses")


@pytest.fixture()
def page(probe, tmp_path):
    probe.open_export([_grid(), _lenses()], tmp_path / "lens.html", title="lens views")
    yield probe.page
    probe.assert_clean()


def test_switcher_recolours_the_grid_and_writes_metric(page):
    g = "#ew-view-0"
    buttons = page.eval_on_selector_all(f"{g} .ew-seg-btn", "bs => bs.map(b => [b.dataset.metric, b.getAttribute('aria-pressed')])")
    assert buttons == [["rank", "true"], ["prob", "false"], ["kl", "false"], ["entropy", "false"]]
    cell = f'{g} .ew-cell[data-r="0"][data-c="1"]'
    before = page.evaluate(_BG, cell)
    grid = page.query_selector(f"{g} .ew-grid")
    page.click(f'{g} .ew-seg-btn[data-metric="prob"]')
    assert page.evaluate("() => window.__ewModels[0].get('metric')") == "prob"
    assert page.evaluate(_BG, cell) != before
    assert page.get_attribute(f"{g} .ew-legend", "data-metric") == "prob"
    assert page.get_attribute(f'{g} .ew-seg-btn[data-metric="prob"]', "aria-pressed") == "true"
    assert page.evaluate("(el) => el.isConnected", grid), "recoloured in place, not rebuilt"
    text = page.text_content(cell)
    assert text.endswith("%")
    # keyboard: the pressed button is the tab stop; arrows move, Enter chooses
    page.focus(f'{g} .ew-seg-btn[data-metric="prob"]')
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.dataset.metric") == "kl"
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.__ewModels[0].get('metric')") == "kl"
    assert "nats" in page.text_content(f"{g} .ew-legend-label")


def test_grid_tooltip_lists_metrics_and_the_found_row(page):
    view = _grid()
    g = "#ew-view-0"
    page.hover(f'{g} .ew-cell[data-r="1"][data-c="2"]')
    page.wait_for_function(_TOOLTIP, arg=g)
    tip = page.evaluate(_TOOLTIP, g)
    assert f"rank{view.ranks[1, 2]}" in tip
    assert "p(target)" in tip and "KL to final" in tip and "entropy" in tip and "nats" in tip
    f = int(view.first_layer[2])
    assert f"found at (top 3){'never' if f < 0 else view.layer_labels[f]}" in tip
    labels = page.eval_on_selector_all(f"{g} .ew-found-row > span", "ss => ss.map(s => s.textContent)")
    assert labels == ["\u2013" if f < 0 else view.layer_labels[f] for f in view.first_layer.tolist()]
    marked = page.eval_on_selector_all(f"{g} .ew-cell.ew-found", "cs => cs.map(c => [+c.dataset.r, +c.dataset.c])")
    assert marked == sorted([[f, p] for p, f in enumerate(view.first_layer.tolist()) if f >= 0], key=lambda x: (x[0], x[1]))


def test_hover_in_one_lens_marks_the_other_and_lists_both(page):
    view = _lenses()
    v = "#ew-view-1"
    l, p = 2, 3
    other = f'{v} .ew-grid[data-lens="1"] .ew-cell[data-r="{l}"][data-c="{p}"]'
    assert page.evaluate("(s) => getComputedStyle(document.querySelector(s)).outlineStyle", other) == "none"
    page.hover(f'{v} .ew-grid[data-lens="0"] .ew-cell[data-r="{l}"][data-c="{p}"]')
    page.wait_for_function(_TOOLTIP, arg=v)
    assert page.evaluate("(s) => document.querySelector(s).classList.contains('ew-linked')", other)
    assert page.evaluate("(s) => getComputedStyle(document.querySelector(s)).outlineStyle", other) == "solid"
    tip = page.evaluate(_TOOLTIP, v)
    assert "lens: logit" in tip
    table = page.eval_on_selector_all(f"{v} .ew-tooltip .ew-tt-table > span", "cs => cs.map(c => c.textContent)")
    assert table[:5] == ["lens", "rank", "p(target)", "KL (nats)", "entropy (nats)"]
    assert [table[5], table[6], table[10], table[11]] == ["logit", str(view.ranks[0, l, p]), "tuned", str(view.ranks[1, l, p])]
    # the same scale for both lenses: the legend runs to the largest rank of either lens
    assert page.text_content(f"{v} .ew-legend-max") == str(max(2, int(view.ranks.max())))
    # summaries: one header and one row per layer for each lens; top-1 shares as Python computed them
    heads = page.eval_on_selector_all(f"{v} .ew-summary-head", "hs => hs.map(h => h.textContent)")
    assert heads == ["mean KLtop-1", "mean KLtop-1"]
    top1 = page.eval_on_selector_all(f"{v} .ew-summary-row .ew-sbar:last-child .ew-sbar-val", "vs => vs.map(v => v.textContent)")
    by_hand = [(view.ranks[i, layer] == 1).mean() for i in range(2) for layer in range(view.ranks.shape[1])]
    assert top1 == [f"{round(100 * t)}%" for t in by_hand]
    # the switcher is shared: both grids recolour, the model gets the metric
    before = page.evaluate(_BG, other)
    page.click(f'{v} .ew-seg-btn[data-metric="entropy"]')
    assert page.evaluate("() => window.__ewModels[1].get('metric')") == "entropy"
    assert page.evaluate(_BG, other) != before
    page.click(f'{v} .ew-grid[data-lens="1"] .ew-cell[data-r="1"][data-c="4"]')
    assert page.evaluate("() => window.__ewModels[1].get('selected_cell')") == [1, 4]
    assert page.eval_on_selector_all(f"{v} .ew-cell.ew-selected", "cs => cs.length") == 2


def test_tooltip_stays_inside_a_clipping_output_area(probe, tmp_path):
    """In a notebook output area (overflow: auto) the tooltip of the bottom-right cell is not cut off: it is in
    the top layer (issue 14), inside the viewport, and each of its corners hit-tests to it."""
    probe.open_host(_lenses(), tmp_path / "host.html")
    page = probe.page
    page.evaluate("() => { const h = document.getElementById('host'); h.style.overflow = 'auto'; h.style.maxWidth = '900px'; }")
    n_layers = 6
    sel = f'.ew-grid[data-lens="1"] .ew-cell[data-r="{n_layers - 1}"][data-c="8"]'
    page.hover(sel)
    page.wait_for_function(_TOOLTIP, arg="#host")
    boxes = page.evaluate("""() => {
        const t = document.querySelector('.ew-tooltip'); const b = t.getBoundingClientRect();
        t.style.pointerEvents = 'auto';
        const hits = [[b.left + 2, b.top + 2], [b.right - 2, b.top + 2], [b.left + 2, b.bottom - 2], [b.right - 2, b.bottom - 2]]
          .map(([x, y]) => t.contains(document.elementFromPoint(x, y)));
        t.style.pointerEvents = '';
        return {tip: [b.left, b.top, b.right, b.bottom], hits,
                vw: document.documentElement.clientWidth, vh: document.documentElement.clientHeight}; }""")
    left, top, right, bottom = boxes["tip"]
    assert 0 <= left and right <= boxes["vw"] + 1 and 0 <= top and bottom <= boxes["vh"] + 1, boxes
    assert boxes["hits"] == [True] * 4, boxes
    assert "tuned" in page.evaluate(_TOOLTIP, "#host")
    # a metric set from Python reaches the view without a rebuild
    page.evaluate("() => window.__ewSetFromPython('metric', 'kl')")
    page.wait_for_function("() => document.querySelector('.ew-legend').dataset.metric === 'kl'")
    assert page.get_attribute('.ew-seg-btn[data-metric="kl"]', "aria-pressed") == "true"
    probe.assert_clean()
