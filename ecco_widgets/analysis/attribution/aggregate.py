"""Reduce raw attributions over the embedding dimensions for display.

>>> raw = np.array([[[3.0, 4.0], [0.0, 0.0]]], dtype=np.float32)   # (n_targets=1, n_tokens=2, d_model=2)
>>> aggregate_attributions(raw, "l2").tolist(), aggregate_attributions(raw, "sum").tolist()
([[5.0, 0.0]], [[7.0, 0.0]])
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError

AGGREGATES = ("sum", "l2", "l2_normalized")


def aggregate_attributions(raw: np.ndarray, how: str = "sum") -> np.ndarray:
    """Reduce raw attributions (n_targets, n_tokens, d_model) over the embedding dimensions -> (n_targets, n_tokens).

    how: "sum" (signed), "l2" (norm), "l2_normalized" (norm, each row divided by its sum: Ecco's display default;
    an all-zero row stays 0).
    """
    if how not in AGGREGATES:
        raise InputError(f"Unknown aggregate {how!r}; choose from {', '.join(AGGREGATES)}.")
    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise InputError(f"Raw attributions must be (n_targets, n_tokens, d_model); got shape {raw.shape}.")
    if how == "sum":
        return raw.sum(axis=-1, dtype=np.float64).astype(np.float32)
    norms = np.sqrt(np.square(raw, dtype=np.float64).sum(axis=-1))
    if how == "l2_normalized":
        totals = norms.sum(axis=1, keepdims=True)
        norms = np.divide(norms, totals, out=np.zeros_like(norms), where=totals > 0)
    return norms.astype(np.float32)
