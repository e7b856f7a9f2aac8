"""End to end with a real kernel: JupyterLab 4 and Notebook 7 + Debian's chromium (Playwright), offline.

A notebook creates a RankGrid from synthetic arrays; the test runs the cell, checks the
view renders in the output area, clicks a cell, and asks the kernel (a printed trait)
that ``selected_cell`` was synced back.  Then a kernel-side change moves the selection.
In the real front end (issue 14): the tooltip escapes a 120 px output area with overflow:auto (its four
corners hit-test to it), ArrowDown inside the view moves in the view and leaves the notebook's active cell
and the focus alone, and the console shows no anywidget deprecation warning and no uncaught error.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from tools.chromium import CHROMIUM_ARGS, chromium_executable

pytestmark = pytest.mark.kernel

CHROMIUM = chromium_executable()

CELL_CREATE = """\
import numpy as np
from ecco_widgets.views import RankGrid
g = RankGrid(
    tokens=["The", " cat", " sat", " on", " the", " mat"],
    ranks=np.array([[50, 400, 7, 2, 90], [3, 11, 2, 1, 4], [1, 1, 1, 1, 1]], dtype=np.int64),
    kl_to_final=np.array([[6.0, 9.5, 3.0, 1.0, 4.0], [2.0, 3.0, 1.0, 0.2, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]]),
    n_input_tokens=3,
    topk_vocab=[" a", " b", " c"], topk_index=np.tile(np.arange(3), (3, 5, 1)), topk_probs=np.full((3, 5, 3), 0.2),
    title="e2e grid",
)
from IPython.display import display
from ecco_widgets.views import SaliencyView
display(g)
# a SaliencyView's "detailed" style once went out as a synced `style` string, which ipywidgets' front end took for a
# style model: an uncaught "Cannot read properties of undefined (reading 'then')" on every display
s = SaliencyView(tokens=["The", " cat", " sat", " on", " the", " mat"], targets=[4, 5],
                 attributions={"ig": np.linspace(0, 1, 12).reshape(2, 6)}, n_input_tokens=4, style="detailed",
                 title="e2e saliency")
