"""The explorer's watched-token column headers stay inside their columns (issue 31: long ones ran into each other)."""

from __future__ import annotations

from ._data import build

from ecco_widgets import views


def test_long_watched_tokens_do_not_overlap(probe, tmp_path):
    view = build(views.Explorer)
    view.update(watch_tokens=[" internationalisation", " responsibilities"])
    probe.open_host(view, tmp_path / "host.html")
    page = probe.page
    page.hover('.ew-body .ew-tokens .ew-tok[data-index="6"]')
    page.wait_for_selector('[data-panel="watch"] .ew-ex-colhead.ew-tok')
    # what is painted: the header's box, or its text where it overflows a box that does not clip it
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('[data-panel="watch"] .ew-ex-colhead.ew-tok'))
        .map(e => { const b = e.getBoundingClientRect(); const clips = getComputedStyle(e).overflow !== 'visible';
                    return [b.left, clips ? b.right : b.left + e.scrollWidth, e.title]; })""")
    assert len(boxes) == 2
    (l0, r0, t0), (l1, r1, t1) = boxes
    assert r0 <= l1 + 0.5, boxes  # the first header's text ends before the second begins
    assert (t0, t1) == (" internationalisation", " responsibilities")
    probe.assert_clean()
