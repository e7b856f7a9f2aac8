"""Tuned-lens files in the layout of the ``tuned-lens`` package: a folder with ``config.json`` and ``params.pt``.

config.json: ``base_model_name_or_path``, ``d_model``, ``num_hidden_layers``, ``bias``, ``base_model_revision``,
``unembed_hash``, ``lens_type`` ("linear_tuned_lens"). params.pt: the state dict of the translators (a ModuleList of
Linear): ``"{i}.weight"`` float (d_model, d_model), ``"{i}.bias"`` float (d_model,), i in 0..num_hidden_layers-1.

>>> import tempfile, torch
>>> folder = write_lens(tempfile.mkdtemp(), torch.zeros(2, 3, 3), torch.ones(2, 3), {"num_hidden_layers": 2})
>>> weights, biases, config, _ = read_lens(folder)
>>> tuple(weights.shape), biases[1].tolist(), config["lens_type"]
((2, 3, 3), [1.0, 1.0, 1.0], 'linear_tuned_lens')
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.pt"
LENS_TYPE = "linear_tuned_lens"
#: Where the tuned-lens package publishes its lenses (a Hugging Face space, folder ``lens/<model id>``).
HUB_REPO = "AlignmentResearch/tuned-lens"


def unembedding_hash(weight: torch.Tensor) -> str:
    """The tuned-lens package's fingerprint of an unembedding matrix (vocab, d_model): sha256 of its numpy text
    summary at one decimal, so a lens records which model it was trained for."""
    return hashlib.sha256(np.array_str(weight.detach().cpu().float().numpy(), precision=1).encode()).hexdigest()


def default_config(n_layers: int, d_model: int) -> dict[str, Any]:
    """The tuned-lens config of a lens with ``n_layers`` translators of width ``d_model`` (no model named yet)."""
    return {"base_model_name_or_path": "", "d_model": d_model, "num_hidden_layers": n_layers, "bias": True,
            "base_model_revision": None, "unembed_hash": None, "lens_type": LENS_TYPE}


def write_lens(folder: str | Path, weights: torch.Tensor, biases: torch.Tensor, config: dict[str, Any]) -> Path:
    """Write weights (n, d, d) and biases (n, d) with ``config`` into ``folder`` (created); returns the folder."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for i in range(int(weights.shape[0])):
        state[f"{i}.weight"] = weights[i].detach().float().cpu().clone()
        state[f"{i}.bias"] = biases[i].detach().float().cpu().clone()
    full = {**default_config(int(weights.shape[0]), int(weights.shape[-1])), **config}
    torch.save(state, folder / PARAMS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(full, indent=1), encoding="utf-8")
    return folder


def read_lens(path_or_id: str | Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any], Path]:
    """(weights (n, d, d), biases (n, d), config, folder) from a lens folder, or from the lens the tuned-lens package
    publishes for a model id (downloaded through huggingface_hub)."""
    folder = Path(path_or_id).expanduser()
    if not folder.is_dir():
        folder = _download(str(path_or_id))
    config_path, params_path = folder / CONFIG_FILE, folder / PARAMS_FILE
    missing = [p.name for p in (config_path, params_path) if not p.is_file()]
    if missing:
        raise InputError(f"{folder} is not a tuned lens: it lacks {', '.join(missing)} (a lens folder holds "
                         f"{CONFIG_FILE} and {PARAMS_FILE}, as TunedLens.save and the tuned-lens package write).")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise InputError(f"Could not read {config_path}: {type(error).__name__}: {error}") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path} holds a JSON {type(config).__name__}; a tuned-lens config is a JSON object "
                         "(num_hidden_layers, d_model, lens_type, ...).")
    state = _tensors_only(params_path)
    lens_type = config.get("lens_type", LENS_TYPE)
    if lens_type != LENS_TYPE:
        raise InputError(f"{folder} holds a {lens_type!r} lens; only {LENS_TYPE!r} lenses are supported.")
    n_layers = config.get("num_hidden_layers")
    if not isinstance(n_layers, int) or n_layers < 1 or not isinstance(state, dict):
        raise InputError(f"{config_path} must name num_hidden_layers (a positive integer) and {params_path.name} "
                         "must hold a state dict.")
    try:
        weights = torch.stack([state[f"{i}.weight"] for i in range(n_layers)]).float()
        biases = torch.stack([state[f"{i}.bias"] if f"{i}.bias" in state else torch.zeros(weights.shape[-1])
                              for i in range(n_layers)]).float()
    except KeyError as error:
        raise InputError(f"{params_path} has no entry {error} for the {n_layers} translators its {CONFIG_FILE} "
                         "names.") from None
    except (RuntimeError, TypeError) as error:  # ragged shapes, or entries that are not tensors
        shapes = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in state.items()}
        raise InputError(f"{params_path}: the translators' weights must all be (d, d) tensors and their biases (d,) "
                         f"tensors of one d; found {dict(list(shapes.items())[:6])}.") from None
    return weights, biases, {**config, "lens_type": lens_type}, folder


def _tensors_only(params_path: Path) -> Any:
    """The state dict in ``params_path``, read with ``weights_only=True``: a file that holds anything but tensors and
    plain containers (a pickle that would run code, objects of other classes) is refused, never unpickled."""
    import pickle

    try:
        return torch.load(params_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(f"Refused to read {params_path}: it holds more than tensors (pickled objects or code). "
                         "ecco_widgets reads lens files as data only (torch.load with weights_only=True) and never "
                         "runs what a file contains. Save the lens again from its tensors (TunedLens.save).") from None
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        raise InputError(f"Could not read {params_path}: {type(error).__name__}: {error}") from None


def _download(model_id: str) -> Path:
    """The folder of the published lens for ``model_id`` (lens/<model_id> in the tuned-lens space), via the hub."""
    try:
        from huggingface_hub import hf_hub_download

        paths = [hf_hub_download(HUB_REPO, f"lens/{model_id}/{name}", repo_type="space")
                 for name in (CONFIG_FILE, PARAMS_FILE)]
    except Exception as error:  # offline, unknown id, no huggingface_hub: all end the same way for the user
        raise InputError(f"{model_id!r} is not a folder, and the lens the tuned-lens package publishes for it could "
                         f"not be downloaded ({type(error).__name__}). Download lens/{model_id}/{CONFIG_FILE} and "
                         f"{PARAMS_FILE} from huggingface.co/spaces/{HUB_REPO} and pass their folder, or fit one "
                         "with ew.TunedLens.fit(lm, texts).") from None
    return Path(paths[0]).parent
