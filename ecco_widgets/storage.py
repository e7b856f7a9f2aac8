"""Save and load an Output as one .npz file (arrays) with its text fields as JSON; no model needed to load.

>>> import numpy as np, tempfile, os
>>> from ecco_widgets.result import Output
>>> out = Output(token_ids=np.array([1, 2]), tokens=["a", " b"], raw_tokens=["a", "Ġb"], n_input_tokens=1,
...              ranks=np.array([[4]], dtype=np.int32))
>>> path = save_output(out, os.path.join(tempfile.mkdtemp(), "out.npz"))
>>> load(path).ranks.tolist()
[[4]]
"""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from .errors import InputError
from .result import Output

_FORMAT = "ecco_widgets.Output/1"
_TEXT_FIELDS = ("tokens", "raw_tokens", "n_input_tokens", "activation_layers", "attribution_settings",
                "model_name", "layer_labels")
_DICT_ARRAY_FIELDS = ("attributions_raw", "convergence_deltas")


def _array_fields() -> list[str]:
    skip = set(_TEXT_FIELDS) | set(_DICT_ARRAY_FIELDS) | {"vocab_text", "_decode", "_encode_watch"}
    return [f.name for f in fields(Output) if f.name not in skip]


def save_output(out: Output, path) -> Path:
    """Write ``out`` to ``path`` (.npz is appended when missing). Returns the path written."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    meta = {name: getattr(out, name) for name in _TEXT_FIELDS}
    meta["format"] = _FORMAT
    meta["vocab_text"] = {str(k): v for k, v in out.vocab_text.items()}
    arrays: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(meta))}
    for name in _array_fields():
        value = getattr(out, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    for group in _DICT_ARRAY_FIELDS:
        for method, value in getattr(out, group).items():
            arrays[f"{group}/{method}"] = np.asarray(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load(path) -> Output:
    """Read an Output written by ``out.save(path)``. The model is not needed (``out.attach(lm)`` reconnects it)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"No saved output at {path}; write one with out.save({str(path)!r}).")
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data:
            raise InputError(f"{path} is not a file written by Output.save.")
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != _FORMAT:
            raise InputError(f"{path} has format {meta.get('format')!r}; this version reads {_FORMAT!r}.")
        kwargs = {name: meta[name] for name in _TEXT_FIELDS}
        kwargs["vocab_text"] = {int(k): v for k, v in meta["vocab_text"].items()}
        for name in _array_fields():
            if name in data:
                kwargs[name] = data[name].copy()
        for group in _DICT_ARRAY_FIELDS:
            prefix = group + "/"
            kwargs[group] = {key[len(prefix):]: data[key].copy() for key in data.files if key.startswith(prefix)}
    return Output(**kwargs)


def copy_output(out: Output) -> Output:
    """A deep copy of ``out`` that shares no array with it (the model links are kept)."""
    clone = copy.deepcopy(
        Output(**{f.name: getattr(out, f.name) for f in fields(Output) if f.name not in ("_decode", "_encode_watch")})
    )
    clone._decode, clone._encode_watch = out._decode, out._encode_watch
    return clone
