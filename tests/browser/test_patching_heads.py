"""The HeadPatchingGrid of a real ew.patching(points="head") result in Chromium, offline (file://): layers x heads at
the last patched position, the position selector, hover and keyboard, a click that lists that cell's patched top-k
(equal to the Python result's), the dark theme and the SVG / PNG figure."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from zoo import build

import ecco_widgets as ew

CLEAN = [5, 17, 33, 41, 9, 12]
CORRUPTED = [5, 17, 80, 41, 9, 12]
CELLS = "() => Array.from(document.querySelectorAll('.ew-cell')).map(e => [+e.dataset.r, +e.dataset.c])"


@pytest.fixture(scope="module")
def result():
    model = build("llama")
    with torch.no_grad():
        d = model(torch.tensor([CLEAN])).logits[0, -1] - model(torch.tensor([CORRUPTED])).logits[0, -1]
    return ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, int(d.argmax()), int(d.argmin()), points="head",
                       method="both", positions=[2, 5], topk=5, progress=False)


@pytest.fixture()
def page(probe, tmp_path, result):
    probe.open_export(result.grid(), tmp_path / "heads.html")
    yield probe.page
    probe.assert_clean()


def shown_values(page) -> np.ndarray:
    """The value of every cell as its aria-label states it (3 significant digits), (n_layers, n_heads)."""
    cells = page.evaluate(CELLS)
    grid = np.full((max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1), np.nan)
    for r, c in cells:
        grid[r, c] = float(page.get_attribute(f'.ew-cell[data-r="{r}"][data-c="{c}"]', "aria-label").rsplit(" ", 1)[1])
    return grid


def test_layers_by_heads_at_the_last_position_then_the_chosen_one(page, result):
    assert page.locator(".ew-cell").count() == 3 * 4
    assert page.eval_on_selector_all(".ew-patch-head", "s => s.map(e => e.textContent)") == ["h0", "h1", "h2", "h3"]
    last = result.effect[:, :, 1]  # position 5
    np.testing.assert_allclose(shown_values(page), last, rtol=5e-3, atol=1e-3)
    page.select_option(".ew-patch-position", "0")
    assert page.evaluate("() => window.__ewModels[0].get('selected_position')") == 0
    first = result.effect[:, :, 0]  # position 2
    np.testing.assert_allclose(shown_values(page), first, rtol=5e-3, atol=1e-3)
    marked = page.eval_on_selector_all('.ew-patch-prompt[data-prompt="clean"] .ew-tok',
                                       "s => s.flatMap((e, i) => e.classList.contains('ew-active') ? [i] : [])")
    assert marked == [2]
    page.click('.ew-patch-prompt[data-prompt="clean"] .ew-tok[data-column="1"]')
    np.testing.assert_allclose(shown_values(page), result.effect[:, :, 1], rtol=5e-3, atol=1e-3)
    legend = page.query_selector('.ew-legend[data-effect="exact"]')
    assert page.text_content(".ew-legend .ew-legend-mid") == "0"
    assert "centred on 0" in legend.get_attribute("aria-label")


def test_hover_keyboard_and_click_list_the_patched_top_k(page, result):
    page.hover('.ew-cell[data-r="1"][data-c="2"]')
    tip = page.text_content(".ew-tooltip")
    assert "h2" in tip and "position5" in tip.replace(" ", "")
    assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == []
    page.focus('.ew-cell[data-r="0"][data-c="0"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == [1, 1]
    page.click('.ew-cell[data-r="2"][data-c="3"]')
    assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == [2, 3]
    items = page.eval_on_selector_all('.ew-patch-detail [data-run="patched"] .ew-patch-topk-item',
                                      "s => s.map(e => [e.querySelector('.ew-tok').textContent, "
                                      "e.querySelector('.ew-patch-topk-prob').textContent])")
    expected = result.cell_topk(2, 5, head=3)
    assert [t for t, _ in items] == [t for t, _ in expected]
    for (_, shown), (_, prob) in zip(items, expected):
        assert float(shown.strip().rstrip("%")) == pytest.approx(prob * 100, rel=2e-3)
    page.click('.ew-seg-btn[data-effect="attribution"]')
    np.testing.assert_allclose(shown_values(page), result.attribution_effect[:, :, 1], rtol=5e-3, atol=1e-3)


def test_dark_theme_svg_and_png(probe, tmp_path, result):
    view = result.grid(theme="dark", title="heads")
    probe.open_export(view, tmp_path / "dark.html")
    assert probe.page.get_attribute(".ew-root", "data-ew-theme") == "dark"
    neutral = probe.page.eval_on_selector(".ew-root", "e => getComputedStyle(e).backgroundColor")
    assert sum(int(v) for v in neutral[neutral.index("(") + 1:-1].split(",")[:3]) < 3 * 80, neutral
    probe.assert_clean()
    root = ET.parse(view.save_svg(tmp_path / "heads.svg", theme="dark")).getroot()
    assert root.get("data-ew-theme") == "dark"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "heads" in texts and "h3" in texts
    assert any(g.tag.endswith("linearGradient") for g in root.iter()), "the legend's colour bar"
    head = view.save_png(tmp_path / "heads.png", scale=1).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", head[16:24])) > 100
