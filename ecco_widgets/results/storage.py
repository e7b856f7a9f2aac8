"""One save / load for every result kind: a .npz file of arrays plus the text fields as JSON, and the kind's name.

``ew.load(path)`` (:func:`ecco_widgets.results.load`) gives back the class that was saved (Output, MaskedLMOutput,
ClassifierOutput, Seq2SeqOutput, PatchingResult) with every field; no model is needed. Files of the earlier formats
(``ecco_widgets.Output/1``, ``ecco_widgets.Seq2SeqOutput/1``) still load.

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
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..memory import require
from .features import join_features, split_features

FORMAT = "ecco_widgets.Result/2"
_OLD_FORMATS = {"ecco_widgets.Output/1": "Output", "ecco_widgets.Seq2SeqOutput/1": "Seq2SeqOutput"}
_ARRAY_GROUPS = ("attributions_raw", "convergence_deltas", "mixing_raw")  # {method: array} fields
# Output.save stores arrays uncompressed: a large member that expands this much was not written by it.
_MAX_EXPANSION = 20
_CHECK_ABOVE_BYTES = 16 * 2**20


def save_result(out: Any, path: str | Path) -> Path:
    """Write the dataclass ``out`` (a result) to ``path`` (.npz is appended when missing), with its class name as
    its kind. Returns the path written."""
    kind = type(out).__name__
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    fields_meta, arrays = split_result(out)
    meta: dict[str, Any] = {"format": FORMAT, "kind": kind, **fields_meta}
    arrays["__meta__"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def split_result(out: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A result dataclass as (JSON-able fields, arrays): array fields by name, the {method: array} groups as
    ``group/method``, vocab_text with string keys; private and None fields left out. :func:`join_result` inverts it
    (the .npz file here and a batch run's Parquet row both store these two parts)."""
    meta: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for f in fields(out):
        value = getattr(out, f.name)
        if f.name.startswith("_") or value is None:
            continue
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif f.name == "features":  # {name: SAEFeatures}: "features/<name>/<array>", the rest in the JSON
            if value:
                meta[f.name], nested = split_features(value)
                arrays.update({f"features/{key}": array for key, array in nested.items()})
        elif f.name in _ARRAY_GROUPS:
            for key, array in value.items():
                arrays[f"{f.name}/{key}"] = np.asarray(array)
        elif f.name == "vocab_text":
            meta[f.name] = {str(k): v for k, v in value.items()}
        else:
            meta[f.name] = value
    return meta, arrays


