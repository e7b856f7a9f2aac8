"""Integrated gradients' completeness: rows should sum to f(input) - f(baseline); warn where they do not.

>>> relative_completeness_error(np.array([0.01, -0.2]), np.array([0.5, -0.4])).tolist()
[0.02, 0.5]
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...errors import COMPLETENESS_TOLERANCE, CompletenessWarning

# IG warns when a row misses completeness by more than COMPLETENESS_TOLERANCE of f(input) - f(baseline) plus this
# absolute floor, so that targets whose f hardly changes do not warn on round-off.
_COMPLETENESS_FLOOR = 1e-6


def relative_completeness_error(deltas: np.ndarray, change: np.ndarray) -> np.ndarray:
    """|delta| / |f(input) - f(baseline)| per row, float64 (guarded against a zero change)."""
    deltas = np.abs(np.asarray(deltas, dtype=np.float64))
    return deltas / np.maximum(np.abs(np.asarray(change, dtype=np.float64)), 1e-12)


_NAMES = {"ig": "Integrated gradients", "sig": "Sequential integrated gradients",
          "dig": "Discretized integrated gradients"}


def check_completeness(deltas: np.ndarray, change: np.ndarray, positions: np.ndarray | None = None,
                       method: str = "ig") -> dict[str, Any]:
    """Warn (CompletenessWarning) when some IG row misses f(input) - f(baseline) by more than COMPLETENESS_TOLERANCE
    of it; return the settings that let Output.convergence_delta(relative=True) report it later. positions: where each
    explained token sits (for the message; rows are named by index without it). method: "ig", or "sig" (whose rows
    must add up to the sum over tokens of f(x) - f(x with that token at its baseline)).

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_completeness(np.array([0.001, 0.05]), np.array([0.5, 0.5]), np.array([3, 4]))["ig_change"]
    [0.5, 0.5]
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    Integrated gradients missed completeness by more than 1% for 1 of 2 explained tokens (worst: 10.0% at position 4)...
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    change = np.asarray(change, dtype=np.float64)
    missed = np.abs(deltas) > COMPLETENESS_TOLERANCE * np.abs(change) + _COMPLETENESS_FLOOR
    if missed.any():
        relative = relative_completeness_error(deltas, change)
        worst = int(np.argmax(np.where(missed, relative, -1.0)))
        where = f"row {worst}" if positions is None else f"position {int(positions[worst])}"
        warnings.warn(
            f"{_NAMES.get(method, method)} missed completeness by more than {COMPLETENESS_TOLERANCE:.0%} for "
            f"{int(missed.sum())} of {missed.size} explained tokens (worst: {relative[worst]:.1%} at {where}). Those "
            "rows do not add up to f(input) - f(baseline). A larger n_steps helps; on RMSNorm models (such as "
            "SmolLM2) with the zero baseline, keep the first token at its input (keep='first' or 'special', the "
            "causal-LM default), or f changes over many decades of alpha next to the baseline and no practical "
            f"n_steps converges. Per-token errors: out.convergence_delta({method!r}, relative=True).",
            CompletenessWarning, stacklevel=4,
        )
    return {f"{method}_change": [float(c) for c in change], "completeness_tolerance": COMPLETENESS_TOLERANCE}
