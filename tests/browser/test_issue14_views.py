"""Issue 14 in Chromium (points 3, 4, 5, 7): the neuron heatmap's labelled, aligned columns, robust scale and named
column in view; the attention sink toggle; the factor explorer's isolation; layer predictions' height for 30 layers.

Each view is rendered on an exported page (file://, offline); expected values come from the arrays given here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecco_widgets.views import AttentionView, FactorExplorer, LayerPredictions, NeuronHeatmap


def _heatmap(n_tokens: int = 106, focus: int = 90) -> NeuronHeatmap:
    """Five neurons over 106 tokens with a 190 outlier at token 0 (the sink), as in notebook 03's last cell."""
    rng = np.random.default_rng(0)
    acts = rng.normal(0, 2, size=(5, n_tokens)).astype(np.float32)
    acts[0, 0] = 190.0
    tokens = [f" w{i}" for i in range(n_tokens)]
    return NeuronHeatmap(tokens=tokens, activations=acts, focus_token=focus, title="heatmap")


def test_heatmap_labels_align_with_columns_scale_ignores_the_sink_and_focus_column_is_visible(probe, tmp_path):
    view = _heatmap()
    probe.open_export([view], tmp_path / "heat.html")
    page = probe.page
    page.set_viewport_size({"width": 900, "height": 700})
    geo = page.evaluate("""() => {
      const labels = [...document.querySelectorAll('.ew-heat-axis > .ew-tok')].map(e => e.getBoundingClientRect());
      const row = [...document.querySelectorAll('.ew-cell[data-r="2"]')].map(e => e.getBoundingClientRect());
      return {labels: labels.map(r => r.left + r.width / 2), cells: row.map(r => r.left + r.width / 2)};
    }""")
    assert len(geo["labels"]) == len(geo["cells"]) == 106
    assert max(abs(a - b) for a, b in zip(geo["labels"], geo["cells"])) <= 1.0
    legend = page.text_content(".ew-legend")
    limit = float(np.abs(view.activations[:, 1:]).max())
    assert page.text_content(".ew-legend-max") == f"{limit:.3g}"
    assert "set aside" in legend and "up to 190" in legend
    # a cell at half the (robust) limit is visibly coloured, not near-white as under a +-190 scale
    half = page.evaluate("""() => {
      const c = getComputedStyle(document.querySelector('.ew-cell[data-r="1"][data-c="5"]')).backgroundColor;
      return c.match(/\\d+/g).slice(0, 3).map(Number);
    }""")
    v = float(view.activations[1, 5])
    if abs(v) > limit / 3:
        assert min(half) < 200, (v, half)
    # the focus column (90) is scrolled into the visible part of the scroller
    vis = page.evaluate("""() => {
      const s = document.querySelector('.ew-heat').parentNode.getBoundingClientRect();
      const c = document.querySelector('.ew-cell[data-r="0"][data-c="90"]').getBoundingClientRect();
      return [s.left, s.right, c.left, c.right];
    }""")
    assert vis[0] <= vis[2] and vis[3] <= vis[1], vis
    # scrolled to column 90, the row labels are still on screen at the scroller's left edge (sticky)
    lab = page.evaluate("""() => {
      const s = document.querySelector('.ew-heat').parentNode;
      const r = document.querySelectorAll('.ew-heat .ew-rowlabels > span')[2].getBoundingClientRect();
      return [s.scrollLeft, s.getBoundingClientRect().left, r.left, r.width];
    }""")
    assert lab[0] > 0 and lab[3] > 0 and abs(lab[2] - lab[1]) < 12, lab
    probe.assert_clean()


def test_attention_sink_toggle(probe, tmp_path):
    n = 6
    att = np.tril(np.ones((2, n, n), np.float32))
    att[:, :, 0] += 8  # the sink takes most of every row
    att /= att.sum(-1, keepdims=True)
    probe.open_export([AttentionView(tokens=[f"t{i}" for i in range(n)], attention=att)], tmp_path / "att.html")
    page = probe.page
    assert page.get_attribute("button.ew-exclude-first", "aria-pressed") == "true"
    assert "set aside" in page.text_content(".ew-legend")
    page.hover(".ew-tokens > .ew-tok:nth-child(5)")
    colour = page.evaluate("() => [...document.querySelectorAll('.ew-tokens > .ew-tok')].map(e => e.style.backgroundColor)")
    assert colour[0] == "" and all(colour[1:5])
    page.click("button.ew-exclude-first")
    assert page.get_attribute("button.ew-exclude-first", "aria-pressed") == "false"
    assert page.evaluate("() => window.__ewModels[0].get('exclude_first')") is False
    assert "set aside" not in page.text_content(".ew-legend")
    probe.assert_clean()


def test_factor_explorer_hover_dims_the_other_sparklines(probe, tmp_path):
    rng = np.random.default_rng(1)
    view = FactorExplorer(tokens=[f"t{i}" for i in range(20)], factors=rng.random((4, 20)), excluded_tokens=[0])
    probe.open_export([view], tmp_path / "fac.html")
    page = probe.page
    strokes = page.eval_on_selector_all(".ew-spark-line", "ls => ls.map(l => getComputedStyle(l).stroke)")
    assert len(set(strokes)) == 4
    page.hover(".ew-factor:nth-child(2) svg")
    opacity = page.eval_on_selector_all(".ew-factor", "rs => rs.map(r => Number(getComputedStyle(r).opacity))")
    assert opacity[1] == 1 and all(o < 0.5 for i, o in enumerate(opacity) if i != 1)
    assert "left out of the factorisation" in page.text_content(".ew-legend")
    probe.assert_clean()


@pytest.mark.parametrize("k", [5, 10])
def test_layer_predictions_for_30_layers_is_compact(probe, tmp_path, k):
    L = 30
    vocab = [f" tok{i}" for i in range(40)]
    idx = np.arange(L * k).reshape(L, k) % len(vocab)
    probs = np.sort(np.random.default_rng(2).random((L, k)), axis=1)[:, ::-1] / k
    view = LayerPredictions(topk_vocab=vocab, topk_index=idx, topk_probs=probs.astype(np.float32), position=5,
                            context_token=" are", title="layers")
    probe.open_export([view], tmp_path / "lp.html")
    page = probe.page
    height = page.evaluate("() => document.querySelector('.ew-lp-table').getBoundingClientRect().height")
    assert height <= 650, height  # was about 1,450 px
    tops = page.eval_on_selector_all(".ew-lp-line", "ls => ls.map(l => l.getBoundingClientRect().top)")
    assert len(set(round(t) for t in tops)) == L  # one line per layer
    page.select_option("select.ew-lp-pick", "last 8")
    shown = page.eval_on_selector_all(".ew-lp-line", "ls => ls.filter(l => l.getBoundingClientRect().height > 0).length")
    assert shown == 8
    probe.assert_clean()
