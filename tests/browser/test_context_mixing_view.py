"""The ContextMixingView of a real analysis (random tiny GPT-2, ALTI-Logit) in Chromium, offline (file://): the grid
of the last explained token holds the result's values, hover shows a cell's layer, source and value, a click on an
explained token turns the grid to its row, the switcher to the rolled-out values; dark theme and the SVG / PNG."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from test_foundation import WORDS, ToyTokenizer
from zoo import build

import ecco_widgets as ew

IDS = [5, 17, 33, 2, 99, 140, 7, 61]
TARGETS = [3, 7]
CELLS = ("() => Array.from(document.querySelectorAll('.ew-cm-grid .ew-cell'))"
         ".map(e => [+e.dataset.r, +e.dataset.c, +e.dataset.value])")


@pytest.fixture(scope="module")
def mixing():
    lm = ew.from_pretrained(build("gpt2"), tokenizer=ToyTokenizer(WORDS))
    return lm.analyze_ids(IDS, attribution=["alti_logit"], targets=TARGETS).context_mixing("alti_logit")


@pytest.fixture()
def page(probe, tmp_path, mixing):
    probe.open_export(mixing.view(), tmp_path / "mixing.html")
    yield probe.page
    probe.assert_clean()


def shown(page) -> np.ndarray:
    """The grid's cells' data-value, (n_layers, n_sources)."""
    cells = page.evaluate(CELLS)
    grid = np.full((max(r for r, _, _ in cells) + 1, max(c for _, c, _ in cells) + 1), np.nan)
    for r, c, v in cells:
        grid[r, c] = v
    return grid


def test_hover_shows_the_value_and_a_click_turns_the_grid_to_that_token(page, mixing):
    layers, rolled = mixing.at(7)
    np.testing.assert_array_equal(shown(page), layers[:, :7])  # float32 values, the tokens before token 7
    page.hover('.ew-cm-grid .ew-cell[data-r="1"][data-c="2"]')
    tip = page.text_content(".ew-tooltip")
    assert "layer 1" in tip and "source 2" in tip and "target 7" in tip
    value = float(re.search(r"alti_logit \(per layer\)\s*(\S+)", tip).group(1).replace("\u2212", "-"))
    assert value == pytest.approx(layers[1, 2], rel=5e-3, abs=1e-6)
    page.click('.ew-tokens .ew-tok[data-index="3"]')
    assert page.evaluate("() => window.__ewModels[0].get('selected_token')") == 3
    np.testing.assert_array_equal(shown(page), mixing.at(3)[0][:, :3])
    page.select_option(".ew-cm-mode", "rolled")
    assert page.evaluate("() => window.__ewModels[0].get('mode')") == "rolled"
    np.testing.assert_array_equal(shown(page), mixing.at(3)[1][:, :3])
    # the row: the tokens before the shown one carry the method's score
    scores = page.eval_on_selector_all(".ew-tokens .ew-tok[data-value]", "s => s.map(e => +e.dataset.value)")
    np.testing.assert_array_equal(scores, mixing.score[0, :3])
    page.select_option(".ew-cm-target", "7")  # the selector: back to token 7 (still rolled out)
    assert page.evaluate("() => window.__ewModels[0].get('selected_token')") == 7
    np.testing.assert_array_equal(shown(page), rolled[:, :7])


def test_keyboard_dark_theme_svg_and_png(probe, tmp_path, mixing):
    view = mixing.view(theme="dark", title="mixing")
    probe.open_export(view, tmp_path / "dark.html")
    page = probe.page
    assert page.get_attribute(".ew-root", "data-ew-theme") == "dark"
    page.focus('.ew-cm-grid .ew-cell[data-r="0"][data-c="0"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == [1, 1]
    probe.assert_clean()
    root = ET.parse(view.save_svg(tmp_path / "mixing.svg", theme="dark")).getroot()
    assert root.get("data-ew-theme") == "dark"
    assert "mixing" in [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    head = view.save_png(tmp_path / "mixing.png", scale=1).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", head[16:24])) > 100
