"""Memory estimates made before any large allocation, with errors that say what to reduce.

>>> format_bytes(512), format_bytes(3 * 2**20)
('512 B', '3.0 MiB')
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import InputError


def available_memory_bytes() -> int:
    """Memory the OS reports as available now (Linux), or a large number where it cannot tell."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def format_bytes(n: int) -> str:
    """A byte count for messages: '512 B', '75.0 KiB', '176.0 MiB', '1.3 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_activation_memory(spec: Any, layers: list[int], n_tokens: int, dtype: np.dtype) -> int:
    """Estimate the bytes the activations will take and raise InputError, with the estimate, if they won't fit."""
    total = 0
    for layer in layers:
        proj = spec.down_proj(layer)
        width = proj.in_features if hasattr(proj, "in_features") else proj.weight.shape[0]
        total += n_tokens * width * np.dtype(dtype).itemsize
    budget = available_memory_bytes() // 2
    if total > budget:
        raise InputError(
            f"Capturing MLP activations of {len(layers)} layers x {n_tokens} tokens needs about {format_bytes(total)}, "
            f"more than half of the {format_bytes(2 * budget)} available. Keep fewer layers "
            "(activations=[0, 5, 11]), use activation_dtype='float16', or analyse a shorter text."
        )
    return total