s"""
CELL_PRINT = 'print("SELECTED", g.selected_cell, "METRIC", g.metric)'
CELL_SET = "g.selected_cell = [2, 4]"


def _notebook() -> dict:
    def cell(src):
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}

    return {
        "cells": [cell(CELL_CREATE), cell(CELL_PRINT), cell(CELL_SET)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, token: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early with code {proc.returncode}")
        try:
            req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("jupyter lab did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: the server and its kernel
        proc.wait(timeout=10)


def _run_cell(page, index: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


FRONTENDS = {
    # name: (python -m <module>, its app's config prefix, the notebook's URL path)
    "lab": ("jupyterlab", "LabApp", "/lab/tree/e2e.ipynb"),
    "notebook7": ("notebook", "JupyterNotebookApp", "/notebooks/e2e.ipynb"),
}


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed")
@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_rank_grid_click_syncs_to_kernel(frontend):
    _serve(frontend, _notebook(), lambda url, token, work, attempted, path:
           _drive(url, token, work, attempted, path, frontend))


def _serve(frontend: str, notebook: dict, drive, kernel_python: pathlib.Path | None = None) -> None:
    """Serve ``notebook`` as e2e.ipynb with a fresh ``frontend`` server (its own config, no network), run
    ``drive(url, token, work, attempted, path)`` in a thread, then stop the server and its kernel.
    ``kernel_python``: the notebook's kernel runs under that interpreter (kernelspec ``KERNEL_OTHER``)."""
    module, app, path = FRONTENDS[frontend]
    if not _has_module(module):
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed (pip install -e '.[test]')")
        pytest.skip(f"{module} is not installed")
    work = pathlib.Path(tempfile.mkdtemp(prefix="ew-kernel-e2e-"))
    nbdir = work / "notebooks"
    nbdir.mkdir()
    (nbdir / "e2e.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    port = _free_port()
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(work / "config"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        IPYTHONDIR=str(work / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    if kernel_python is not None:
        spec = work / "jupyter" / "kernels" / KERNEL_OTHER
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(kernel_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_OTHER_NAME, "language": "python"}))
        env["JUPYTER_PATH"] = str(work / "jupyter")
    cmd = [
        sys.executable, "-m", module,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={nbdir}",
        f"--{app}.user_settings_dir={work / 'settings'}",
        f"--{app}.workspaces_dir={work / 'workspaces'}",
    ]
    if frontend == "lab":
        cmd += ["--LabApp.news_url=", "--LabApp.extension_manager=readonly",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    attempted: list[str] = []
    try:
        _wait_for_server(url, token, proc)
        _in_thread(lambda: drive(url, token, work, attempted, path))
        assert not attempted, f"network requests or dialogs: {attempted}"
    finally:
        _stop(proc)
        log.close()
        server_log = (work / "server.log").read_text(errors="replace")
        shutil.rmtree(work, ignore_errors=True)
        if proc.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL, 143):
            print(server_log[-4000:])


def _in_thread(fn) -> None:
    """Run ``fn`` in a fresh thread: Playwright's sync API refuses to start inside a running
    asyncio loop (e.g. when the browser tests' session-wide Playwright is active)."""
    import threading

    err: list[BaseException] = []

    def run():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            err.append(exc)

    t = threading.Thread(target=run, name="kernel-e2e-browser")
    t.start()
    t.join(timeout=240)
    if t.is_alive():
        raise TimeoutError("browser part of the kernel e2e test did not finish")
    if err:
        raise err[0]


def _kernel_idle(url: str, token: str) -> bool:
    req = urllib.request.Request(f"{url}/api/kernels", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            kernels = json.loads(r.read())
    except OSError:
        return False
    return any(k.get("execution_state") == "idle" for k in kernels)


_ACTIVE_CELL = "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].findIndex(c => c.classList.contains('jp-mod-active'))"
_CORNERS = """() => {
  const t = document.querySelector('.jp-OutputArea-output .ew-tooltip');
  if (!t || t.hidden) return null;
  t.style.pointerEvents = 'auto';  // (hit testing skips pointer-events: none)
  const b = t.getBoundingClientRect();
  const pts = [[b.left + 2, b.top + 2], [b.right - 2, b.top + 2], [b.left + 2, b.bottom - 2], [b.right - 2, b.bottom - 2]];
  const hits = pts.map(([x, y]) => { const e = document.elementFromPoint(x, y); return !!e && t.contains(e); });
  t.style.pointerEvents = '';
  return {hits, height: b.height};
}"""


def _drive(url: str, token: str, work: pathlib.Path, attempted: list[str], path: str, frontend: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(work / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = ctx.new_page()
            page.set_default_timeout(30_000)

            def route(r):
                if r.request.url.startswith((url, "data:", "blob:")):
                    r.continue_()
                else:
                    attempted.append(r.request.url)
                    r.abort("blockedbyclient")

            page.route("**/*", route)
            console: list[str] = []
            page_errors: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda exc: page_errors.append(f"{exc}\n{getattr(exc, 'stack', '') or ''}"[:1500]))
            page.on("dialog", lambda d: (attempted.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(f"{url}{path}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=60_000)
            # wait until a kernel is attached and idle
            deadline = time.monotonic() + 60
            while not _kernel_idle(url, token) and time.monotonic() < deadline:
                time.sleep(0.5)
            if frontend == "lab":
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            page.wait_for_timeout(500)

            _run_cell(page, 0)
            out = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-OutputArea-output")
            root = out.locator('.ew-root[data-ew-view="rank_grid"]')
            root.wait_for(timeout=60_000)
            assert "e2e grid" in root.inner_text()
            assert root.locator(".ew-cell").count() == 3 * 5
            # the SaliencyView beside it renders its detailed style (synced as saliency_style)
            out.locator('.ew-root[data-ew-view="saliency"] .ew-sal-detailed').first.wait_for(timeout=60_000)
            # the widget, not the kernel-free copy of the view that the display data also carries
            assert out.locator("iframe.ew-saved-view").count() == 0

            art = pathlib.Path(__file__).parent / "artifacts"
            art.mkdir(exist_ok=True)
            root.locator('.ew-cell[data-r="1"][data-c="2"]').click()
            root.locator('.ew-cell.ew-selected[data-r="1"][data-c="2"]').wait_for()
            # the metric switcher: a click in the output area changes the legend and, through the kernel, g.metric
            root.locator('.ew-seg-btn[data-metric="kl"]').click()
            root.locator('.ew-legend[data-metric="kl"]').wait_for()
            page.screenshot(path=str(art / f"kernel_e2e_{frontend}.png"))

            _run_cell(page, 1)
            printed = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
            printed.first.wait_for(timeout=30_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')][1]"
                "?.querySelector('.jp-OutputArea-output')?.textContent.includes('SELECTED')"
            )
            assert "SELECTED [1, 2] METRIC kl" in printed.first.inner_text()

            # kernel -> view: a Python-side change moves the highlighted cell
            _run_cell(page, 2)
            root.locator('.ew-cell.ew-selected[data-r="2"][data-c="4"]').wait_for(timeout=30_000)
            assert root.locator(".ew-cell.ew-selected").count() == 1

            # keys stay in the view: ArrowDown on a grid cell moves to the cell below, the notebook's active cell
            # and the focus stay where they were
            first = root.locator('.ew-cell[data-r="0"][data-c="1"]')
            first.click()
            first.focus()
            page.wait_for_timeout(300)
            active_before = page.evaluate(_ACTIVE_CELL)
            assert active_before == 0, active_before
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowDown")
            page.wait_for_timeout(300)
            assert page.evaluate("() => [document.activeElement.dataset.r, document.activeElement.dataset.c]") == ["2", "1"]
            assert page.evaluate(_ACTIVE_CELL) == active_before, "ArrowDown reached the notebook"

            # the tooltip escapes a 120 px output area with overflow: auto
            page.keyboard.press("Escape")
            page.evaluate("""() => { const o = document.querySelector('.jp-Notebook .jp-Cell .jp-OutputArea-output');
                o.style.height = '120px'; o.style.maxHeight = '120px'; o.style.overflow = 'auto'; }""")
            target = root.locator('.ew-cell[data-r="0"][data-c="3"]')
            target.scroll_into_view_if_needed()
            page.mouse.move(0, 0)
            target.hover()
            page.wait_for_function(f"() => ({_CORNERS})() !== null")
            got = page.evaluate(_CORNERS)
            assert got["height"] > 120 and got["hits"] == [True] * 4, got
            page.screenshot(path=str(art / f"kernel_e2e_{frontend}_tooltip.png"))

            # anywidget's current lifecycle (no deprecation warning) and no uncaught error
            deprecations = [m for m in console if "Deprecation" in m and "anywidget" in m]
            assert not deprecations, deprecations[:1]
            # (the front end's own errors, e.g. Notebook 7's settings "reading 'schema'", are not ours to fix)
            ours = [e for e in page_errors if re.search(r"blob:|anywidget|jupyter-widgets|jupyterlab-manager|ecco|reading 'then'", e)]
            assert not ours, ours
            assert not [m for m in console if "reading 'then'" in m], console
        except Exception:
            art = pathlib.Path(__file__).parent / "artifacts"
            art.mkdir(exist_ok=True)
            page.screenshot(path=str(art / "kernel_e2e_failure.png"))
            print("browser console:", *console[-40:], sep="\n  ")
            raise
        finally:
            ctx.close()


# --------------------------------------------------------------------------- the explorer (issue 16)

EXPLORER_CELLS = [
    """\
import numpy as np
from ecco_widgets.views import Explorer
rng = np.random.default_rng(0)
toks = ["The", " keys", " to", " the", " cabinet", " are", " on", " the", " table"]
ex = Explorer(tokens=toks, n_input_tokens=6, ranks=rng.integers(1, 900, size=(4, 8)), targets=[6, 7, 8],
              attributions={"ig": rng.random((3, 9))}, topk_vocab=[" a", " b", " c"],
              topk_index=rng.integers(0, 3, size=(4, 9, 3)), topk_probs=np.full((4, 9, 3), 0.2),
              selected_token=2, title="e2e explorer")
ex""",
    "ex.selected_token = 6",
    'print("SELECTED", ex.selected_token)',
]


def _explorer_notebook() -> dict:
    nb = _notebook()
    nb["cells"] = [dict(nb["cells"][0], source=src) for src in EXPLORER_CELLS]
    return nb


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed")
def test_explorer_selected_token_syncs_both_ways():
    """JupyterLab: Python sets selected_token and every panel follows; a click and an arrow key in the view select
    a token that Python then reads; the arrow key leaves the notebook's active cell alone."""
    _serve("lab", _explorer_notebook(), _drive_explorer)


def _offline_page(ctx, url: str, outside: list[str]):
    """A page of ``ctx`` that reaches only the server at ``url`` (other requests recorded in ``outside`` and aborted);
    returns it with the list its uncaught errors go to."""
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:"))
               else (outside.append(r.request.url), r.abort("blockedbyclient")))
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)[:500]))
    return page, page_errors


def _drive_explorer(url: str, token: str, work: pathlib.Path, attempted: list[str], path: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(work / "profile"), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        page, page_errors = _offline_page(ctx, url, attempted)
        try:
            page.goto(f"{url}{path}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=60_000)
            deadline = time.monotonic() + 60
            while not _kernel_idle(url, token) and time.monotonic() < deadline:
                time.sleep(0.5)
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            _run_cell(page, 0)
            root = page.locator('.jp-OutputArea-output .ew-root[data-ew-view="explorer"]')
            root.wait_for(timeout=60_000)
            headings = root.locator("[data-panel] .ew-panel-title")

            def panels_name(k: int) -> None:
                page.wait_for_function(
                    "(k) => { const hs = [...document.querySelectorAll('.ew-root[data-ew-view=explorer] [data-panel] "
                    ".ew-panel-title')]; return hs.length === 3 && hs.every(h => h.textContent.includes(`token ${k} `)); }",
                    arg=k)

            assert [root.locator("[data-panel]").nth(i).get_attribute("data-panel") for i in range(3)] == \
                ["saliency", "lens", "predictions"]
            panels_name(2)
            # Python -> view
            _run_cell(page, 1)
            panels_name(6)
            assert root.locator('[data-token-index="6"]').get_attribute("aria-selected") == "true"
            # view -> Python: a click, then an arrow key (which stays in the view)
            root.locator('[data-token-index="3"]').click()
            page.mouse.move(1, 1)
            panels_name(3)
            active_before = page.evaluate(_ACTIVE_CELL)
            page.keyboard.press("ArrowRight")
            panels_name(4)
            assert page.evaluate(_ACTIVE_CELL) == active_before, "ArrowRight reached the notebook"
            assert page.evaluate("() => document.activeElement.classList.contains('ew-vrow')")
            page.wait_for_timeout(300)
            _run_cell(page, 2)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')][2]"
                "?.querySelector('.jp-OutputArea-output')?.textContent.includes('SELECTED')")
            printed = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea-output").first.inner_text()
            assert "SELECTED 4" in printed, printed
            assert headings.count() == 3
            ours = [e for e in page_errors if re.search(r"blob:|anywidget|jupyter-widgets|ecco|reading 'then'", e)]
            assert not ours, ours
        except Exception:
            art = pathlib.Path(__file__).parent / "artifacts"
            art.mkdir(exist_ok=True)
            page.screenshot(path=str(art / "kernel_e2e_explorer_failure.png"))
            raise
        finally:
            ctx.close()


# --------------------------------------------------------------------------- every view, ipywidgets 8 and 7.7.1

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL_OTHER = "ecco-kernel-under-test"
KERNEL_OTHER_NAME = "Kernel under test"
KERNEL_PYTHONS = {"ipywidgets8": ROOT / ".venv" / "bin" / "python",
                  "ipywidgets7.7.1": ROOT / ".venv-ipyw7" / "bin" / "python"}
ALL_VIEWS_CELL = f"""\
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
import ipywidgets
from IPython.display import display
from browser._data import ALL_CLASSES, build
print("IPYWIDGETS", ipywidgets.__version__)
for cls in ALL_CLASSES:
    display(build(cls, title=cls.__name__))"""


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed")
@pytest.mark.parametrize("kernel", list(KERNEL_PYTHONS))
def test_every_view_in_lab(kernel):
    """JupyterLab 4 (whose manager speaks both widget protocols) with a kernel of ipywidgets 8 or of Colab's 7.7.1:
    every view of the registry renders as a widget (not its kernel-free HTML copy) and answers a hover."""
    python = KERNEL_PYTHONS[kernel]
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing (`make setup-test` creates it)")
        pytest.skip(f"{python} is missing (`make setup-test` creates it)")
    nb = _notebook()
    nb["cells"] = [dict(nb["cells"][0], source=ALL_VIEWS_CELL)]
    nb["metadata"]["kernelspec"] = {"display_name": KERNEL_OTHER_NAME, "language": "python", "name": KERNEL_OTHER}
    _serve("lab", nb, lambda url, token, work, attempted, path: _drive_all_views(url, token, work, path, kernel),
           kernel_python=python)


def _drive_all_views(url: str, token: str, work: pathlib.Path, path: str, kernel: str) -> None:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests"))
    from browser._data import ALL_CLASSES
    from browser.test_interactions import SPECS

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(work / "profile"), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        outside: list[str] = []
        page, page_errors = _offline_page(ctx, url, outside)
        try:
            page.goto(f"{url}{path}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=60_000)
            page.get_by_text(f"{KERNEL_OTHER_NAME} | Idle").wait_for(timeout=90_000)
            page.wait_for_timeout(500)
            _run_cell(page, 0)
            out = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-OutputArea")
            page.wait_for_function("(n) => document.querySelectorAll('.jp-OutputArea-output .ew-root').length >= n",
                                   arg=len(ALL_CLASSES), timeout=120_000)
            version = "7.7.1" if kernel == "ipywidgets7.7.1" else "8."
            assert f"IPYWIDGETS {version}" in out.inner_text()
            assert out.locator("iframe.ew-saved-view").count() == 0, "Lab showed the kernel-free copy"
            for i, cls in enumerate(ALL_CLASSES):
                root = out.locator(f'.ew-root[data-ew-view="{cls._bundle}"]').first
                assert root.locator(".ew-error").count() == 0, root.inner_text()
                assert cls.__name__ in root.inner_text()
                page.mouse.move(0, 0)
                target = root.locator(SPECS[cls].hover).first
                target.scroll_into_view_if_needed()
                target.hover()
                root.locator(".ew-tooltip:not([hidden])").first.wait_for(timeout=10_000)
                assert root.locator(".ew-tooltip:not([hidden])").first.inner_text().strip()
            art = ROOT / "tests" / "artifacts"
            art.mkdir(exist_ok=True)
            page.screenshot(path=str(art / f"kernel_e2e_all_views_{kernel}.png"))
            ours = [e for e in page_errors if re.search(r"blob:|anywidget|jupyter-widgets|ecco|reading 'then'", e)]
            assert not ours, ours
            assert not outside, outside
        except Exception:
            art = ROOT / "tests" / "artifacts"
            art.mkdir(exist_ok=True)
            page.screenshot(path=str(art / f"kernel_e2e_all_views_{kernel}_failure.png"))
            raise
        finally:
            ctx.close()
