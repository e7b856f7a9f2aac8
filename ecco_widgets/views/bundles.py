"""The built JS bundles (``ecco_widgets/static/<bundle>.js``): where they are and their source, cached.

>>> read_bundle("rank_grid").startswith("/* ecco_widgets front end")
True
"""

from __future__ import annotations

import pathlib

__all__ = ["STATIC_DIR", "bundle_path", "read_bundle"]

#: Folder holding the built JS bundles.
STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"

def bundle_path(bundle: str) -> pathlib.Path:
    """Path of the built bundle ``ecco_widgets/static/<bundle>.js`` (it may not exist)."""
    return STATIC_DIR / f"{bundle}.js"


_ESM_CACHE: dict[str, tuple[float, str]] = {}


def read_bundle(bundle: str) -> str:
    """The source of a built bundle, cached until the file changes (``FileNotFoundError`` if not built)."""
    path = bundle_path(bundle)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise FileNotFoundError(
            f"JS bundle {path} is missing; build the front-end first (`npm --prefix js run build`)"
        ) from None
    cached = _ESM_CACHE.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    _ESM_CACHE[str(path)] = (mtime, text)
    return text
