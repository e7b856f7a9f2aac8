"""The prompt pair's direct logit attribution difference in Chromium (exported page, offline): the layers x (heads +
MLP) grid's cells hold prompt A's minus prompt B's shares, equal to two separate ``out.logit_attribution`` calls
subtracted here; hovering a cell names it; the compared column is marked; the SVG figure and a dark page hold it."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_widgets as ew
import zoo

IDS_A = [3, 17, 5, 99, 42, 7, 250, 12]
IDS_B = [3, 17, 5, 98, 42, 7, 250, 12]


@pytest.fixture(scope="module")
def case():
    lm = ew.LanguageModel(zoo.build("llama"))
    a, b = lm.analyze_ids(IDS_A, components=True), lm.analyze_ids(IDS_B, components=True)
    return a, b, ew.compare(a, b).view(target=5, foil=17)


def test_grid_cells_are_the_difference_of_two_calls(case, probe, tmp_path):
    a, b, view = case
    probe.open_export(view, tmp_path / "pair.html")
    page = probe.page
    cells = page.evaluate("""() => [...document.querySelectorAll('.ew-pp-dla .ew-cell')].map(c =>
      [+c.dataset.r, +c.dataset.c, Number(c.dataset.value)])""")
    last = len(IDS_A) - 1
    ra = a.logit_attribution(last, target=5, foil=17, unit="head")
    rb = b.logit_attribution(last, target=5, foil=17, unit="head")
    want = {}
    for r, sign in ((ra, 1.0), (rb, -1.0)):
        n_heads = 1 + max(int(i) for k, i in zip(r.kinds, r.indices) if k == "head")
        for kind, layer, index, v in zip(r.kinds, r.layers, r.indices, r.values.astype(np.float64)):
            if kind in ("head", "mlp"):
                key = (int(layer), int(index) if kind == "head" else n_heads)
                want[key] = want.get(key, 0.0) + sign * v
    assert sorted((r, c) for r, c, _ in cells) == sorted(want)
    np.testing.assert_allclose([v for _, _, v in cells], [want[(r, c)] for r, c, _ in cells], atol=1e-6)
    page.hover('.ew-pp-dla .ew-cell[data-r="1"][data-c="0"]')
    tip = page.wait_for_function("""() => { const t = document.querySelector('.ew-tooltip');
      return t && !t.hidden && t.textContent.includes('head 0') ? t.textContent : null; }""").json_value()
    assert "A \u2212 B" in tip
    marked = page.evaluate("() => [...document.querySelectorAll('.ew-pp-prompt [data-dla=\"1\"]')].map(s => s.dataset.column)")
    assert marked == [str(last), str(last)]
    svg = page.evaluate("() => document.querySelector('.ew-root').ewFigure.svg()")
    assert "Direct logit attribution, prompt A" in svg
    probe.assert_clean()


def test_dark_page(case, probe, tmp_path):
    _, _, view = case
    view.theme = "dark"
    try:
        probe.open_export(view, tmp_path / "dark.html")
        assert probe.page.evaluate("() => document.querySelector('.ew-root').dataset.ewTheme") == "dark"
        assert probe.page.evaluate("() => document.querySelectorAll('.ew-pp-dla .ew-cell').length") > 0
        probe.assert_clean()
    finally:
        view.theme = "auto"
