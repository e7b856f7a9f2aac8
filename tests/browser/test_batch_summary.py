"""BatchSummary in Chromium, on the exported page (offline): one bar per layer / distance, heights in the order of
the values, the tooltip of a hovered or key-selected bar gives the value given to the view."""

from __future__ import annotations

import numpy as np
import pytest

from ecco_widgets.views import BatchSummary

_TOOLTIP = """() => { const t = document.querySelector('#ew-view-0 .ew-tooltip');
  return t && !t.hidden && getComputedStyle(t).display !== 'none' ? t.textContent : null; }"""

SHARE = [0.0, 0.125, 0.5, 0.875, 1.0]
FIRST = [0, 1, 3, 3, 1, 0]
KL = [4.5, 3.25, 1.0, 0.5, 0.0]
DIST = np.linspace(0.4, 0.0, 32)


@pytest.fixture()
def page(probe, tmp_path):
    view = BatchSummary(layer_labels=[str(i) for i in range(5)], share_rank1=SHARE, first_layer_counts=FIRST,
                        mean_kl=KL, methods=["ig"], attribution_by_distance=DIST[None], n_prompts=8, n_errors=2,
                        title="summary")
    probe.open_export([view], tmp_path / "summary.html", title="batch")
    yield probe.page
    probe.assert_clean()


def _heights(page, chart):
    return page.eval_on_selector_all(f'#ew-view-0 [data-chart="{chart}"] rect.ew-chart-bar',
                                     "rs => rs.map(r => +r.getAttribute('height'))")


def test_one_bar_per_entry_heights_follow_the_values(page):
    assert len(_heights(page, "share_rank1")) == 5 and len(_heights(page, "first_layer")) == 6
    assert len(_heights(page, "mean_kl")) == 5 and len(_heights(page, "distance_ig")) == 32
    for chart, values in [("share_rank1", SHARE), ("first_layer", FIRST), ("mean_kl", KL)]:
        h = _heights(page, chart)
        assert np.argsort(h, kind="stable").tolist() == np.argsort(values, kind="stable").tolist(), chart
        top = max(values)
        assert h[int(np.argmax(values))] == max(h) and (h[values.index(0)] == 0 if 0 in values else True)
    assert "8 prompts analysed, 2 failed" in page.text_content("#ew-view-0 [data-summary-counts]")


def test_hover_and_keys_show_the_values(page):
    page.hover('#ew-view-0 [data-chart="share_rank1"] .ew-chart-hit[data-index="3"]')
    page.wait_for_function(_TOOLTIP)
    assert "layer 3" in page.evaluate(_TOOLTIP) and "88% of 8" in page.evaluate(_TOOLTIP)
    page.focus('#ew-view-0 [data-chart="first_layer"] .ew-chart-hit[data-index="0"]')
    page.keyboard.press("End")
    page.wait_for_function("() => (document.querySelector('#ew-view-0 .ew-tooltip').textContent || '').includes('never')")
    assert "0 of 8" in page.evaluate(_TOOLTIP)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#ew-view-0 .ew-tooltip').textContent.includes('layer 4')")
    assert "1 of 8" in page.evaluate(_TOOLTIP)
    page.focus('#ew-view-0 [data-chart="mean_kl"] .ew-chart-hit[data-index="2"]')
    page.keyboard.press("Home")
    page.wait_for_function("() => document.querySelector('#ew-view-0 .ew-tooltip').textContent.includes('4.5 nats')")
