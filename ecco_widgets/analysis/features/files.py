"""Reading dictionary files as data: safetensors and npz only; a torch file only with ``weights_only=True``.

>>> import tempfile, torch
>>> from pathlib import Path
>>> from safetensors.torch import save_file
>>> folder = Path(tempfile.mkdtemp())
>>> save_file({"W_enc": torch.ones(2, 3)}, str(folder / "w.safetensors"))
>>> tuple(read_tensors(folder / "w.safetensors")["W_enc"].shape)
(2, 3)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import InputError, ModelLoadError

#: Suffixes of torch's pickle files, read (weights_only=True) only where a format's safetensors file is absent.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (an InputError names the file when it is not one)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise InputError(f"Could not read {path}: {type(error).__name__}: {error}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path} holds a JSON {type(value).__name__}; a dictionary's config is a JSON object.")
    return value


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor in a .safetensors, .npz (no pickled objects) or torch file (``weights_only=True``), on the CPU,
    in the file's own dtype."""
    if not path.is_file():
        raise InputError(f"{path} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {key: torch.from_numpy(np.array(data[key])) for key in data.files}
    except (ValueError, OSError, RuntimeError) as error:  # a truncated file, an object array in an npz
        raise InputError(f"Could not read {path}: {type(error).__name__}: {error}. Dictionary files are read as "
                         "data (safetensors, or npz without pickled objects).") from None
    if suffix in PICKLE_SUFFIXES:
        return _torch_tensors(path)
    raise InputError(f"{path}: {suffix or 'no suffix'} is not a dictionary file that ecco_widgets reads "
                     "(safetensors, npz, or a torch state dict read with weights_only=True).")


def _torch_tensors(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(f"Refused to read {path}: it holds more than tensors (pickled objects or code). "
                         "ecco_widgets reads dictionary files as data only (torch.load with weights_only=True) "
                         "and never runs what a file contains; save the tensors as safetensors.") from None
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        raise InputError(f"Could not read {path}: {type(error).__name__}: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} does not hold a state dict of tensors (name -> tensor).")
    return dict(state)


def weights_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` (a .safetensors name), else the same stem with a torch suffix, else None."""
    if (folder / name).is_file():
        return folder / name
    stem = Path(name).stem
    return next((folder / f"{stem}{s}" for s in PICKLE_SUFFIXES if (folder / f"{stem}{s}").is_file()), None)


def looks_like_hub_id(text: str) -> bool:
    """'owner/name' or 'owner/name/sub/folder', not an existing path and not an absolute or home path."""
    parts = text.split("/")
    return len(parts) >= 2 and all(parts) and not text.startswith(("/", "~", ".")) and "\\" not in text


def download(hub_id: str, sub: str | None = None) -> Path:
    """The local folder of ``hub_id`` (``owner/name[/sub/folder]``) through ``huggingface_hub.snapshot_download``;
    only the sub-folder's files are fetched when one is named. Returns the folder that holds the dictionary."""
    parts = hub_id.strip("/").split("/")
    repo_id, rest = "/".join(parts[:2]), "/".join(p for p in [*parts[2:], *(sub.split("/") if sub else [])] if p)
    try:
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(repo_id, allow_patterns=[f"{rest}/*"] if rest else None))
    except Exception as error:  # offline, unknown repository, gated: one message for the user
        raise ModelLoadError(f"{hub_id!r} is not a local folder, and the hub repository {repo_id!r} could not be "
                             f"downloaded ({type(error).__name__}: {error}). Download it yourself and pass its "
                             "folder.") from None
    folder = root / rest if rest else root
    if not folder.is_dir():
        raise ModelLoadError(f"The hub repository {repo_id!r} has no folder {rest!r}.")
    return folder
