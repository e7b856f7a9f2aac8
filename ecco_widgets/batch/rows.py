"""One Parquet row per prompt: an Output's arrays as flat list columns plus their shapes, its other fields as JSON,
and a few per-prompt scalars; and back to the same Output.

Column names: ``<field>`` and ``<field>.shape`` for each array field (``attributions_raw/ig`` ... for the
per-method groups), ``fields`` (JSON of the rest), and the scalars of :data:`SCALAR_COLUMNS`.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> out = Output(token_ids=np.array([5, 6, 7]), tokens=["a", " b", " c"], raw_tokens=["a", "Ġb", "Ġc"],
...              n_input_tokens=2, ranks=np.array([[3, 4], [2, 1]], dtype=np.int32))
>>> row = output_row(out, prompt_index=4, text="a b", seconds=0.5)
>>> row["ranks"].tolist(), row["ranks.shape"], row["next_token"], row["next_token_rank1_layer"]
([3, 4, 2, 1], [2, 2], ' c', 1)
>>> back = row_output(row)
>>> back.ranks.tolist(), back.tokens
([[3, 4], [2, 1]], ['a', ' b', ' c'])
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..analysis.attribution import PATH_METHODS
from ..errors import EccoWidgetsError
from ..results import Output
from ..results.storage import join_result, split_result

# per-prompt scalars, read without the arrays by BatchResults.frame(): name -> pyarrow type name
SCALAR_COLUMNS = {
    "prompt_index": "int64", "text": "string", "error": "string", "seconds": "float64", "rank": "int32",
    "n_tokens": "int32", "n_input_tokens": "int32", "n_generated": "int32", "next_token": "string",
    "next_token_rank1_layer": "int32", "mean_kl": "float64", "warnings": "string",
}


def expected_columns(settings: dict[str, Any], pa: Any) -> dict[str, Any]:
    """The array columns (and their shapes) every successful row of a run with ``settings`` has, with their pyarrow
    types: written into every part (as nulls in error rows), so that all parts share one schema."""
    arrays = {"token_ids": pa.int64(), "ranks": pa.int32(), "topk_ids": pa.int32(), "topk_probs": pa.float32(),
              "target_probs": pa.float32(), "entropy": pa.float32(), "kl_to_final": pa.float32()}
    if settings.get("keep_hidden_states"):
        arrays["hidden_states"] = pa.float32()
    if settings.get("activations"):
        arrays["activations"] = pa.float32()
    methods = settings.get("attribution") or []
    if methods:
        arrays["targets"] = pa.int64()
    for method in methods:
        arrays[f"attributions_raw/{method}"] = pa.float32()
        if method in PATH_METHODS:
            arrays[f"convergence_deltas/{method}"] = pa.float32()
            arrays[f"completeness_max/{method}"] = None  # a scalar (float64)
    for described in settings.get("saes") or []:  # lm.analyze(saes=...): each dictionary's sparse features
        name = described["name"]
        arrays.update({f"features/{name}/indices": pa.int32(), f"features/{name}/values": pa.float32(),
                       f"features/{name}/error_norm": pa.float32()})
    columns: dict[str, Any] = {}
    for name, kind in arrays.items():
        if kind is None:
            columns[name] = pa.float64()
            continue
        columns[name] = pa.list_(kind)
        columns[f"{name}.shape"] = pa.list_(pa.int64())
    columns["fields"] = pa.string()
    return columns


def answer_column(n_tokens: int, n_input_tokens: int) -> int:
    """The lens column of a prompt's "next token": the first generated one (column n_input - 1) when tokens were
    generated, else the last token of the text (column n_tokens - 2).

    >>> answer_column(9, 6), answer_column(6, 6)
    (5, 4)
    """
    return n_input_tokens - 1 if n_tokens > n_input_tokens else n_tokens - 2


def first_rank1_layer(ranks: np.ndarray, column: int) -> int:
    """The first layer at which ``ranks[:, column]`` is 1, or -1 when none is.

    >>> first_rank1_layer(np.array([[5, 2], [1, 1]]), 0), first_rank1_layer(np.array([[5], [3]]), 0)
    (1, -1)
    """
    hits = np.flatnonzero(np.asarray(ranks)[:, column] == 1)
    return int(hits[0]) if hits.size else -1


def output_row(out: Output, prompt_index: int, text: str, seconds: float, rank: int = 0) -> dict[str, Any]:
    """The row of one analysed prompt (see the module docstring for its columns)."""
    row: dict[str, Any] = {"prompt_index": int(prompt_index), "text": text, "error": None, "seconds": float(seconds),
                           "rank": int(rank)}
    rest, arrays = split_result(out)  # the parts Output.save writes, so a row holds what a saved file holds
    for name, array in arrays.items():
        row[name] = array.reshape(-1)
        row[f"{name}.shape"] = [int(s) for s in array.shape]
    row["fields"] = json.dumps(rest, ensure_ascii=False)
    row.update(_scalars(out))
    return row


def error_row(prompt_index: int, text: Any, error: str, seconds: float, rank: int = 0) -> dict[str, Any]:
    """The row of a prompt that could not be analysed: its text and the error, no arrays."""
    return {"prompt_index": int(prompt_index), "text": text if isinstance(text, str) else repr(text),
            "error": error, "seconds": float(seconds), "rank": int(rank)}


def row_output(row: dict[str, Any]) -> Output:
    """The Output stored in ``row`` (an error row raises ValueError with its error)."""
    if row.get("error"):
        raise ValueError(f"prompt {row.get('prompt_index')} failed: {row['error']}")
    arrays = {name: np.asarray(value).reshape(row[f"{name}.shape"]) for name, value in row.items()
              if value is not None and f"{name}.shape" in row and row[f"{name}.shape"] is not None}
    return join_result(Output, json.loads(row["fields"]), arrays)


def _scalars(out: Output) -> dict[str, Any]:
    n, n_input = out.n_tokens, out.n_input_tokens
    scalars: dict[str, Any] = {"n_tokens": n, "n_input_tokens": n_input, "n_generated": n - n_input,
                               "next_token": None, "next_token_rank1_layer": None, "mean_kl": None}
    if n >= 2:
        column = answer_column(n, n_input)
        scalars["next_token"] = out.tokens[column + 1]
        scalars["next_token_rank1_layer"] = first_rank1_layer(out.ranks, column)
    if out.kl_to_final is not None and out.kl_to_final.size:
        scalars["mean_kl"] = float(np.mean(out.kl_to_final, dtype=np.float64))
    for method in out.convergence_deltas:  # the worst relative completeness error of the prompt's rows
        try:
            errors = out.convergence_delta(method, relative=True)
        except EccoWidgetsError:
            continue
        scalars[f"completeness_max/{method}"] = float(np.max(errors)) if errors.size else None
    return scalars
