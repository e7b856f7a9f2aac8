"""RankGrid at 48 layers x 1,000 tokens: canvas mode, hover tooltip, keyboard."""

from __future__ import annotations

import pytest

from ._data import big_rank_grid

_TOOLTIP = """() => { const t = document.querySelector('.ew-tooltip');
  if (!t || t.hidden) return null;
  return Array.from(t.children).map(r => Array.from(r.childNodes).map(n => n.textContent).join(' ')).join('\\n'); }"""


@pytest.fixture(scope="module")
def grid():
    return big_rank_grid(48, 1000)


@pytest.mark.parametrize("where", ["export", "host"])
def test_big_rank_grid_canvas_and_tooltip(grid, where, probe, tmp_path):
    if where == "export":
        probe.open_export(grid, tmp_path / "big.html")
    else:
        probe.open_host(grid, tmp_path / "big_host.html")
    page = probe.page
    assert page.query_selector(".ew-grid.ew-grid-canvas canvas") is not None
    assert len(page.query_selector_all(".ew-cell")) == 0  # no 48,000 DOM cells
    box = page.query_selector(".ew-grid-canvas canvas").bounding_box()
    assert box["width"] > 1000 and box["height"] > 48 * 5
    cell_w = box["width"] / 999
    cell_h = box["height"] / 48
    for layer, pos in [(10, 20), (47, 3), (0, 60)]:
        x = box["x"] + (pos + 0.5) * cell_w
        y = box["y"] + (layer + 0.5) * cell_h
        page.mouse.move(x, y)
        page.wait_for_function(_TOOLTIP)
        tip = page.evaluate(_TOOLTIP)
        assert f"position {pos}\n" in tip, tip
        assert f"\nrank {grid.ranks[layer, pos]}\n" in tip, (tip, grid.ranks[layer, pos])
        assert grid.layer_labels[layer] in tip
    if where == "export":
        probe.screenshot("big_rank_grid_hover")
    # keyboard: focus the canvas grid and move with the arrows
    page.mouse.move(0, 0)
    page.focus(".ew-grid-canvas")
    first = page.evaluate(_TOOLTIP)
    assert first and "position 0\n" in first
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    second = page.evaluate(_TOOLTIP)
    assert "position 1\n" in second and second.startswith(grid.layer_labels[1] + "\n")
    page.keyboard.press("Enter")
    if where == "host":
        assert ["selected_cell", [1, 1]] in probe.sets()
    else:
        assert page.evaluate("() => window.__ewModels[0].get('selected_cell')") == [1, 1]
    probe.assert_clean()
