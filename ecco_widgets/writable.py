"""Where a command writes, checked before any model loads: a page file (``--out``, ``--summary``) or a run folder.

>>> import tempfile, pathlib
>>> page = check_writable(pathlib.Path(tempfile.mkdtemp()) / "page.html")
>>> page.exists()
False
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .errors import EccoWidgetsError


def check_writable(path: Path, option: str = "--out") -> Path:
    """The file's path, checked: not a folder, its folder exists (or can be made) and a file can be opened there for
    writing (root passes os.access everywhere, /proc and read-only mounts included). EccoWidgetsError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise EccoWidgetsError(f"{option} {path} is a folder; give a file name such as {path / 'page.html'}.")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EccoWidgetsError(f"Cannot create the folder of {option} {path}: {error.strerror}.") from None
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise EccoWidgetsError(f"Cannot write {option} {path}: permission denied. Choose another path.")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise EccoWidgetsError(f"Cannot write {option} {path}: {error.strerror or error}. Choose another "
                               "path.") from None
    if not existed:
        path.unlink()
    return path


def check_writable_folder(path: Path, option: str = "--out") -> Path:
    """A folder that exists (or is made) and takes a new file: checked by writing and removing one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EccoWidgetsError(f"{option} {path} is a file; give a folder (it is created when missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ecco-write-check-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise EccoWidgetsError(f"Cannot write into {option} {path}: {error.strerror or error}. Choose another "
                               "folder.") from None
    return path
