"""PromptPairView in the exported page: the differing tokens are marked, hovering shows both prompts' values,
clicking a column shows the saliency of its output token in A and B side by side."""

from __future__ import annotations

import math

import numpy as np

from ecco_widgets import Output, compare

_TOOLTIP = """() => { const t = document.querySelector('.ew-tooltip');
  return t && !t.hidden && getComputedStyle(t).display !== 'none' ? t.textContent : null; }"""
RANKS_A = np.array([[5, 40, 2, 7, 1], [3, 10, 1, 2, 1]], np.int32)
RANKS_B = np.array([[5, 4000, 3, 70, 1, 9], [3, 100, 1, 1, 2, 1]], np.int32)


def _pair():
    """A: 'The key to it is.'; B: 'The keys to <old> it are.' (B has one token more)."""
    tokens_a, raw_a = ["The", " key", " to", " it", " is", "."], ["The", "Ġkey", "Ġto", "Ġit", "Ġis", "."]
    tokens_b = ["The", " keys", " to", " old", " it", " are", "."]
    raw_b = ["The", "Ġkeys", "Ġto", "Ġold", "Ġit", "Ġare", "."]
    ids_a, ids_b = [1, 2, 3, 4, 5, 6], [1, 7, 3, 8, 4, 9, 6]

    def out(tokens, raw, ids, ranks, scale):
        n = len(ids)
        targets = np.array([n - 2, n - 1])
        attr = np.zeros((2, n, 1), np.float32)
        for row, t in enumerate(targets):
            attr[row, :t, 0] = scale * (np.arange(t) + 1)
        return Output(token_ids=np.array(ids), tokens=tokens, raw_tokens=raw, n_input_tokens=n, ranks=ranks,
                      model_name="m", targets=targets, attributions_raw={"grad_x_input": attr})

    return compare(out(tokens_a, raw_a, ids_a, RANKS_A, 1.0), out(tokens_b, raw_b, ids_b, RANKS_B, 2.0))


def test_differing_tokens_are_marked_and_hover_shows_both_values(probe, tmp_path):
    pair = _pair()
    assert pair.alignment.tolist() == [[0, 0], [1, 1], [2, 2], [-1, 3], [3, 4], [4, 5], [5, 6]]
    probe.open_export(pair.view(), tmp_path / "pair.html")
    page = probe.page
    for side in "ab":
        marked = page.eval_on_selector_all(f'.ew-pp-prompt[data-prompt="{side}"] .ew-tok',
                                           "els => els.map(e => e.dataset.differs === '1')")
        assert marked == [False, True, False, True, False, True, False], side
        weight = page.eval_on_selector_all(f'.ew-pp-prompt[data-prompt="{side}"] .ew-tok',
                                           "els => els.map(e => getComputedStyle(e).fontWeight)")
        assert weight[1] != weight[0]  # visibly marked, not only tagged
    # a cell of the differing column 1 (" key" / " keys") at layer 0: ranks 40 and 4000, log10 ratio 2
    page.hover('.ew-cell[data-r="0"][data-c="1"]')
    page.wait_for_function(_TOOLTIP)
    tip = page.evaluate(_TOOLTIP)
    assert "rank in A40" in tip and "rank in B4000" in tip, tip
    assert f"{math.log10(4000 / 40):.3g}" in tip and "differs" in tip
    assert "A token 1\u00b7key" in tip and "B token 1\u00b7keys" in tip  # (a leading space is drawn as "·")
    # the gap column (B's " old"): A has no cell there
    page.hover('.ew-cell[data-r="1"][data-c="3"]')
    page.wait_for_function(f"() => ({_TOOLTIP})() && ({_TOOLTIP})().includes('gap')")
    tip = page.evaluate(_TOOLTIP)
    assert "rank in A\u2013" in tip and "no cell in one prompt" in tip
    # hovering a token shows both prompts' tokens of its column
    page.hover('.ew-pp-prompt[data-prompt="b"] .ew-tok[data-column="5"]')
    page.wait_for_function(f"() => ({_TOOLTIP})() && ({_TOOLTIP})().includes('column 5')")
    tip = page.evaluate(_TOOLTIP)
    assert "\u00b7is" in tip and "\u00b7are" in tip
    probe.assert_clean()


def test_clicking_a_column_shows_both_saliency_rows(probe, tmp_path):
    probe.open_export(_pair().view(), tmp_path / "pair.html")
    page = probe.page
    heads = page.eval_on_selector_all(".ew-pp-sal-head", "els => els.map(e => e.textContent)")
    assert "token 5" in heads[0] and "token 6" in heads[1]  # default: the last column both explain
    page.click('.ew-cell[data-r="0"][data-c="5"]')  # " is" / " are": targets in both
    assert page.evaluate("() => window.__ewModels[0].get('selected')") == 5
    heads = page.eval_on_selector_all(".ew-pp-sal-head", "els => els.map(e => e.textContent)")
    assert '" is"' in heads[0] and '" are"' in heads[1]
    coloured = page.eval_on_selector_all('.ew-pp-sal-row[data-prompt="b"] .ew-tok',
                                         "els => els.map(e => e.classList.contains('ew-colored'))")
    assert coloured == [True] * 5 + [False, False]  # the inputs before " are" (position 5)
    page.click('.ew-cell[data-r="0"][data-c="1"]')  # " key" / " keys": explained in neither
    heads = page.eval_on_selector_all(".ew-pp-sal-head", "els => els.map(e => e.textContent)")
    assert "not explained" in heads[0] and "not explained" in heads[1]
    probe.assert_clean()
