"""The PatchingGrid of a real ew.patching result in Chromium, offline (file://): the prompt pair on top, the legend,
and a click that lists that cell's patched top-k, equal to the Python result's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from zoo import build

import ecco_widgets as ew

CLEAN = [5, 17, 33, 41, 9, 12]
CORRUPTED = [5, 17, 80, 41, 9, 12]


@pytest.fixture(scope="module")
def result():
    model = build("gpt2")
    with torch.no_grad():
        d = model(torch.tensor([CLEAN])).logits[0, -1] - model(torch.tensor([CORRUPTED])).logits[0, -1]
    return ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, int(d.argmax()), int(d.argmin()), method="both",
                       topk=5, progress=False)


@pytest.fixture()
def page(probe, tmp_path, result):
    probe.open_export(result.grid(), tmp_path / "patching.html")
    yield probe.page
    probe.assert_clean()


def test_the_prompt_pair_sits_on_top_with_the_differing_token_marked(page, result):
    for name, tokens in (("clean", result.clean_tokens), ("corrupted", result.corrupted_tokens)):
        texts = page.eval_on_selector_all(f'.ew-patch-prompt[data-prompt="{name}"] .ew-tok', "s => s.map(e => e.textContent)")
        assert texts == tokens
        marked = page.eval_on_selector_all(f'.ew-patch-prompt[data-prompt="{name}"] .ew-tok',
                                           "s => s.flatMap((e, i) => e.dataset.differs ? [i] : [])")
        assert marked == result.differing_positions == [2]
    # each prompt token stands over its column of cells
    tok = page.eval_on_selector('.ew-patch-prompt[data-prompt="corrupted"] .ew-tok:nth-child(3)',
                                "e => e.getBoundingClientRect().left")
    cell = page.eval_on_selector('.ew-cell[data-r="0"][data-c="2"]', "e => e.getBoundingClientRect().left")
    assert abs(tok - cell) < 1


def test_legend_is_diverging_around_zero_and_cells_follow_it(page, result):
    legend = page.query_selector('.ew-legend[data-effect="exact"]')
    assert legend is not None
    assert page.text_content(".ew-legend .ew-legend-mid") == "0"
    limit = float(np.abs(result.effect).max())
    assert float(page.text_content(".ew-legend .ew-legend-max")) == pytest.approx(limit, rel=1e-2)
    assert float(page.text_content(".ew-legend .ew-legend-min")) == pytest.approx(-limit, rel=1e-2)
    assert "centred on 0" in legend.get_attribute("aria-label")
    # a cell that nothing changes (before the corruption) is the neutral colour; the strongest is not
    neutral = page.eval_on_selector('.ew-cell[data-r="0"][data-c="0"]', "e => getComputedStyle(e).backgroundColor")
    assert neutral == "rgb(247, 247, 247)"
    l, p = np.unravel_index(np.abs(result.effect).argmax(), result.effect.shape)
    strong = page.eval_on_selector(f'.ew-cell[data-r="{l}"][data-c="{p}"]', "e => getComputedStyle(e).backgroundColor")
    assert strong != neutral


@pytest.mark.parametrize("layer, position", [(1, 4), (2, 5), (0, 2)])
def test_clicking_a_cell_lists_its_patched_top_k(page, result, layer, position):
    page.click(f'.ew-cell[data-r="{layer}"][data-c="{position}"]')
    assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == [layer, position]
    items = page.eval_on_selector_all('.ew-patch-detail [data-run="patched"] .ew-patch-topk-item',
                                      "s => s.map(e => [e.querySelector('.ew-tok').textContent, "
                                      "e.querySelector('.ew-patch-topk-prob').textContent])")
    expected = result.cell_topk(layer, position)
    assert [t for t, _ in items] == [t for t, _ in expected]
    for (_, shown), (_, prob) in zip(items, expected):
        assert float(shown.strip().rstrip("%")) == pytest.approx(prob * 100, rel=2e-3)
    title = page.text_content(".ew-patch-detail-title")
    assert f"position {position}" in title and f"{result.effect[layer, position]:.3g}"[:4] in title
    clean = page.eval_on_selector_all('.ew-patch-detail [data-run="clean"] .ew-tok', "s => s.map(e => e.textContent)")
    assert clean == [result.vocab_text[int(i)] for i in result.clean_topk_ids]


def test_switcher_shows_the_attribution_estimate_and_its_agreement(page, result):
    text = page.text_content(".ew-patch-agreement")
    assert f"Pearson r = {result.agreement['pearson']:.3g}" in text
    cell = '.ew-cell[data-r="1"][data-c="3"]'
    _close(page.text_content(cell), result.effect[1, 3])
    page.click('.ew-seg-btn[data-effect="attribution"]')
    assert page.evaluate("() => window.__ewModels[0].get('shown')") == "attribution"
    assert page.query_selector('.ew-legend[data-effect="attribution"]') is not None
    _close(page.text_content(cell), result.attribution_effect[1, 3])
    page.hover('.ew-cell[data-r="2"][data-c="4"]')
    tip = page.text_content(".ew-tooltip")
    assert "patching" in tip and "attribution estimate" in tip


def _close(text: str, value: float) -> None:
    """A cell's text shows its value to two significant digits (0 below 5e-4)."""
    assert abs(float(text) - float(value)) <= 0.05 * abs(float(value)) + 5e-4, (text, value)
