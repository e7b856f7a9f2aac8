"""Views in a real marimo app: ``marimo run`` (the pinned version of pyproject's test extra) opened by Chromium.

marimo ships its own anywidget host: each view in an open shadow root, one evaluation of a bundle's module shared by
every view of that bundle, binary traits sent as base64. The app shows every view of ecco_widgets/views/registry.json
(``_data.build``, titled "marimo <ClassName>"), one cell each, shown the ways a marimo user shows a widget: the bare
widget as the cell's output, ``mo.ui.anywidget(...)``, and two explorers of one bundle side by side in
``mo.vstack``. Checked for each view: it renders in a shadow root the body its offline page renders (same text,
elements and colours: the arrays arrived whole), answers a hover with a tooltip, and follows marimo's dark theme
(``?theme=dark``: the colours of its offline page in the dark theme); the two explorers keep their own state. No page
error, no request leaves the machine.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ._data import ALL_CLASSES, build
from ._harness import ROOT
from .test_colab_manager import _SIGNATURE
from .test_interactions import SPECS

from ecco_widgets import views

IDS = [c.__name__ for c in ALL_CLASSES]
TITLES = {cls: f"marimo {cls.__name__}" for cls in ALL_CLASSES}
SECOND_EXPLORER = "second explorer"
# how each view's cell shows it: the two explorers together in mo.vstack, the others alternately as the bare widget
# and through mo.ui.anywidget (the rank grid bare, the saliency view wrapped, as before every view was in the app)
SHOWN = {views.Explorer: "vstack", views.RankGrid: "bare", views.SaliencyView: "anywidget"}
for _i, _cls in enumerate(c for c in ALL_CLASSES if c not in SHOWN):
    SHOWN[_cls] = ("anywidget", "bare")[_i % 2]
N_VIEWS = len(ALL_CLASSES) + 1  # and the second explorer


def _cell(cls) -> str:
    name = cls.__name__
    if SHOWN[cls] == "vstack":
        return f'''
@app.cell
def _(mo, second, w):
    mo.vstack([w[{name!r}], second])
    return
'''
    shown = f"w[{name!r}]" if SHOWN[cls] == "bare" else f"mo.ui.anywidget(w[{name!r}])"
    return f'''
@app.cell
def _(mo, w):
    {shown}
    return
'''


APP = f'''\
import marimo

app = marimo.App()


@app.cell
def _():
    import sys
    sys.path.insert(0, {str(ROOT / "tests")!r})
    import marimo as mo
    from browser._data import ALL_CLASSES, build
    from ecco_widgets import views
    w = {{cls.__name__: build(cls, title=f"marimo {{cls.__name__}}") for cls in ALL_CLASSES}}
    second = build(views.Explorer, title={SECOND_EXPLORER!r}, seed=1)
    second.selected_token = 7
    return mo, second, w

{"".join(_cell(cls) for cls in ALL_CLASSES)}

if __name__ == "__main__":
    app.run()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def marimo_app(tmp_path_factory):
    marimo = shutil.which("marimo", path=str(pathlib.Path(sys.executable).parent))
    if marimo is None:
        if os.environ.get("CI"):
            pytest.fail("marimo is not installed (pip install -e '.[test]')")
        pytest.skip("marimo is not installed")
    work = tmp_path_factory.mktemp("marimo")
    (work / "app.py").write_text(APP, encoding="utf-8")
    port = _free_port()
    env = dict(os.environ, HOME=str(work), XDG_CONFIG_HOME=str(work / "config"), XDG_CACHE_HOME=str(work / "cache"))
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([marimo, "-q", "run", "app.py", "--headless", "-p", str(port), "--host", "127.0.0.1"],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"marimo exited: {(work / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("marimo did not start")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


_RENDERED = """(n) => Array.from(document.querySelectorAll('*')).filter(e => e.shadowRoot &&
  e.shadowRoot.querySelector('.ew-root .ew-body *, .ew-root .ew-error')).length >= n"""


def _open(browser_context, url: str):
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    outside, errors = [], []
    origin = "/".join(url.split("/")[:3])
    local = (origin + "/", "data:", "blob:")
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(local)
               else (outside.append(r.request.url), r.abort("blockedbyclient")))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function(_RENDERED, arg=N_VIEWS, timeout=90_000)
    return page, outside, errors


def _root(page, title: str):
    """The view root whose title is ``title`` (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator(".ew-root", has=page.locator(".ew-title", has_text=re.compile(f"^{re.escape(title)}$"))).first


def _exported(probe, view, tmp_path) -> dict:
    probe.open_export(view, tmp_path / "export.html")
    return probe.page.evaluate(_SIGNATURE, probe.page.query_selector("#ew-view-0 .ew-root"))


def _same_body(got: dict, expected: dict) -> None:
    assert (got["text"], got["n"]) == (expected["text"], expected["n"])
    a, b = got["colours"].split(";"), expected["colours"].split(";")
    assert a == b, f"{sum(x != y for x, y in zip(a, b))} of {len(b)} colours differ, first: " \
                   f"{next(((i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y), None)}"


# every colour of the body (text, SVG fills and strokes too: the batch summary's charts, the attention view's lines)
_PAINT = """(root) => Array.from(root.querySelectorAll('.ew-body *')).map(e => {
  const s = getComputedStyle(e);
  return [s.color, s.fill, s.stroke].join(' ');
})"""


def _rgb(colour: str) -> list[int]:
    return [int(float(v)) for v in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]]


