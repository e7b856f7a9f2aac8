"""Chat turns and template special tokens on a token view: validated here, drawn by js/src/lib/tokens.js
(``chatMarks``): the first token of each turn carries its role, special tokens are dimmed.

>>> check_turns([{"role": "user", "start": 0, "stop": 3}], 4)
[{'role': 'user', 'start': 0, 'stop': 3}]
>>> check_special([0, 1, 0, 0], 4).tolist()
[0, 1, 0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .arrays import ViewValueError

ROLES = ("system", "user", "assistant")


def check_turns(turns: Any, n: int) -> list[dict[str, Any]]:
    """``turns`` as ordered, non-overlapping ``{"role", "start", "stop"}`` token ranges in 0..n; ViewValueError
    otherwise."""
    out: list[dict[str, Any]] = []
    for i, t in enumerate(turns or []):
        if not isinstance(t, Mapping) or not {"role", "start", "stop"} <= set(t):
            raise ViewValueError(f"turns[{i}]: expected {{'role', 'start', 'stop'}}, got {t!r}")
        role, start, stop = t["role"], t["start"], t["stop"]
        if role not in ROLES:
            raise ViewValueError(f"turns[{i}].role: expected one of {', '.join(ROLES)}, got {role!r}")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, stop)) \
                or not 0 <= start < stop <= n or (out and start < out[-1]["stop"]):
            raise ViewValueError(f"turns[{i}]: start {start!r} / stop {stop!r} must be ordered token ranges in "
                                 f"0..{n} (stop exclusive) that do not overlap")
        out.append({"role": str(role), "start": int(start), "stop": int(stop)})
    return out


def check_special(special: Any, n: int) -> np.ndarray:
    """uint8 (n,) flags (1: a chat-template special token), or an empty array for None / empty."""
    if special is None or (isinstance(special, np.ndarray) and special.size == 0) or (
            isinstance(special, (list, tuple)) and not special):
        return np.zeros(0, np.uint8)
    flags = np.asarray(special)
    if flags.shape != (n,) or flags.dtype.kind not in "biu" or not np.isin(flags, (0, 1)).all():
        raise ViewValueError(f"special: expected {n} booleans (True for chat-template special tokens), got shape "
                             f"{flags.shape}")
    return flags.astype(np.uint8)
