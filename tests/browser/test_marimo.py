"""Views in a real marimo app: ``marimo run`` (the pinned version of pyproject's test extra) opened by Chromium.

marimo ships its own anywidget host: each view in an open shadow root, one evaluation of a bundle's module shared by
every view of that bundle, binary traits sent as base64. The app shows a rank grid (a bare widget as the cell's
output), a saliency view (``mo.ui.anywidget``) and two explorers of one bundle side by side. Checked: each renders the
body its offline page renders (same text and colours: the arrays arrived whole), answers a hover, follows marimo's
theme (``?theme=dark``), and the two explorers keep their own state. No request leaves the machine.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ._data import build
from ._harness import ROOT
from .test_colab_manager import _SIGNATURE
from .test_interactions import SPECS, _TOOLTIP

from ecco_widgets import views

APP = f'''\
import marimo

app = marimo.App()


@app.cell
def _():
    import sys
    sys.path.insert(0, {str(ROOT / "tests")!r})
    import marimo as mo
    from browser._data import build
    from ecco_widgets import views
    grid = build(views.RankGrid, title="marimo grid")
    saliency = build(views.SaliencyView, title="marimo saliency")
    first = build(views.Explorer, title="first explorer")
    second = build(views.Explorer, title="second explorer", seed=1)
    second.selected_token = 7
    return first, grid, mo, saliency, second


@app.cell
def _(grid):
    grid
    return


@app.cell
def _(mo, saliency):
    mo.ui.anywidget(saliency)
    return


@app.cell
def _(first, mo, second):
    mo.vstack([first, second])
    return


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
    page.wait_for_function("() => document.querySelectorAll('marimo-anywidget').length >= 0 && "
                           "Array.from(document.querySelectorAll('*')).filter(e => e.shadowRoot && "
                           "e.shadowRoot.querySelector('.ew-root .ew-body *')).length >= 4", timeout=60_000)
    return page, outside, errors


def _root(page, title: str):
    """The view root whose title is ``title`` (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator(".ew-root", has=page.locator(".ew-title", has_text=title)).first


@pytest.fixture(scope="module")
def light(marimo_app, browser_context):
    page, outside, errors = _open(browser_context, marimo_app)
    yield page, outside, errors
    page.close()


@pytest.mark.parametrize("cls,title", [(views.RankGrid, "marimo grid"), (views.SaliencyView, "marimo saliency")],
                         ids=["RankGrid", "SaliencyView"])
def test_view_renders_its_data_in_a_shadow_root_and_hovers(light, cls, title, probe, tmp_path):
    page, outside, errors = light
    root = _root(page, title)
    assert root.evaluate("r => r.getRootNode() instanceof ShadowRoot"), "marimo renders each view in a shadow root"
    assert root.locator(".ew-error").count() == 0
    probe.open_export(build(cls, title=title), tmp_path / "export.html")
    expected = probe.page.evaluate(_SIGNATURE, probe.page.query_selector("#ew-view-0 .ew-root"))
    got = root.evaluate(_SIGNATURE)
    assert (got["text"], got["n"], got["colours"]) == (expected["text"], expected["n"], expected["colours"])
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
    first, second = _root(page, "first explorer"), _root(page, "second explorer")
    assert "token 5 " in _explorer_heading(first)  # _data.explorer selects the first generated token
    assert "token 7 " in _explorer_heading(second)
    page.mouse.move(0, 0)
    first.locator('.ew-tokens [data-token-index="3"]').first.hover()
    page.wait_for_function("(r) => r.querySelector('[data-panel] .ew-panel-title').textContent.includes('token 3 ')",
                           arg=first.element_handle())
    assert "token 7 " in _explorer_heading(second)
    ids = page.evaluate("""() => {
      const roots = Array.from(document.querySelectorAll('*')).filter(e => e.shadowRoot).map(e => e.shadowRoot);
      return roots.flatMap(r => Array.from(r.querySelectorAll('.ew-root [id]')).map(e => e.id));
    }""")
    assert len(ids) == len(set(ids)), "element ids repeat between views"
    assert not errors, errors
    assert not outside, outside


def test_dark_theme_follows_marimo(marimo_app, browser_context):
    page, outside, errors = _open(browser_context, f"{marimo_app}/?theme=dark")
    try:
        for title in ("marimo grid", "marimo saliency", "first explorer"):
            root = _root(page, title)
            assert root.get_attribute("data-ew-theme") == "dark"
            background = root.evaluate("r => getComputedStyle(r).backgroundColor")
            rgb = [int(v) for v in background[background.index("(") + 1:background.index(")")].split(",")[:3]]
            assert sum(rgb) / 3 < 60, background
        page.screenshot(path=str(ROOT / "tests" / "artifacts" / "marimo_dark.png"), full_page=True)
        assert not errors, errors
        assert not outside, outside
    finally:
        page.close()