@pytest.fixture(scope="module")
def light(marimo_app, browser_context):
    page, outside, errors = _open(browser_context, marimo_app)
    yield page, outside, errors
    page.close()


@pytest.fixture(scope="module")
def dark(marimo_app, browser_context):
    page, outside, errors = _open(browser_context, f"{marimo_app}/?theme=dark")
    yield page, outside, errors
    page.close()


def test_the_app_shows_every_view_of_the_registry():
    assert [c.__name__ for c in ALL_CLASSES] == [e["class"] for e in views.REGISTRY["views"]]
    assert set(SHOWN.values()) == {"bare", "anywidget", "vstack"}
    for cls in ALL_CLASSES:
        assert f"w[{cls.__name__!r}]" in APP


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_view_renders_its_data_in_a_shadow_root_and_hovers(light, cls, probe, tmp_path):
    page, outside, errors = light
    root = _root(page, TITLES[cls])
    assert root.count() == 1, f"no view titled {TITLES[cls]!r} in the app"
    assert root.evaluate("r => r.getRootNode() instanceof ShadowRoot"), "marimo renders each view in a shadow root"
    assert root.get_attribute("data-ew-view") == cls._bundle
    assert root.locator(".ew-error").count() == 0, root.inner_text()
    _same_body(root.evaluate(_SIGNATURE), _exported(probe, build(cls, title=TITLES[cls]), tmp_path))
    page.mouse.move(0, 0)
    root.locator(SPECS[cls].hover).first.hover()
    tooltip = root.locator(".ew-tooltip").first
    page.wait_for_function("(t) => t && !t.hidden && getComputedStyle(t).display !== 'none' && t.textContent.trim()",
                           arg=tooltip.element_handle())
    page.mouse.move(0, 0)
    assert not errors, errors
    assert not outside, outside


def _explorer_heading(root) -> str:
    return root.locator("[data-panel] .ew-panel-title").first.inner_text()


def test_two_explorers_of_one_bundle_keep_their_own_state(light):
    """One module evaluation serves both explorers: a hover in one changes its panels only, and each keeps its own
    selected token."""
    page, outside, errors = light
    first, second = _root(page, TITLES[views.Explorer]), _root(page, SECOND_EXPLORER)
    assert "token 5 " in _explorer_heading(first)  # _data.explorer selects the first generated token
    assert "token 7 " in _explorer_heading(second)
    page.mouse.move(0, 0)
    first.locator('.ew-tokens [data-token-index="3"]').first.hover()
    page.wait_for_function("(r) => r.querySelector('[data-panel] .ew-panel-title').textContent.includes('token 3 ')",
                           arg=first.element_handle())
    assert "token 7 " in _explorer_heading(second)
    page.mouse.move(0, 0)
    ids = page.evaluate("""() => {
      const roots = Array.from(document.querySelectorAll('*')).filter(e => e.shadowRoot).map(e => e.shadowRoot);
      return roots.flatMap(r => Array.from(r.querySelectorAll('.ew-root [id]')).map(e => e.id));
    }""")
    assert len(ids) == len(set(ids)), "element ids repeat between views"
    assert not errors, errors
    assert not outside, outside


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_dark_theme_follows_marimo(dark, cls, probe, tmp_path):
    """``?theme=dark``: each view is dark (its background dark, its text light) and its body has the colours
    (backgrounds, text, SVG fills and strokes) of its offline page in the dark theme."""
    page, outside, errors = dark
    root = _root(page, TITLES[cls])
    assert root.get_attribute("data-ew-theme") == "dark"
    assert root.locator(".ew-error").count() == 0, root.inner_text()
    background, colour = root.evaluate("r => [getComputedStyle(r).backgroundColor, getComputedStyle(r).color]")
    assert sum(_rgb(background)) / 3 < 60, background
    assert sum(_rgb(colour)) / 3 > 150, colour
    view = build(cls, title=TITLES[cls])
    view.theme = "dark"
    _same_body(root.evaluate(_SIGNATURE), _exported(probe, view, tmp_path))
    assert root.evaluate(_PAINT) == probe.page.evaluate(_PAINT, probe.page.query_selector("#ew-view-0 .ew-root"))
    if cls is ALL_CLASSES[-1]:
        page.screenshot(path=str(ROOT / "tests" / "artifacts" / "marimo_dark.png"), full_page=True)
    assert not errors, errors
    assert not outside, outside
