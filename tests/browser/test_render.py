"""Every view renders, from the offline export (file://) and from a minimal host page."""

from __future__ import annotations

import pytest

from ._data import ALL_CLASSES, build

IDS = [c.__name__ for c in ALL_CLASSES]


def _root(probe, scope="body"):
    return probe.page.query_selector(f"{scope} .ew-root")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_export_renders(cls, probe, tmp_path):
    view = build(cls, title=f"{cls.__name__} demo")
    probe.open_export(view, tmp_path / f"{cls.__name__}.html")
    root = _root(probe, "#ew-view-0")
    assert root is not None
    assert root.get_attribute("data-ew-view") == cls._bundle
    assert f"{cls.__name__} demo" in root.inner_text()
    box = root.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 30
    probe.screenshot(f"export_{cls.__name__}")
    probe.assert_clean()


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_host_page_renders(cls, probe, tmp_path):
    view = build(cls)
    probe.open_host(view, tmp_path / "host.html")
    root = _root(probe, "#host")
    assert root is not None and root.get_attribute("data-ew-view") == cls._bundle
    assert not probe.page.query_selector("#host .ew-error"), probe.page.inner_text("#host")
    probe.screenshot(f"host_{cls.__name__}")
    probe.assert_clean()


def test_export_all_views_on_one_page(probe, tmp_path):
    views = [build(c, title=c.__name__) for c in ALL_CLASSES]
    probe.open_export(views, tmp_path / "all.html", title="All views")
    for i, cls in enumerate(ALL_CLASSES):
        root = _root(probe, f"#ew-view-{i}")
        assert root is not None and root.get_attribute("data-ew-view") == cls._bundle
    assert probe.page.evaluate("() => window.__ewModels && window.__ewModels.length") == len(ALL_CLASSES)
    probe.screenshot("export_all_views")
    probe.assert_clean()


def test_theme_dark_changes_background(probe, tmp_path):
    light = build(ALL_CLASSES[1], title="light")
    light.theme = "light"
    dark = build(ALL_CLASSES[1], title="dark")
    dark.theme = "dark"
    probe.open_export([light, dark], tmp_path / "themes.html")
    colours = probe.page.evaluate(
        """() => [0, 1].map(i => {
            const r = document.querySelector(`#ew-view-${i} .ew-root`);
            return [getComputedStyle(r).backgroundColor, getComputedStyle(r).color];
        })"""
    )
    assert colours[0] != colours[1], colours
    probe.assert_clean()