def join_result(cls: type, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """The ``cls`` instance of :func:`split_result`'s two parts (names ``cls`` does not have are ignored)."""
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {k: v for k, v in meta.items() if k in known}
    if "vocab_text" in known:
        kwargs["vocab_text"] = {int(k): v for k, v in meta.get("vocab_text", {}).items()}
    for group in _ARRAY_GROUPS:
        if group in known:
            kwargs[group] = {}
    if "features" in known:
        kwargs["features"] = join_features(meta.get("features") or {}, {k[len("features/"):]: a for k, a in
                                                                        arrays.items() if k.startswith("features/")})
    for key, array in arrays.items():
        group, _, method = key.partition("/")
        if group not in known or group == "features":
            continue
        if method:
            kwargs[group][method] = array
        else:
            kwargs[key] = array
    return cls(**kwargs)


def read_result(path: str | Path, kinds: dict[str, type]) -> Any:
    """Read a result written by :func:`save_result` as the class of ``kinds`` named in the file.

    A missing, empty, truncated, tampered or foreign file gives one InputError that says so; the arrays' declared
    sizes are checked before anything is expanded.
    """
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and path.with_suffix(path.suffix + ".npz").exists():
        path = path.with_suffix(path.suffix + ".npz")  # out.save("r") wrote r.npz
    if not path.exists():
        raise InputError(f"No saved output at {path}; write one with out.save({str(path)!r}).")
    try:
        _check_declared_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data:
                raise InputError(f"{path} is not a file written by Output.save.")
            meta = json.loads(str(data["__meta__"]))
            out = _build(path, meta, data, kinds)
        _check_consistent(path, out)
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as error:  # (RecursionError: JSON nested thousands deep)
        message = str(error)[:300]
        raise InputError(f"{path} is not a readable ecco_widgets result ({type(error).__name__}: {message}). It may "
                         "be truncated or modified: save it again with out.save(path).") from None
    return out


def _build(path: Path, meta: dict[str, Any], data: Any, kinds: dict[str, type]) -> Any:
    fmt = meta.pop("format", None)
    kind = _OLD_FORMATS.get(fmt) if fmt != FORMAT else meta.pop("kind", None)
    if kind not in kinds:
        raise InputError(f"{path} has format {fmt!r} (kind {kind!r}); this version reads {FORMAT!r} and "
                         f"{', '.join(map(repr, _OLD_FORMATS))}.")
    return join_result(kinds[kind], meta, {key: data[key].copy() for key in data.files if key != "__meta__"})


def _check_declared_sizes(path: Path) -> None:
    """Each array's header (shape, dtype) must match the bytes stored for it, and all of them must fit in memory:
    checked from the zip directory and the .npy headers alone, before any array is read."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(member))
                header = member.tell()
            if dtype.hasobject:
                raise InputError(f"{path}: {info.filename} holds Python objects; ecco_widgets results never do, so "
                                 "the file was modified. It is not read (that would need pickle).")
            declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            ratio = info.file_size / max(1, info.compress_size)
            if info.file_size > _CHECK_ABOVE_BYTES and ratio > _MAX_EXPANSION:
                raise InputError(f"{path}: {info.filename} expands {ratio:.0f}x, to {info.file_size} bytes; results "
                                 "are stored uncompressed, so this file was not written by Output.save. Not read.")
            if declared != info.file_size - header:
                raise InputError(f"{path}: {info.filename} declares shape {shape} ({declared} bytes) but stores "
                                 f"{info.file_size - header}: the file is truncated or modified.")
            total += declared
    require(total, f"Loading {path}", "The file is larger than this machine can hold; load it on a bigger one.")


def _check_consistent(path: Path, out: Any) -> None:
    """The arrays of a result agree with its tokens (a file edited by hand can break that); a kind that is no
    Output (a PatchingResult) says what disagrees itself (``consistency_problems()``)."""
    if hasattr(out, "consistency_problems"):
        _report(path, out.consistency_problems())
        return
    problems = _token_problems(out)
    if problems:  # the rest is measured against the tokens
        _report(path, problems)
    n = len(out.token_ids)
    ranks = np.asarray(out.ranks)
    if ranks.ndim != 2 or ranks.shape[1] not in (0, n - 1, n):
        problems.append(f"ranks of shape {ranks.shape} for {n} tokens")
    elif ranks.size and (ranks.dtype.kind not in "iu" or ranks.min() < 1):
        problems.append(f"ranks must be integers from 1 (dtype {ranks.dtype}, smallest {ranks.min()})")
    for name in ("target_probs", "entropy", "kl_to_final"):
        values = getattr(out, name, None)
        if values is not None and np.asarray(values).shape != ranks.shape:
            problems.append(f"{name} of shape {np.asarray(values).shape}, ranks {ranks.shape}")
        elif values is not None and not np.isfinite(values).all():
            problems.append(f"{name} holds NaN or infinite values")
    for name, lead in (("topk_ids", (ranks.shape[0], n)), ("topk_probs", (ranks.shape[0], n)),
                       ("hidden_states", (ranks.shape[0] + 1, n)), ("activations", (None, n))):
        values = getattr(out, name, None)
        if values is not None and np.asarray(values).size and (
                np.asarray(values).ndim != 3 or any(w is not None and w != s for w, s in zip(lead, values.shape))):
            problems.append(f"{name} of shape {np.asarray(values).shape} for {ranks.shape[0]} layers and {n} tokens")
    for features in (getattr(out, "features", None) or {}).values():
        problems.extend(features.problems(n))
    targets = None if out.targets is None else np.asarray(out.targets)
    if targets is not None and targets.size and (targets.min() < 0 or targets.max() >= n):
        problems.append(f"targets {targets.tolist()[:6]} outside the {n} tokens")
    columns = n + int(getattr(out, "n_source", 0))  # an encoder-decoder's attributions cover its source first
    if getattr(out, "unit", "token") == "word" and getattr(out, "piece_starts", None) is not None:
        columns = int(out.piece_starts[-1])  # a word-level output keeps its attributions over the pieces
    for method, raw in out.attributions_raw.items():
        if targets is None or raw.ndim != 3 or raw.shape[:2] != (len(targets), columns):
            problems.append(f"attributions {method!r} of shape {raw.shape} for targets {out.targets} and {columns} "
                            "tokens")
    _report(path, problems)


def _token_problems(out: Any) -> list[str]:
    """What is wrong with a loaded output's tokens: their types, their count, the prompt's length."""
    n = len(out.token_ids)
    for name in ("tokens", "raw_tokens"):
        values = getattr(out, name)
        if not isinstance(values, list) or not all(isinstance(t, str) for t in values):
            return [f"{name} must be a list of strings, not {type(values).__name__}"]
    if len(out.tokens) != n or len(out.raw_tokens) != n:
        return [f"{len(out.tokens)} tokens for {n} token ids"]
    n_input = out.n_input_tokens
    if isinstance(n_input, bool) or not isinstance(n_input, (int, np.integer)) or not 0 <= n_input <= n:
        return [f"n_input_tokens={n_input!r} for {n} tokens"]
    return []


def _report(path: Path, problems: list[str]) -> None:
    if problems:
        raise InputError(f"{path} is inconsistent ({'; '.join(problems)}): it was modified. Save it again with "
                         "out.save(path).")
