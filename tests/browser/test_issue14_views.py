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


def test_heatmap_clip_percentile_sets_the_limit_and_counts_the_cells_beyond(probe, tmp_path):
    """Point 3: a few outliers away from token 0 (the sink) no longer set the scale when clip_percentile is given: the
    limit is numpy's percentile of |v| over tokens 1.., the cells beyond are drawn at the ends and counted."""
    rng = np.random.default_rng(1)
    acts = rng.normal(0, 2, size=(5, 106)).astype(np.float32)
    acts[0, 0] = 190.0
    acts[1, 30], acts[2, 60], acts[3, 75] = 80.0, -70.0, 60.0  # outliers inside the scale's columns
    tokens = [f" w{i}" for i in range(106)]
    views = [NeuronHeatmap(tokens=tokens, activations=acts, clip_percentile=99, title="clipped"),
             NeuronHeatmap(tokens=tokens, activations=acts, title="plain")]
    probe.open_export(views, tmp_path / "clip.html")
    page = probe.page
    limit = float(np.percentile(np.abs(acts[:, 1:]), 99, method="inverted_cdf"))
    assert limit < 10  # the outliers are above the 99th percentile
    for v, expected in (("#ew-view-0", limit), ("#ew-view-1", float(np.abs(acts[:, 1:]).max()))):
        lg = page.locator(f"{v} .ew-legend")
        assert float(lg.get_attribute("data-limit")) == pytest.approx(expected, rel=1e-6)
        assert int(lg.get_attribute("data-beyond")) == int((np.abs(acts) > np.float32(expected)).sum())
    text = page.text_content("#ew-view-0 .ew-legend")
    beyond = int((np.abs(acts) > np.float32(limit)).sum())
    assert "99th percentile" in text and f"{beyond} of {acts.size} cells beyond" in text, text
    # every cell beyond the limit is drawn at the end of its sign: the same colour as the largest (smallest) one
    colour = lambda r, c: page.evaluate(  # noqa: E731
        "([r, c]) => getComputedStyle(document.querySelector(`#ew-view-0 .ew-cell[data-r=\"${r}\"][data-c=\"${c}\"]`)).backgroundColor",
        [r, c])
    pos = [(int(r), int(c)) for r, c in zip(*np.nonzero(acts > limit))]
    neg = [(int(r), int(c)) for r, c in zip(*np.nonzero(acts < -limit))]
    assert len({colour(*rc) for rc in pos}) == 1 and len({colour(*rc) for rc in neg}) == 1
    assert colour(*pos[0]) != colour(*neg[0])
    probe.assert_clean()


def test_heatmap_clip_percentile_checked_before_any_drawing():
    from ecco_widgets.errors import InputError

    for bad in (30, 101, float("nan")):
        with pytest.raises(InputError, match="clip_percentile must be a percentile from 50 to 100"):
            NeuronHeatmap(tokens=["a", "b"], activations=np.ones((1, 2)), clip_percentile=bad)


def _lum(rgb) -> float:
    lin = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a, b) -> float:
    hi, lo = sorted([_lum(a), _lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


_RGB = "(s) => getComputedStyle(document.querySelector(s)).backgroundColor.match(/[\\d.]+/g).slice(0, 3).map(Number)"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_saliency_attention_and_heatmap_extremes_stand_out_on_both_themes(theme, probe, tmp_path):
    """Point 8 for the other scales: the strongest input of a saliency row, the strongest key of an attention row and
    both ends of the heatmap's diverging scale have WCAG contrast >= 3 against the view's background, in light and
    dark; the legends say which end is the strongest."""
    from ecco_widgets.views import SaliencyView

    tokens = [" The", " keys", " to", " the", " cabinet", " are", " on", " the"]
    attr = np.full((3, 8), 0.01)
    attr[:, 1] = 1.0  # " keys" the strongest input of every target
    sal = SaliencyView(tokens=tokens, targets=[5, 6, 7], attributions={"ig": attr}, n_input_tokens=5, theme=theme)
    att = np.full((1, 8, 8), 0.02)
    att[0, 6, 2] = 0.9  # query 6 attends to " to"
    att = np.tril(att)
    attention = AttentionView(tokens=tokens, attention=att, exclude_first=False, theme=theme)
    acts = np.zeros((2, 8), dtype=np.float32)
    acts[0, 3], acts[1, 4] = 5.0, -5.0
    heat = NeuronHeatmap(tokens=tokens, activations=acts, exclude_first=False, theme=theme)
    probe.open_export([sal, attention, heat], tmp_path / "themes.html")
    page = probe.page
    tok = lambda v, i: f'{v} .ew-body .ew-tokens .ew-tok[data-index="{i}"]'  # noqa: E731
    checks = [("saliency", "#ew-view-0", tok("#ew-view-0", 1)),  # after hovering target 6
              ("attention", "#ew-view-1", tok("#ew-view-1", 2)),  # after hovering query 6
              ("heatmap +", "#ew-view-2", '#ew-view-2 .ew-cell[data-r="0"][data-c="3"]'),
              ("heatmap -", "#ew-view-2", '#ew-view-2 .ew-cell[data-r="1"][data-c="4"]')]
    for name, v, cell in checks:
        if not name.startswith("heatmap"):
            page.hover(tok(v, 6))
        bg = page.evaluate(_RGB, f"{v} .ew-root")
        got = page.evaluate(_RGB, cell)
        assert _contrast(got, bg) >= 3, (theme, name, got, bg)
        assert page.locator(f"{v} .ew-root").get_attribute("data-ew-theme") == theme
    page.hover(tok("#ew-view-0", 6))
    strong = "brightest" if theme == "dark" else "darkest"
    assert f"the largest {strong}" in page.locator("#ew-view-0 .ew-legend").get_attribute("aria-label")
    # the heatmap's centre (0) stays near the background in both themes: the extremes are what stands out
    assert _contrast(page.evaluate(_RGB, '#ew-view-2 .ew-cell[data-r="0"][data-c="0"]'), page.evaluate(_RGB, "#ew-view-2 .ew-root")) < 1.5
    probe.assert_clean()
