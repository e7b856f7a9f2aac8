"""SAE.load's reading: which producer's layout a folder (or a hub id) holds, and the reader for it.

>>> import tempfile
>>> try:
...     read(tempfile.mkdtemp())
... except Exception as error:
...     print(type(error).__name__)
InputError
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import InputError
from .gemma_scope import is_scope_1, is_scope_2, read_scope_1, read_scope_2
from .saelens import is_folder as is_saelens, read as read_saelens
from .sparsify import hookpoints, is_folder as is_sparsify, read as read_sparsify
from .files import PICKLE_SUFFIXES, download, looks_like_hub_id

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
LAYOUTS = ("SAELens (cfg.json + sae_weights.safetensors), sparsify (cfg.json + sae.safetensors, or hookpoint "
           "folders of them), Gemma Scope (params.npz) or Gemma Scope 2 (params.safetensors + config.json)")


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    if name not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}.")
    return DTYPES[name]


def _folder(path: str | Path, sub: str | None = None) -> Path:
    folder = Path(path).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise InputError(f"{folder} is a file; SAE.load takes the folder that holds a dictionary ({LAYOUTS}).")
        return folder
    if isinstance(path, str) and looks_like_hub_id(path):
        return download(path, sub)
    raise InputError(f"{path} does not exist (and is not a hub id owner/name[/folder]).")


def _read_one(folder: Path, scale_factor: float | None, dtype: torch.dtype | None) -> dict:
    if is_saelens(folder):
        return read_saelens(folder, scale_factor=scale_factor, dtype=dtype)
    if is_sparsify(folder):
        return read_sparsify(folder, dtype=dtype)
    if is_scope_2(folder):
        return read_scope_2(folder, dtype=dtype)
    if is_scope_1(folder):
        return read_scope_1(folder, dtype=dtype)
    names = sorted(p.name for p in folder.iterdir())[:12]
    hint = ""
    if (folder / "cfg.json").is_file():
        hint = " It has cfg.json but neither sae_weights.safetensors (SAELens) nor sae.safetensors (sparsify)."
    elif any(n.endswith(PICKLE_SUFFIXES) for n in names):
        hint = " Pickled torch files alone are not a layout ecco_widgets reads."
    raise InputError(f"{folder} holds no dictionary that ecco_widgets reads ({LAYOUTS}); it holds "
                     f"{', '.join(names) or 'nothing'}.{hint}")


def read(path: str | Path, scale_factor: float | None = None, dtype: torch.dtype | str | None = None,
         hookpoint: str | None = None) -> dict:
    """SAE.load's keyword arguments for the SAE read from ``path`` (see SAE.load)."""
    dtype = _dtype(dtype)
    folder = _folder(path, hookpoint)
    if hookpoint is not None and (folder / hookpoint).is_dir():
        folder = folder / hookpoint
    elif hookpoint is not None and folder.name != hookpoint.split("/")[-1]:
        raise InputError(f"{folder} has no hookpoint folder {hookpoint!r}; it has: "
                         f"{', '.join(hookpoints(folder)) or 'none'}.")
    points = hookpoints(folder)
    if points and not any((folder / n).is_file() for n in ("cfg.json", "params.npz", "params.safetensors")):
        if len(points) > 1:
            raise InputError(f"{folder} is a sparsify repository of {len(points)} hookpoints "
                             f"({', '.join(points[:6])}{', ...' if len(points) > 6 else ''}): name one, "
                             "SAE.load(path, hookpoint=...), or load them all with SAE.load_many(path).")
        folder = folder / points[0]
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder.")
    return _read_one(folder, scale_factor, dtype)


def read_many(path: str | Path, dtype: torch.dtype | str | None = None) -> dict[str, dict]:
    """Each hookpoint's SAE keyword arguments of a sparsify repository (see SAE.load_many)."""
    dtype = _dtype(dtype)
    folder = _folder(path)
    points = hookpoints(folder)
    if not points:
        raise InputError(f"{folder} is not a sparsify repository: no sub-folder holds cfg.json + sae.safetensors.")
    return {name: read_sparsify(folder / name, dtype=dtype) for name in points}
