"""The package as users get it (issue 30): the sdist and the wheel built by `python -m build`, the wheel installed
(not editable) with its declared dependencies into a fresh venv, and used there, away from this checkout.

- The wheel is built from the sdist (``python -m build`` does that), with ``node`` and ``npm`` replaced on PATH by
  stand-ins that record any call: the sdist carries the built bundles and needs no JavaScript toolchain.
- The wheel's size stays within WHEEL_BUDGET, and it holds every bundle the view registry names.
- In the fresh venv (torch installed first, the CPU build, as the README says; then the wheel and its dependencies):
  every public name imports, every module of the package imports, ``ecco-widgets render`` writes a page on a local
  model, and a view built there exports a page; Chromium shows both pages' views from the installed package's own
  bundles, and they answer a hover.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: the wheel is ~0.55 MB today (Python + 13 view bundles); 1 MB leaves room for a few views, not for data or models
WHEEL_BUDGET = 1_000_000
TORCH = "torch==2.13.0"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dist")
    stand_ins = tmp_path_factory.mktemp("no-node")
    called = stand_ins / "called"
    for tool in ("node", "npm", "npx"):
        script = stand_ins / tool
        script.write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {called}\nexit 1\n")
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not called.exists(), f"the build called a JavaScript tool: {called.read_text()}"
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_the_wheel_holds_every_bundle_within_its_budget(dist):
    size = dist["wheel"].stat().st_size
    assert size <= WHEEL_BUDGET, f"the wheel is {size:,} bytes, over its budget of {WHEEL_BUDGET:,}"
    registry = json.loads((ROOT / "ecco_widgets" / "views" / "registry.json").read_text())
    bundles = [v["bundle"] for v in registry["views"]] + registry["extra_bundles"]
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
    missing = [b for b in bundles if f"ecco_widgets/static/{b}.js" not in names]
    assert not missing, missing
    assert "ecco_widgets/views/registry.json" in names
    assert not [n for n in names if n.startswith(("tests/", "js/", "notebooks/"))]
    with tarfile.open(dist["sdist"]) as sdist:
        in_sdist = sdist.getnames()
    assert all(any(n.endswith(f"ecco_widgets/static/{b}.js") for n in in_sdist) for b in bundles)


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> dict:
    """A fresh venv with the wheel and its declared dependencies (torch first, the CPU build)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for what in ([TORCH], [str(dist["wheel"])]):
        done = subprocess.run(pip + what, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    return {"venv": venv, "python": str(venv / "bin" / "python"), "cli": str(venv / "bin" / "ecco-widgets")}


def _run(installed: dict, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


IMPORT_EVERYTHING = r"""
import importlib, json, pkgutil, sys
import ecco_widgets as ew
names = [n for n in ew.__all__ if getattr(ew, n, None) is None]
modules, failed = [], {}
for info in pkgutil.walk_packages(ew.__path__, "ecco_widgets."):
    try:
        importlib.import_module(info.name)
        modules.append(info.name)
    except Exception as exc:
        failed[info.name] = f"{type(exc).__name__}: {exc}"
from ecco_widgets import ecco
print(json.dumps({"file": ew.__file__, "version": ew.__version__, "missing_names": names, "n_names": len(ew.__all__),
                  "modules": modules, "failed": failed, "ecco": hasattr(ecco, "from_pretrained")}))
"""


def test_every_public_name_and_module_imports_from_the_installed_wheel(installed, tmp_path):
    done = _run(installed, [installed["python"], "-c", IMPORT_EVERYTHING], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(installed["venv"])), found["file"]  # not this checkout
    assert not found["missing_names"] and found["n_names"] > 40, found
    # the Parquet modules need the optional `batch` extra (pyarrow, pandas); nothing else may fail
    optional = {m: e for m, e in found["failed"].items() if "pyarrow" in e or "pandas" in e}
    assert found["failed"] == optional, found["failed"]
    assert len(found["modules"]) > 60 and found["ecco"], found


@pytest.fixture(scope="module")
def model_folder(tiny_llama_folder) -> Path:
    """A random 2-layer Llama with the bundled model's tokenizer, saved as a folder: a local model."""
    return tiny_llama_folder


ONE_VIEW = r"""
import numpy as np, sys
import ecco_widgets as ew
ranks = np.array([[3, 1, 7], [1, 1, 2]], dtype=np.int32)
view = ew.RankGrid(ranks=ranks, tokens=["The", " cat", " sees", " the"], n_input_tokens=4, title="from the wheel")
print(view.save_html(sys.argv[1]))
"""


@pytest.mark.browser
def test_the_installed_cli_and_a_view_render_in_chromium(installed, model_folder, tmp_path, playwright_sync):
    page = tmp_path / "page.html"
    done = _run(installed, [installed["cli"], "render", "--model", str(model_folder), "--prompt", "the cat sees the",
                            "--generate", "3", "--attribution", "grad_x_input", "--activations",
                            "--out", str(page)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    view_page = tmp_path / "view.html"
    done = _run(installed, [installed["python"], "-c", ONE_VIEW, str(view_page)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    from tools.chromium import CHROMIUM_ARGS, chromium_executable

    found, errors, outside = {}, [], []
    browser = playwright_sync.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
    try:
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:", "about:"))
                  else (outside.append(r.request.url), r.abort())[1])
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(page.as_uri())
        tab.locator('.ew-root[data-ew-view="explorer"]').first.wait_for(timeout=20_000)
        # the page's views mount one after another: wait for its last one before listing them (a loaded machine once
        # listed them while the factor explorer, last on the page, had not mounted yet)
        tab.locator('.ew-root[data-ew-view="factor_explorer"]').first.wait_for(timeout=20_000)
        found["views"] = tab.locator(".ew-root").evaluate_all("els => els.map(e => e.dataset.ewView)")
        found["page_errors"] = tab.locator(".ew-error").count()
        tab.goto(view_page.as_uri())
        tab.locator('.ew-cell[data-r="0"][data-c="1"]').hover()
        tab.locator(".ew-tooltip").first.wait_for(state="visible", timeout=10_000)
        found["tooltip"] = tab.locator(".ew-tooltip").first.inner_text()
    finally:
        browser.close()
    assert found["views"][0] == "explorer" and {"rank_grid", "saliency", "factor_explorer"} <= set(found["views"])
    assert found["page_errors"] == 0 and not errors and not outside, (found, errors, outside)
    assert " sees" in found["tooltip"] or "sees" in found["tooltip"], found["tooltip"]
