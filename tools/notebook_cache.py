"""Executed copies of the walkthrough notebooks, shared by the notebook tests and the docs site.

A copy is keyed by the notebook's bytes and every file of the package (its Python modules, view registry and
bundles), so a copy made by ``tests/test_notebooks.py`` serves the docs build of the same tree and a change to
either runs the notebook again. Copies live in ``build/executed-notebooks/`` (ignored by git).

>>> key(NOTEBOOK_DIR / "01_quickstart.ipynb") == key(NOTEBOOK_DIR / "01_quickstart.ipynb")
True
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
CACHE = ROOT / "build" / "executed-notebooks"
KERNEL_NAME = "ecco-widgets-notebook-test"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ECCO_WIDGETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}


def _package_files() -> list[Path]:
    package = ROOT / "ecco_widgets"
    return sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in {".py", ".js", ".json"}
                  and "__pycache__" not in p.parts)


def key(notebook: Path) -> str:
    """sha256 (hex, 16 characters) of the notebook and of every package file, with their relative paths."""
    digest = hashlib.sha256(Path(notebook).read_bytes())
    for path in _package_files():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cached_path(notebook: Path) -> Path:
    return CACHE / f"{Path(notebook).stem}.{key(notebook)}.ipynb"


def store(notebook: Path, executed) -> Path:
    """Keep ``executed`` (an nbformat NotebookNode run top to bottom) as the copy of ``notebook``."""
    import nbformat

    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{Path(notebook).stem}.*.ipynb"):
        old.unlink()
    path = _cached_path(notebook)
    tmp = path.with_suffix(".tmp")
    nbformat.write(executed, tmp)
    os.replace(tmp, path)
    return path


def write_kernelspec(jupyter_path: Path) -> None:
    """A kernelspec under ``jupyter_path`` that starts this interpreter's ipykernel offline (use it as JUPYTER_PATH)."""
    spec_dir = Path(jupyter_path) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ecco_widgets notebook test", "language": "python", "env": OFFLINE_ENV}))


def executed(notebook: Path, timeout: int = 600):
    """The executed copy of ``notebook``: from the cache when its key matches, else run now (nbclient) and kept."""
    import nbformat

    path = _cached_path(notebook)
    if path.exists():
        return nbformat.read(path, as_version=4)
    import nbclient

    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory() as jupyter_path:
        write_kernelspec(Path(jupyter_path))
        saved = {k: os.environ.get(k) for k in ["JUPYTER_PATH", *OFFLINE_ENV]}
        os.environ.update({"JUPYTER_PATH": jupyter_path, **OFFLINE_ENV})
        try:
            nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=timeout, store_widget_state=True,
                                    resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    store(notebook, nb)
    return nb
