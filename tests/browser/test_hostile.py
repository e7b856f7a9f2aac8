"""Hostile tokens and labels through every view, in the export and in the host page.

They must show up as literal text: no element is created from them, no script runs,
no dialog opens, nothing is fetched and the console stays clean.
"""

from __future__ import annotations

import pytest

from ._data import ALL_CLASSES, HOSTILE, HOSTILE_LITERAL, hostile

IDS = [c.__name__ for c in ALL_CLASSES]

_DOM_REPORT = """(scope) => {
  const root = document.querySelector(scope);
  const inView = (sel) => root ? root.querySelectorAll(sel).length : -1;
  return {
    scripts: document.querySelectorAll('script').length,
    img: document.querySelectorAll('img').length,
    inViewBad: inView('img, script, b, iframe, object, embed, svg image, a[href]'),
    text: root ? root.textContent : '',
    attrs: root ? Array.from(root.querySelectorAll('*')).flatMap(e =>
        ['title', 'aria-label'].map(a => e.getAttribute(a) || '')).join('\\n') : '',
    pwned: window.__pwned || null,
  };
}"""


def _check(probe, scope, expected_scripts):
    rep = probe.page.evaluate(_DOM_REPORT, scope)
    assert rep["img"] == 0, "an <img> element was created"
    assert rep["inViewBad"] == 0, "markup from data became elements"
    assert rep["scripts"] == expected_scripts
    assert rep["pwned"] is None
    body_text = probe.page.evaluate(f"() => document.querySelector('{scope} .ew-body').textContent")
    # the short hostile strings are shown whole, as text (labels / vocab / tokens)
    seen = body_text + "\n" + rep["attrs"]
    for s in ("<img src=x onerror=alert(1)>", "<b>bold</b>", "{{7*7}}"):
        assert s in seen, f"{s!r} not shown literally"
    # the title (hostile too) is literal text
    assert HOSTILE[0] in probe.page.evaluate(f"() => document.querySelector('{scope} .ew-title').textContent")
    return rep


def _hover_everything(probe, scope):
    """Hover every token/cell/item so tooltips render the hostile strings too."""
    page = probe.page
    sel = f"{scope} .ew-body [data-index], {scope} .ew-body [data-r]"
    handles = page.query_selector_all(sel)[:40]
    for h in handles:
        try:
            h.hover(timeout=2000)
        except Exception:
            continue  # e.g. scrolled out of a clipped area
    tip = page.evaluate(f"() => (document.querySelector('{scope} .ew-tooltip') || {{}}).textContent || ''")
    assert page.evaluate(f"() => document.querySelectorAll('{scope} .ew-tooltip img, {scope} .ew-tooltip b').length") == 0
    return tip


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_hostile_in_export(cls, probe, tmp_path):
    view = hostile(cls)
    probe.open_export(view, tmp_path / "hostile.html", title="</script><script>alert(1)</script>")
    _check(probe, "#ew-view-0", expected_scripts=3)
    _hover_everything(probe, "#ew-view-0")
    probe.page.keyboard.press("Tab")
    probe.page.keyboard.press("ArrowRight")
    probe.screenshot(f"hostile_export_{cls.__name__}")
    assert probe.page.title() == "</script><script>alert(1)</script>"
    probe.assert_clean()


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_hostile_in_host_page(cls, probe, tmp_path):
    view = hostile(cls)
    probe.open_host(view, tmp_path / "hostile_host.html")
    _check(probe, "#host", expected_scripts=3)
    _hover_everything(probe, "#host")
    probe.screenshot(f"hostile_host_{cls.__name__}")
    probe.assert_clean()


def test_hostile_tokens_shown_exactly(probe, tmp_path):
    """Token spans hold the exact strings (RTL override, zero-width chars, quotes, 3,000 chars)."""
    from ecco_widgets.views import AttentionView

    view = hostile(AttentionView)
    probe.open_export(view, tmp_path / "exact.html")
    texts = probe.page.evaluate(
        "() => Array.from(document.querySelectorAll('#ew-view-0 .ew-tokens .ew-tok')).map(e => e.textContent)"
    )
    assert texts[: len(HOSTILE)] == HOSTILE
    assert len(texts[HOSTILE.index("W" * 3000)]) == 3000
    assert set(HOSTILE_LITERAL) <= set(texts)
    probe.assert_clean()
