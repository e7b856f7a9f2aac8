"""The explorer's context-mixing panel in Chromium, on the exported page (file://, offline): the selected explained
token's layers x source-tokens cells equal ``out.context_mixing(method).at(token)`` (per layer, then rolled out, then
another method, switched by the panel's selects), a hover's tooltip names layer, source token and value, a token that
is not explained says so, and a dark page paints alti_logit on the dark diverging scale."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_widgets as ew
import zoo
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61]
TARGETS = [3, 7]
METHODS = ["value_zeroing", "alti_logit", "rollout"]


@pytest.fixture(scope="module")
def case():
    lm = ew.from_pretrained(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))
    out = lm.analyze_ids(IDS, attribution=METHODS, targets=TARGETS)
    return out, out.explore(selected_token=7)


_SETTLED = "() => [...document.querySelectorAll('.ew-root')].every(r => !r.ewExplorer || !r.ewExplorer.pending)"
_CELLS = """() => [...document.querySelectorAll('[data-panel="mixing"] .ew-cell')].map(c =>
  [+c.dataset.r, +c.dataset.c, Number(c.dataset.value), getComputedStyle(c).backgroundColor])"""


def cells(page) -> list:
    page.wait_for_function(_SETTLED, timeout=5000)
    return page.evaluate(_CELLS)


def check(page, out, method: str, k: int, rolled: bool) -> list:
    got = cells(page)
    want = out.context_mixing(method).at(k)[1 if rolled else 0][:, :k]
    assert len(got) == want.size
    grid = np.zeros_like(want)
    for r, c, v, _ in got:
        grid[r, c] = v
    np.testing.assert_allclose(grid, want, rtol=1e-6, atol=1e-7)
    title = page.text_content('[data-panel="mixing"] .ew-panel-title')
    assert f"token {k} " in title and method in title and ("rolled out" if rolled else "per layer") in title
    return got


def test_the_panel_follows_the_token_the_mode_and_the_method(case, probe, tmp_path):
    out, view = case
    probe.open_export(view, tmp_path / "explorer.html")
    page = probe.page
    check(page, out, "value_zeroing", 7, False)
    page.hover('[data-panel="mixing"] .ew-cell[data-r="1"][data-c="2"]')
    tip = page.locator(".ew-tooltip")
    tip.wait_for(state="visible")
    text = tip.text_content()
    v = float(out.context_mixing("value_zeroing").at(7)[0][1, 2])
    assert "layer 1" in text and "source 2" in text and out.tokens[2] in text and f"{v:.3}"[:4] in text
    page.select_option('[data-panel="mixing"] .ew-ex-mix-mode', "rolled")
    check(page, out, "value_zeroing", 7, True)
    page.select_option('[data-panel="mixing"] .ew-ex-mix-method', "1")
    check(page, out, "alti_logit", 7, True)
    page.click('.ew-vrow [data-token-index="3"]')
    check(page, out, "alti_logit", 3, True)
    page.click('.ew-vrow [data-token-index="5"]')
    page.wait_for_function(_SETTLED, timeout=5000)
    assert "token 5 is not explained" in page.text_content('[data-panel="mixing"]') and not cells(page)
    page.focus('.ew-vrow')
    page.keyboard.press("End")
    check(page, out, "alti_logit", 7, True)
    page.focus('[data-panel="mixing"] .ew-cell[tabindex="0"]')  # the grid is one tab stop; arrows move its cell
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.dataset.c") == "1"
    probe.assert_clean()


def test_dark_theme_paints_alti_logit_on_the_dark_diverging_scale(case, probe, tmp_path):
    out, view = case
    view.theme = "dark"
    try:
        probe.open_export(view, tmp_path / "dark.html")
        page = probe.page
        page.select_option('[data-panel="mixing"] .ew-ex-mix-method', "1")
        got = check(page, out, "alti_logit", 7, False)
        theme, bg, fg = page.evaluate("""() => { const p = document.querySelector('[data-panel="mixing"]');
          return [document.querySelector('.ew-root').dataset.ewTheme, getComputedStyle(p).backgroundColor,
            getComputedStyle(p.querySelector('.ew-panel-title')).color]; }""")
        assert theme == "dark"
        lum = lambda c: sum(int(x) for x in c[c.index("(") + 1:c.index(")")].split(",")[:3])  # noqa: E731
        assert lum(fg) > 450 and (bg == "rgba(0, 0, 0, 0)" or lum(bg) < 200)
        top = max(got, key=lambda g: abs(g[2]))  # the strongest cell: a bright end of the dark diverging scale
        assert top[3] == ("rgb(253, 184, 99)" if top[2] > 0 else "rgb(146, 197, 222)")
        probe.assert_clean()
    finally:
        view.theme = "auto"
