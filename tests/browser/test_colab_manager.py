"""Every view under Colab's own widget manager (googlecolab/colab-cdn-widget-manager), fed by ipywidgets 8 and 7.7.1.

The manager is Colab's public source, built with its own npm scripts (``npm ci``; ``build.js``, esbuild); it is not
part of this repository (its code is not ours to commit). The test looks for its ``dist/manager.dev.js`` at
``$ECCO_WIDGETS_COLAB_MANAGER`` or ``~/.cache/ecco_widgets-hosts/colab-cdn-widget-manager/manager.dev.js`` and says
so when it is absent.

What runs: ``colab_host.html`` gives the manager the environment it declares (``src/api.ts``), replays the comm_open
messages that ipywidgets itself sends for a view (``_kernel_bridge.py``, in the environment under test), loads
anywidget's front end from the npm package of the version the Python side reports (the URL Colab's loader asks its
CDN for is answered from ``js/node_modules/anywidget``), and renders. Colab drops the initial state's binary buffers
(the manager's ``commChannelOpened`` never passes them on): before ecco_widgets answered that, every view showed
"ecco_widgets: ranks has no data" (or its first array's name). Each view must render the same body as its offline
page (same text, same elements, same colours: the arrays arrived whole) and answer a hover with a tooltip.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ._data import ALL_CLASSES, build
from ._harness import ROOT
from .test_interactions import SPECS, _TOOLTIP

MANAGER = pathlib.Path(os.environ.get("ECCO_WIDGETS_COLAB_MANAGER") or pathlib.Path.home() / ".cache" /
                       "ecco_widgets-hosts" / "colab-cdn-widget-manager" / "manager.dev.js")
ANYWIDGET_JS = ROOT / "js" / "node_modules" / "anywidget"
HOST_PAGE = pathlib.Path(__file__).with_name("colab_host.html")
BRIDGE = pathlib.Path(__file__).with_name("_kernel_bridge.py")
KERNELS = {"ipywidgets8": ROOT / ".venv" / "bin" / "python", "ipywidgets7.7.1": ROOT / ".venv-ipyw7" / "bin" / "python"}
ORIGIN = "https://colab.test"
# what Colab's manager itself fetches from its CDN: anywidget's module (answered locally) and a stylesheet
CDN = "https://cdn.jsdelivr.net/npm/"
IDS = [c.__name__ for c in ALL_CLASSES]

_SIGNATURE = """(root) => {
  const body = root.querySelector('.ew-body');
  const all = Array.from(body.querySelectorAll('*'));
  return {text: body.textContent, n: all.length,
          colours: all.map(e => getComputedStyle(e).backgroundColor).join(';')};
}"""


class Bridge:
    """The kernel side: ``_kernel_bridge.py`` under one environment's Python, one JSON line each way."""

    def __init__(self, python: pathlib.Path) -> None:
        self.proc = subprocess.Popen([str(python), str(BRIDGE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT)

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer.get("traceback")
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _manager_or_skip() -> pathlib.Path:
    if not MANAGER.is_file():
        pytest.skip(f"Colab's widget manager (googlecolab/colab-cdn-widget-manager, dist/manager.dev.js) is not at "
                    f"{MANAGER}; set ECCO_WIDGETS_COLAB_MANAGER to where it is")
    return MANAGER


def _anywidget_module(version_spec: str) -> bytes:
    package = json.loads((ANYWIDGET_JS / "package.json").read_text())
    wanted = version_spec.lstrip("~^=").split(".")[:2]
    assert package["version"].split(".")[:2] == wanted, (
        f"js/package.json pins anywidget {package['version']} but the Python side asks for {version_spec}: "
        "pin the npm package to the Python package's version")
    return (ANYWIDGET_JS / "dist" / "index.js").read_bytes()


@pytest.fixture(scope="module", params=list(KERNELS))
def colab(request, browser_context):
    python = KERNELS[request.param]
    manager = _manager_or_skip()
    if not python.exists():
        message = f"{python} is missing (`make setup-test` creates the ipywidgets 7.7.1 environment)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    bridge = Bridge(python)
    page = browser_context.new_page()
    outside, errors, cdn = [], [], []

    def route(r):
        url = r.request.url
        if url == f"{ORIGIN}/host.html":
            return r.fulfill(body=HOST_PAGE.read_bytes(), content_type="text/html")
        if url == f"{ORIGIN}/manager.dev.js":
            return r.fulfill(body=manager.read_bytes(), content_type="text/javascript")
        if url.startswith(CDN + "anywidget@") and url.endswith("/dist/index.js"):
            cdn.append(url)
            spec = url[len(CDN + "anywidget@"):-len("/dist/index.js")]
            return r.fulfill(body=_anywidget_module(spec), content_type="text/javascript")
        if url.startswith(CDN + "font-awesome@"):  # the manager's own stylesheet link
            cdn.append(url)
            return r.fulfill(body="", content_type="text/css")
        if url.startswith(("data:", "blob:")):
            return r.continue_()
        outside.append(url)
        return r.abort("blockedbyclient")

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.expose_function("ewKernel", lambda text: json.dumps(bridge.ask(json.loads(text))))
    page.goto(f"{ORIGIN}/host.html")
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    yield {"page": page, "bridge": bridge, "outside": outside, "errors": errors, "cdn": cdn, "kernel": request.param}
    page.close()
    bridge.close()


def _show(colab, cls, in_colab: bool) -> tuple[str, dict]:
    page, bridge = colab["page"], colab["bridge"]
    opened = bridge.ask({"op": "open", "view": cls.__name__, "colab": in_colab})
    assert opened["versions"]["ipywidgets"].startswith("7.7.1" if colab["kernel"] == "ipywidgets7.7.1" else "8.")
    container = page.evaluate("([opens, id]) => window.ewShow(opens, id)", [opened["opens"], opened["model_id"]])
    page.wait_for_function(
        "(id) => { const r = document.querySelector(`#${id} .ew-root`); return r && !r.querySelector('[data-ew-waiting]') "
        "&& (r.querySelector('.ew-body *') || r.querySelector('.ew-error')); }", arg=container, timeout=20_000)
    return f"#{container}", opened


def _check_view(colab, cls, probe, tmp_path, in_colab: bool) -> dict:
    page = colab["page"]
    scope, opened = _show(colab, cls, in_colab)
    root = page.query_selector(f"{scope} .ew-root")
    assert root.get_attribute("data-ew-view") == cls._bundle
    assert not root.query_selector(".ew-error"), root.inner_text()
    # the same view from its offline page: the arrays arrived whole if the body is the same
    probe.open_export(build(cls), tmp_path / "export.html")
    expected = probe.page.evaluate(_SIGNATURE, probe.page.query_selector("#ew-view-0 .ew-root"))
    got = page.evaluate(_SIGNATURE, root)
    if got != expected:
        a, b = got["colours"].split(";"), expected["colours"].split(";")
        diff = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
        print("DIFF", diff, page.evaluate("(r) => Array.from(r.querySelectorAll('.ew-body *')).map(e => e.className)", root))
    assert got == expected
    # hover, as in the notebook tests
    page.mouse.move(0, 0)
    page.hover(f"{scope} {SPECS[cls].hover}")
    tooltip = _TOOLTIP.replace("document.querySelector('.ew-tooltip')", f"document.querySelector('{scope} .ew-tooltip')")
    page.wait_for_function(tooltip)
    assert page.evaluate(tooltip).strip()
    page.mouse.move(0, 0)
    assert not colab["errors"], colab["errors"]
    assert not colab["outside"], f"requests outside the page: {colab['outside']}"
    assert colab["cdn"] and all("anywidget@" in u or "font-awesome@" in u for u in colab["cdn"])
    return opened


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_view_renders_and_hovers_under_colab_manager(colab, cls, probe, tmp_path):
    """A kernel outside Colab (binary buffers): the manager drops them, the view asks once, the kernel resends."""
    before = len(colab["page"].evaluate("() => window.__toKernel"))
    opened = _check_view(colab, cls, probe, tmp_path, in_colab=False)
    main = opened["opens"][-1]
    assert main["buffers"], "the kernel sent the arrays as binary buffers"
    # Colab's manager cannot even open that comm: it gives put_buffers no buffers
    assert "reading 'buffer'" in " ".join(colab["page"].evaluate("() => window.__openErrors"))
    sent = colab["page"].evaluate("() => window.__toKernel")[before:]
    assert [m["content"] for m in sent if m.get("method") == "custom"] == [{"type": "ew:resend"}]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_view_in_a_colab_kernel_needs_no_round_trip(colab, cls, probe, tmp_path):
    """In a Colab kernel (google.colab imported) arrays go as base64 from the start: nothing is lost, nothing asked."""
    before = len(colab["page"].evaluate("() => window.__toKernel"))
    opened = _check_view(colab, cls, probe, tmp_path, in_colab=True)
    assert not opened["opens"][-1]["buffers"]
    colab["page"].evaluate("() => { window.__openErrors.length = 0; }")
    assert opened["colab_manager_enabled"], "anywidget enables Colab's custom widget manager"
    assert colab["page"].evaluate("() => window.__toKernel")[before:] == []
