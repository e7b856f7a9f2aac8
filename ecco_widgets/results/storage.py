"""One save / load for every result kind: a .npz file of arrays plus the text fields as JSON, and the kind's name.

``ew.load(path)`` (:func:`ecco_widgets.results.load`) gives back the class that was saved (Output, MaskedLMOutput, ClassifierOutput, Seq2SeqOutput)
with every field; no model is needed. Files of the earlier formats (``ecco_widgets.Output/1``,
``ecco_widgets.Seq2SeqOutput/1``) still load.

>>> import numpy as np, tempfile, os
>>> from ecco_widgets.results import MaskedLMOutput
>>> out = MaskedLMOutput(token_ids=np.array([1, 2]), tokens=["a", " b"], raw_tokens=["a", "Ġb"], n_input_tokens=2,
...                      ranks=np.array([[4, 1]], dtype=np.int32), mask_positions=np.array([1]))
>>> back = read_result(save_result(out, os.path.join(tempfile.mkdtemp(), "out.npz")), {"MaskedLMOutput": MaskedLMOutput})
>>> type(back).__name__, back.mask_positions.tolist(), back.ranks.tolist()
('MaskedLMOutput', [1], [[4, 1]])
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

FORMAT = "ecco_widgets.Result/2"
_OLD_FORMATS = {"ecco_widgets.Output/1": "Output", "ecco_widgets.Seq2SeqOutput/1": "Seq2SeqOutput"}
_ARRAY_GROUPS = ("attributions_raw", "convergence_deltas")  # {method: array} fields


def save_result(out: Any, path: str | Path) -> Path:
    """Write the dataclass ``out`` (a result) to ``path`` (.npz is appended when missing), with its class name as
    its kind. Returns the path written."""
    kind = type(out).__name__
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    meta: dict[str, Any] = {"format": FORMAT, "kind": kind}
    arrays: dict[str, np.ndarray] = {}
    for f in fields(out):
        value = getattr(out, f.name)
        if f.name.startswith("_") or value is None:
            continue
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif f.name in _ARRAY_GROUPS:
            for key, array in value.items():
                arrays[f"{f.name}/{key}"] = np.asarray(array)
        elif f.name == "vocab_text":
            meta[f.name] = {str(k): v for k, v in value.items()}
        else:
            meta[f.name] = value
    arrays["__meta__"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def read_result(path: str | Path, kinds: dict[str, type]) -> Any:
    """Read a result written by :func:`save_result` as the class of ``kinds`` named in the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"No saved output at {path}; write one with out.save({str(path)!r}).")
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data:
            raise InputError(f"{path} is not a file written by Output.save.")
        meta = json.loads(str(data["__meta__"]))
        fmt = meta.pop("format", None)
        kind = _OLD_FORMATS.get(fmt) if fmt != FORMAT else meta.pop("kind", None)
        if kind not in kinds:
            raise InputError(f"{path} has format {fmt!r} (kind {kind!r}); this version reads {FORMAT!r} and "
                             f"{', '.join(map(repr, _OLD_FORMATS))}.")
        cls = kinds[kind]
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in meta.items() if k in known}
        kwargs["vocab_text"] = {int(k): v for k, v in meta.get("vocab_text", {}).items()}
        for group in _ARRAY_GROUPS:
            kwargs[group] = {}
        for key in data.files:
            group, _, method = key.partition("/")
            if key == "__meta__" or group not in known:
                continue
            if method:
                kwargs[group][method] = data[key].copy()
            else:
                kwargs[key] = data[key].copy()
    return cls(**kwargs)
