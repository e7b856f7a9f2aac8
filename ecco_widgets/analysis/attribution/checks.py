"""Argument checks of an attribution call, run before any model work; each error says what to pass instead.

>>> check_methods(["ig", "saliency", "ig"])
['ig', 'saliency']
>>> check_methods(["rollout"], internals=True)
['rollout']
>>> check_positions([2, 3], 4, "tokens", "a target needs a token before it").tolist()
[2, 3]
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...errors import InputError
from .methods import DEFAULT_N_STEPS, METHODS, MIXING_METHODS
from .targets import TARGETS


def check_methods(methods: str | Iterable[str] | None, available: Iterable[str] = tuple(METHODS),
                  kind: str = "", internals: bool = False) -> list[str]:
    """The methods as a list without repeats; InputError naming the choices for an unknown or empty one.

    internals: whether the model kind offers its internals (``ExplainedFunction.internals()``, causal LMs): without
    them the context-mixing methods (MIXING_METHODS) are refused here, before any forward."""
    if isinstance(methods, str):
        methods = [methods]
    available = tuple(available)
    choices = ", ".join(available)
    chosen: list[str] = []
    for m in methods or ():
        if m not in available:
            raise InputError(f"Unknown attribution method {m!r}{kind}; choose from {choices}.")
        if m in MIXING_METHODS and not internals:
            gradient = ", ".join(a for a in available if a not in MIXING_METHODS)
            raise InputError(f"Attribution method {m!r}{kind} is not available: it is a context-mixing method, which "
                             f"reads a causal language model's attention weights and value vectors (lm.analyze, "
                             f"lm.generate, lm.chat, ew.batch). Use a gradient method here: {gradient}.")
        if m not in chosen:
            chosen.append(m)
    if not chosen:
        raise InputError(f"No attribution method given; choose from {choices}.")
    return chosen


def check_target(target: Any, name: str = "attribution target") -> str:
    """One of TARGETS ("prob", "logit", "logprob"), else InputError."""
    if target not in TARGETS:
        raise InputError(f"Unknown {name} {target!r}; choose from {', '.join(TARGETS)}.")
    return target


def check_n_steps(n_steps: Any) -> int:
    """n_steps for integrated gradients: DEFAULT_N_STEPS for None, else a positive integer (InputError otherwise)."""
    if n_steps is None:
        return DEFAULT_N_STEPS
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise InputError(f"n_steps must be a positive integer, got {n_steps!r}.")
    return int(n_steps)


def check_positions(positions: Any, n_tokens: int, what: str, why: str) -> np.ndarray:
    """Target positions as int64 (n_targets,), each in 1..n_tokens-1; InputError naming ``what`` and ``why`` else."""
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    if positions.size == 0:
        raise InputError(f"No {what} to explain: the targets selection is empty.")
    if positions.min() < 1 or positions.max() >= n_tokens:
        raise InputError(f"Target positions must lie in 1..{n_tokens - 1} ({why}); got {positions.tolist()}.")
    return positions
