"""Article-grade views (issue 14, points 1, 2, 6, 8, 10, 12) in Chromium: tooltips that escape a clipping output
area, keys that stay in the view, labels, dark-theme contrast, default-only bundles and static figures.

Expected values come from the arrays given to the views and from WCAG's contrast formula written here.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ecco_widgets.views import AttentionView, RankGrid, RankWatch, SaliencyView

from ._data import ALL_CLASSES, RAW, TOKENS, build

_TIP_VISIBLE = """(scope) => { const t = document.querySelector((scope || '') + ' .ew-tooltip');
  return !!t && !t.hidden && getComputedStyle(t).display !== 'none'; }"""

# every corner of the tooltip (2 px inside) hit-tests to the tooltip itself: nothing clips or covers it
_CORNERS = """() => {
  const t = document.querySelector('.ew-tooltip');
  t.style.pointerEvents = 'auto';  // (pointer-events: none elements are skipped by hit testing)
  const b = t.getBoundingClientRect();
  const pts = [[b.left + 2, b.top + 2], [b.right - 2, b.top + 2], [b.left + 2, b.bottom - 2], [b.right - 2, b.bottom - 2]];
  const hits = pts.map(([x, y]) => { const e = document.elementFromPoint(x, y); return !!e && t.contains(e); });
  t.style.pointerEvents = '';
  return {hits, box: [b.left, b.top, b.width, b.height]};
}"""


def _wrap_in_output_area(page, target: str, height: int = 120) -> None:
    """Put the view inside a notebook-like output area: ``height`` px, overflow auto."""
    page.evaluate(
        """([sel, h]) => { const v = document.querySelector(sel); const w = document.createElement('div');
        w.className = 'jp-OutputArea-output'; w.style.cssText = `height: ${h}px; overflow: auto; border: 1px solid #999`;
        v.parentNode.insertBefore(w, v); w.appendChild(v); }""",
        [target, height],
    )


@pytest.mark.parametrize("cls", [RankGrid, SaliencyView], ids=["RankGrid", "SaliencyView"])
def test_tooltip_escapes_a_120px_output_area(cls, probe, tmp_path):
    """Point 1: in a 120 px overflow:auto output area the whole tooltip is visible (taller than the area)."""
    probe.open_export(build(cls), tmp_path / "clip.html")
    page = probe.page
    _wrap_in_output_area(page, "#ew-view-0")
    target = '.ew-cell[data-r="1"][data-c="2"]' if cls is RankGrid else '.ew-tok[data-index="8"]'
    page.locator(target).scroll_into_view_if_needed()
    page.hover(target)
    page.wait_for_function(_TIP_VISIBLE)
    got = page.evaluate(_CORNERS)
    assert got["box"][3] > 120, f"the tooltip should be taller than the area for this test: {got}"
    assert got["hits"] == [True] * 4, got
    probe.assert_clean()


def test_keys_a_view_handles_do_not_reach_the_page(probe, tmp_path):
    """Point 2: arrow keys on a token / a grid cell move inside the view and never reach a document listener
    (JupyterLab's and Notebook 7's shortcuts listen on the document, bubbling)."""
    probe.open_export([build(AttentionView), build(RankGrid)], tmp_path / "keys.html")
    page = probe.page
    page.evaluate("() => { window.__keys = []; document.addEventListener('keydown', (e) => window.__keys.push(e.key)); }")
    page.focus('#ew-view-0 .ew-tokens .ew-tok[data-index="0"]')
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.dataset.index") == "1"
    page.focus('#ew-view-1 .ew-cell[data-r="0"][data-c="0"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => [document.activeElement.dataset.r, document.activeElement.dataset.c]") == ["1", "1"]
    assert page.evaluate("() => window.__keys") == []
    # a key the view does not handle still reaches the page (e.g. Shift+Enter runs a cell)
    page.keyboard.press("Shift+Enter")
    assert page.evaluate("() => window.__keys") == ["Shift", "Enter"]
    probe.assert_clean()


def _numeric_grid() -> RankGrid:
    rng = np.random.default_rng(5)
    n = len(TOKENS)
    ranks = rng.integers(1, 500, size=(4, n - 1))
    ranks[-1] = 1
    return RankGrid(TOKENS, ranks, raw_tokens=RAW, n_input_tokens=5, layer_labels=[str(i) for i in range(4)],
                    topk_vocab=[" a", " b", " c"], topk_index=rng.integers(0, 3, size=(4, n - 1, 3)),
                    topk_probs=np.full((4, n - 1, 3), 0.2))


def test_labels_layer_titles_headlines_and_positions(probe, tmp_path):
    """Point 6: "layer" axis titles, "layer 2" / "top 3 at layer 2" headlines, saliency keys that name positions."""
    sal = build(SaliencyView)
    probe.open_export([_numeric_grid(), build(RankWatch), sal], tmp_path / "labels.html")
    page = probe.page
    for v in ("#ew-view-0", "#ew-view-1"):
        assert page.locator(f"{v} .ew-layer-title").inner_text().startswith("layer")
    page.hover('#ew-view-0 .ew-cell[data-r="2"][data-c="1"]')
    page.wait_for_function(_TIP_VISIBLE)
    lines = page.eval_on_selector_all("#ew-view-0 .ew-tooltip .ew-tt-line", "ls => ls.map(l => l.textContent)")
    assert lines == ["layer 2", "top 3 at layer 2"]
    page.mouse.move(0, 0)
    page.hover('#ew-view-2 .ew-tok[data-index="7"]')
    page.wait_for_function(_TIP_VISIBLE, arg="#ew-view-2")
    keys = page.eval_on_selector_all("#ew-view-2 .ew-tooltip .ew-tt-key", "ks => ks.map(k => k.textContent)")
    row = sal.attributions[0, list(sal.targets).index(7), :7]
    strongest = int(np.argmax(np.abs(row)))
    assert f"pos {strongest}" in keys, keys  # a position, not "#6" (which reads like a rank; issue 30)
    assert not any(re.fullmatch(r"\d+", k) for k in keys), keys
    probe.assert_clean()


def test_layer_labels_stay_and_cut_headers_show_whole(probe, tmp_path):
    """Point 6: layer labels stay in view when a long grid scrolls sideways; a cut column header is shown
    whole while its column is hovered."""
    toks = ["The"] + [" airport" + str(i) for i in range(40)]
    ranks = np.arange(1, 4 * 40 + 1).reshape(4, 40)
    probe.open_export(RankGrid(toks, ranks), tmp_path / "wide.html")
    page = probe.page
    page.set_viewport_size({"width": 700, "height": 700})
    page.evaluate("() => { document.querySelector('.ew-scroll').scrollLeft = 600; }")
    assert page.evaluate("() => document.querySelector('.ew-scroll').scrollLeft") > 500
    # each layer label is still at the left edge of the scrolled area, on top (hit-tests to itself)
    got = page.evaluate("""() => { const s = document.querySelector('.ew-scroll').getBoundingClientRect();
        return [...document.querySelectorAll('.ew-rowlabels > span')].map((l) => { const b = l.getBoundingClientRect();
          const e = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
          return [b.left >= s.left - 1 && b.right <= s.left + 80, e === l]; }); }""")
    assert got == [[True, True]] * 4, got
    cell = page.locator('.ew-cell[data-r="0"][data-c="15"]')
    cell.scroll_into_view_if_needed()
    span = '.ew-axis-top .ew-tok:nth-child(16)'
    assert page.evaluate("(s) => { const e = document.querySelector(s); return e.scrollWidth > e.clientWidth; }", span), "cut"
    cell.hover()
    full = page.locator(".ew-axis-top .ew-axis-full")
    full.wait_for()
    assert full.text_content() == "\u00b7airport15"  # the whole token, its leading space as the marker
    assert full.bounding_box()["width"] > page.locator(span).bounding_box()["width"]
    probe.assert_clean()


def _lum(rgb: tuple[float, ...]) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])


def _contrast(a: str, b: str) -> float:
    ca, cb = (tuple(float(x) for x in re.findall(r"[\d.]+", c)[:3]) for c in (a, b))
    hi, lo = sorted([_lum(ca), _lum(cb)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_rank_one_stands_out_from_the_background(theme, probe, tmp_path):
    """Point 8: the rank-1 colour (grid and watch view) against the view's background: WCAG contrast >= 3."""
    grid = build(RankGrid)
    grid.theme = theme
    watch = RankWatch(TOKENS, [" a", " b"], np.array([[1, 40], [3, 1]]), theme=theme)
    probe.open_export([grid, watch], tmp_path / "contrast.html")
    page = probe.page
    for v, cell in (("#ew-view-0", '.ew-cell[data-r="5"][data-c="0"]'), ("#ew-view-1", '.ew-cell[data-r="0"][data-c="0"]')):
        assert page.locator(f"{v} {cell}").text_content() == "1"
        bg = page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", f"{v} .ew-root")
        one = page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", f"{v} {cell}")
        assert _contrast(one, bg) >= 3, (theme, v, one, bg)
        assert page.locator(f"{v} .ew-root").get_attribute("data-ew-theme") == theme
    note = page.locator("#ew-view-0 .ew-legend").get_attribute("aria-label")
    assert ("rank 1 brightest" if theme == "dark" else "rank 1 darkest") in note
    probe.assert_clean()


