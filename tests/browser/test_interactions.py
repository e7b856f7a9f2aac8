"""Hover, keyboard focus and click-to-select for every view, in the host page and the export."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ecco_widgets.views import (
    AttentionView,
    FactorExplorer,
    LayerPredictions,
    LensComparison,
    NeuronHeatmap,
    RankGrid,
    RankWatch,
    SaliencyView,
)

from ecco_widgets import views

from ._data import ALL_CLASSES, build


@dataclass
class Spec:
    hover: str  # element to hover
    recolours: bool  # hover changes background colours (else only outlines / highlights)
    click: str | None = None  # element to click to commit a selection
    trait: str | None = None
    value: object = None


def tok(i: int) -> str:
    return f'.ew-body .ew-tokens .ew-tok[data-index="{i}"]'


# _data.build: 10 tokens, n_input_tokens = 5 (targets 5..9 for saliency)
SPECS = {
    SaliencyView: Spec(hover=tok(5), recolours=True, click=tok(6), trait="selected_token", value=6),
    RankGrid: Spec(hover='.ew-cell[data-r="2"][data-c="3"]', recolours=False,
                   click='.ew-cell[data-r="1"][data-c="4"]', trait="selected_cell", value=[1, 4]),
    RankWatch: Spec(hover='.ew-cell[data-r="1"][data-c="1"]', recolours=False),
    LayerPredictions: Spec(hover='.ew-lp-item[data-r="2"][data-c="1"]', recolours=False),
    FactorExplorer: Spec(hover='.ew-factor[data-index="2"] svg', recolours=True,
                         click='.ew-factor[data-index="1"]', trait="selected_factor", value=1),
    NeuronHeatmap: Spec(hover='.ew-cell[data-r="3"][data-c="2"]', recolours=True,
                        click='.ew-cell[data-r="5"][data-c="1"]', trait="selected_neuron", value=5),
    AttentionView: Spec(hover=tok(6), recolours=True, click=tok(7), trait="selected_token", value=7),
    LensComparison: Spec(hover='.ew-grid[data-lens="0"] .ew-cell[data-r="2"][data-c="3"]', recolours=False,
                         click='.ew-grid[data-lens="1"] .ew-cell[data-r="1"][data-c="4"]', trait="selected_cell",
                         value=[1, 4]),
}
SPECS[views.PatchingGrid] = Spec(hover='.ew-cell[data-r="2"][data-c="3"]', recolours=False,
                                 click='.ew-cell[data-r="1"][data-c="4"]', trait="selected_cell", value=[1, 4])
SPECS[views.HeadPatchingGrid] = Spec(hover='.ew-cell[data-r="2"][data-c="3"]', recolours=False,
                                     click='.ew-cell[data-r="1"][data-c="4"]', trait="selected_cell", value=[1, 4])
# (the explorer's click selects, it does not toggle: its own tests, tests/browser/test_explorer.py, cover clicks)
SPECS[views.Explorer] = Spec(hover=tok(6), recolours=True)
SPECS[views.PromptPairView] = Spec(hover='.ew-cell[data-r="2"][data-c="3"]', recolours=False,
                                   click='.ew-cell[data-r="1"][data-c="4"]', trait="selected", value=4)
# (the head's attention recolours the tokens; c=4 is the MLP column: its promoted tokens)
SPECS[views.LogitAttributionView] = Spec(hover='.ew-cell[data-r="2"][data-c="3"]', recolours=True,
                                         click='.ew-cell[data-r="1"][data-c="4"]', trait="selected_cell", value=[1, 4])
# (the list shows the selected token's features; latent 7 is among them: hovering it colours the tokens by it)
SPECS[views.FeatureExplorer] = Spec(hover='.ew-fx-feat[data-feature="7"]', recolours=True,
                                    click='.ew-fx-feat[data-feature="7"]', trait="selected_feature", value=7)
# (a context's token before the one it is about: hover outlines it; a click on a card selects its feature)
SPECS[views.FeatureDashboardView] = Spec(hover='.ew-fd-card[data-feature="7"] .ew-fd-top .ew-tok:first-child',
                                         recolours=False, click='.ew-fd-card[data-feature="9"]',
                                         trait="selected_feature", value=9)
# (a cell of the grid: hover shows its value; a click on an explained token chooses it)
SPECS[views.ContextMixingView] = Spec(hover='.ew-cm-grid .ew-cell[data-r="2"][data-c="1"]', recolours=False,
                                      click=tok(8), trait="selected_token", value=8)
SPECS[views.BatchSummary] = Spec(hover='[data-chart="share_rank1"] .ew-chart-hit[data-index="2"]', recolours=False)
CLASSES = ALL_CLASSES  # from ecco_widgets/views/registry.json; each needs a Spec above
IDS = [c.__name__ for c in CLASSES]


def test_every_view_has_an_interaction_spec():
    assert set(SPECS) == set(CLASSES), "add a Spec for each view listed in ecco_widgets/views/registry.json"

_STYLE_SNAPSHOT = """(sel) => Array.from(document.querySelectorAll(sel)).map(e => {
  const s = getComputedStyle(e);
  return [s.backgroundColor, s.outlineStyle + ' ' + s.outlineColor, s.fontWeight, s.boxShadow].join('|');
})"""
_BG_SNAPSHOT = """(sel) => Array.from(document.querySelectorAll(sel)).map(e => getComputedStyle(e).backgroundColor)"""
_TOOLTIP = """() => { const t = document.querySelector('.ew-tooltip');
  return t && !t.hidden && getComputedStyle(t).display !== 'none' ? t.textContent : null; }"""


def _open(probe, view, tmp_path, where):
    if where == "host":
        probe.open_host(view, tmp_path / "host.html")
    else:
        probe.open_export(view, tmp_path / "export.html")


@pytest.mark.parametrize("where", ["host", "export"])
@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_hover_changes_colouring_and_shows_tooltip(cls, where, probe, tmp_path):
    spec = SPECS[cls]
    _open(probe, build(cls), tmp_path, where)
    page = probe.page
    page.mouse.move(0, 0)
    assert page.evaluate(_TOOLTIP) is None
    bg_before = page.evaluate(_BG_SNAPSHOT, ".ew-body *")
    style_before = page.evaluate(_STYLE_SNAPSHOT, ".ew-body *")
    page.hover(spec.hover)
    page.wait_for_function(_TOOLTIP)
    tip = page.evaluate(_TOOLTIP)
    assert tip and tip.strip()
    bg_after = page.evaluate(_BG_SNAPSHOT, ".ew-body *")
    style_after = page.evaluate(_STYLE_SNAPSHOT, ".ew-body *")
    if spec.recolours:
        assert bg_before != bg_after, "hover did not change any background colour"
    else:
        assert style_before != style_after, "hover changed no highlight"
    if where == "host":
        probe.screenshot(f"hover_{cls.__name__}")
    # leaving hides the tooltip again
    page.mouse.move(1, 1)
    page.wait_for_function(f"() => !({_TOOLTIP})()")
    probe.assert_clean()


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_keyboard_focus_shows_value(cls, probe, tmp_path):
    _open(probe, build(cls), tmp_path, "host")
    page = probe.page
    page.mouse.move(0, 0)
    # Tab into the view until a data element has focus and the tooltip shows its value
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate(_TOOLTIP):
            break
    first = page.evaluate(_TOOLTIP)
    assert first, "Tab never focused an element that shows a tooltip"
    focused = page.evaluate("() => document.activeElement && document.activeElement.closest('.ew-root') !== null")
    assert focused
    focus = ("() => document.activeElement.outerHTML.slice(0, 200) + ' ' + "
             "(document.activeElement.getAttribute('aria-activedescendant') || '')")
    before_el = page.evaluate(focus)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"(prev) => ({_TOOLTIP})() !== prev", arg=first)
    second = page.evaluate(_TOOLTIP)
    assert second and second != first
    after_el = page.evaluate(focus)
    assert before_el != after_el or cls is RankGrid  # (canvas grids keep focus on the canvas)
    probe.screenshot(f"focus_{cls.__name__}")
    probe.assert_clean()


SELECTING = [c for c in CLASSES if c in SPECS and SPECS[c].click]


@pytest.mark.parametrize("cls", SELECTING, ids=[c.__name__ for c in SELECTING])
def test_click_syncs_selection_in_host_shim(cls, probe, tmp_path):
    spec = SPECS[cls]
    _open(probe, build(cls), tmp_path, "host")
    probe.page.click(spec.click)
    assert [spec.trait, spec.value] in probe.sets()
    assert probe.saves() >= 1
    assert probe.page.query_selector(f"{spec.click}.ew-selected, .ew-body .ew-selected") is not None
    # click again: toggles the selection off
    probe.page.click(spec.click)
    assert probe.sets()[-1] == [spec.trait, [] if isinstance(spec.value, list) else -1]
    probe.assert_clean()


@pytest.mark.parametrize("cls", SELECTING, ids=[c.__name__ for c in SELECTING])
def test_enter_key_commits_selection(cls, probe, tmp_path):
    spec = SPECS[cls]
    _open(probe, build(cls), tmp_path, "host")
    probe.page.focus(spec.click)
    probe.page.keyboard.press("Enter")
    assert [spec.trait, spec.value] in probe.sets()
    probe.assert_clean()


@pytest.mark.parametrize("cls", SELECTING, ids=[c.__name__ for c in SELECTING])
def test_click_in_export_updates_model(cls, probe, tmp_path):
    spec = SPECS[cls]
    _open(probe, build(cls), tmp_path, "export")
    probe.page.click(spec.click)
    got = probe.page.evaluate("(name) => window.__ewModels[0].get(name)", spec.trait)
    assert got == spec.value
    probe.assert_clean()


def test_python_side_selection_reaches_view(probe, tmp_path):
    """A kernel-side change of selected_cell moves the highlighted cell."""
    _open(probe, build(RankGrid), tmp_path, "host")
    page = probe.page
    page.evaluate("() => window.__ewSetFromPython('selected_cell', [3, 2])")
    page.wait_for_selector('.ew-cell.ew-selected[data-r="3"][data-c="2"]')
    page.evaluate("() => window.__ewSetFromPython('selected_cell', [])")
    page.wait_for_function("() => !document.querySelector('.ew-cell.ew-selected')")
    probe.assert_clean()


def test_saliency_method_switch(probe, tmp_path):
    view = build(SaliencyView)
    _open(probe, view, tmp_path, "host")
    page = probe.page
    before = page.evaluate(_BG_SNAPSHOT, ".ew-body .ew-tok")
    page.select_option("select.ew-method", view.methods[1])
    assert ["method", view.methods[1]] in probe.sets()
    page.wait_for_function(
        "(prev) => JSON.stringify(Array.from(document.querySelectorAll('.ew-body .ew-tok'))"
        ".map(e => getComputedStyle(e).backgroundColor)) !== prev",
        arg=__import__("json").dumps(before),
    )
    probe.assert_clean()


def test_logit_attribution_head_hover_click_and_keys(probe, tmp_path):
    """Hover a head: its value and attended tokens in the tooltip, the tokens coloured by its attention; click: the
    side panel lists its promoted tokens; arrow keys move the cell and never reach the page; Enter selects."""
    view = build(views.LogitAttributionView)
    _open(probe, view, tmp_path, "host")
    page = probe.page
    page.evaluate("() => { window.__keys = []; document.addEventListener('keydown', (e) => window.__keys.push(e.key)); }")
    tokens_bg = "() => Array.from(document.querySelectorAll('.ew-la-tokens .ew-tok')).map(e => e.style.backgroundColor)"
    assert set(page.evaluate(tokens_bg)) == {""}
    page.hover('.ew-cell[data-r="2"][data-c="1"]')
    page.wait_for_function(_TOOLTIP)
    tip = page.evaluate(_TOOLTIP)
    assert "layer 2, head 1" in tip and "attention from token 9" in tip
    assert len(set(page.evaluate(tokens_bg))) > 2
    page.click('.ew-cell[data-r="2"][data-c="1"]')
    items = page.evaluate("() => Array.from(document.querySelectorAll('.ew-la-detail .ew-la-promoted-item .ew-tok'))"
                          ".map(e => e.title)")
    expected = [view.promoted_vocab[i] for i in view.promoted_index[2, 1]]
    assert items == expected
    assert ["selected_cell", [2, 1]] in probe.sets()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => [document.activeElement.dataset.r, document.activeElement.dataset.c]") == ["3", "2"]
    page.keyboard.press("Enter")
    assert probe.sets()[-1] == ["selected_cell", [3, 2]]
    assert page.evaluate("() => window.__keys") == []
    probe.assert_clean()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_logit_attribution_panel_takes_the_whole_line_in_a_narrow_host(probe, tmp_path, theme):
    """In a host ~710 px wide (marimo's column) the "Click a cell" panel wraps under the grid and spans the line,
    not a 260 px column beside an empty area; the curve's first point sits below the column titles; the dashed zero
    line has its "0" under it."""
    view = build(views.LogitAttributionView)
    view.theme = theme
    page = probe.page
    page.set_viewport_size({"width": 730, "height": 900})
    probe.open_export(view, tmp_path / "narrow.html")
    geo = page.evaluate("""() => {
      const r = (s) => document.querySelector(s).getBoundingClientRect();
      const dashed = document.querySelector('svg.ew-la-curve line[stroke-dasharray]').getBoundingClientRect();
      const titles = Array.from(document.querySelectorAll('.ew-la-main .ew-axis-title')).map(e => e.getBoundingClientRect().bottom);
      const first = document.querySelector('svg.ew-la-curve rect[data-point="0"]').getBoundingClientRect();
      const zero = r('.ew-la-zero-label');
      return {row: r('.ew-la-row'), main: r('.ew-la-main'), detail: r('.ew-la-detail'), titles: Math.max(...titles),
              first: first.top, zero: (zero.left + zero.right) / 2, dashed: dashed.left + dashed.width / 2};
    }""")
    assert geo["row"]["width"] < 720
    assert geo["detail"]["top"] >= geo["main"]["bottom"], "the panel wrapped under the grid"
    assert abs(geo["detail"]["width"] - geo["row"]["width"]) <= 1, geo
    assert geo["first"] - geo["titles"] >= 3, geo  # the first point clear of the titles above it
    assert abs(geo["zero"] - geo["dashed"]) <= 1.5, geo
    probe.assert_clean()