def test_bundles_export_only_default(probe, tmp_path):
    """Point 10: every view bundle's module namespace is {default} (no named render: anywidget's deprecated path)."""
    from ecco_widgets.views.base import read_bundle

    probe.page.goto("about:blank")
    for cls in ALL_CLASSES:
        keys = probe.page.evaluate(
            "async (src) => Object.keys(await import(URL.createObjectURL(new Blob([src], {type: 'text/javascript'}))))",
            read_bundle(cls._bundle))
        assert keys == ["default"], (cls.__name__, keys)


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_save_svg_and_png(theme, tmp_path):
    """Point 12: the SVG parses as XML and holds the token texts and the legend; the PNG has the view's size."""
    grid = build(RankGrid, title="figure")
    svg_path = grid.save_svg(tmp_path / "grid.svg", theme=theme)
    root = ET.parse(svg_path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get(f"data-ew-theme") == theme
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for t in TOKENS[1:-1]:
        assert t.strip() in texts, (t, texts[:40])
    assert "rank of the next token" in texts and "figure" in texts
    assert any(g.tag.endswith("linearGradient") for g in root.iter()), "the legend's colour bar"
    assert not any(t in ("SVG", "PNG") for t in texts), "the figure buttons are left out"
    png = grid.save_png(tmp_path / "grid.png", theme=theme, scale=1)
    w, h = _png_size(png)
    assert abs(w - int(root.get("width"))) <= 1 and abs(h - int(root.get("height"))) <= 1, (w, h, root.attrib)
    w2, h2 = _png_size(grid.save_png(tmp_path / "grid2.png", theme=theme, scale=2))
    assert abs(w2 - 2 * w) <= 2 and abs(h2 - 2 * h) <= 2


def test_figure_button_downloads_an_svg(probe, tmp_path):
    """Point 12: the view's own SVG button downloads the figure."""
    probe.open_export(build(SaliencyView), tmp_path / "button.html")
    page = probe.page
    page.hover(".ew-root")
    with page.expect_download() as dl:
        page.click('.ew-fig-btn[data-figure="svg"]')
    path = dl.value.path()
    root = ET.parse(path).getroot()
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "quick" in "".join(texts) and any("attribution" in t for t in texts)
    probe.assert_clean()


def test_figure_chromium_flags_match_the_shared_ones():
    """ecco_widgets/views/figure.py cannot import tools/; its flags are tools/chromium.py's."""
    from ecco_widgets.views.figure import CHROMIUM_ARGS
    from tools.chromium import CHROMIUM_ARGS as SHARED

    assert CHROMIUM_ARGS == SHARED


def test_figure_button_downloads_a_png(probe, tmp_path):
    """Point 12: the PNG button draws the figure's SVG at 2 px per CSS pixel (a canvas grid included)."""
    from ._data import big_rank_grid

    probe.open_export(big_rank_grid(n_layers=8, n_tokens=600), tmp_path / "png.html")
    page = probe.page
    assert page.locator(".ew-grid-canvas").count() == 1
    svg = page.evaluate("() => document.querySelector('.ew-root').ewFigure.svg()")
    root = ET.fromstring(svg)
    assert any(e.tag.endswith("image") for e in root.iter()), "the canvas is in the SVG as an image"
    page.hover(".ew-root")
    with page.expect_download() as dl:
        page.click('.ew-fig-btn[data-figure="png"]')
    out = tmp_path / "fig.png"
    out.write_bytes(open(dl.value.path(), "rb").read())
    w, h = _png_size(out)
    assert (w, h) == (2 * int(root.get("width")), 2 * int(root.get("height")))
    probe.assert_clean()
