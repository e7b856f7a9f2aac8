"""Memory estimates made before any large allocation, with errors that say what to reduce.

Each large buffer of an analysis is estimated before the forward pass and refused, with its size and the way out,
when it would take more than half of the memory available on its device (RAM, or the GPU's free memory).

>>> format_bytes(512), format_bytes(3 * 2**20)
('512 B', '3.0 MiB')
>>> needs = capture_needs(n_layers=30, n_tokens=3000, d_model=576, vocab=49152, itemsize=4, n_heads=9,
...                       attention=True)
>>> format_bytes(needs["attention"][0])
'18.1 GiB'
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .errors import InputError

#: The logit lens decodes a bounded block of positions at a time (analysis/lens.py).
LENS_CHUNK_BYTES = 256 * 2**20
#: Buffers of a capture below this size are not checked (no machine that runs the model lacks them).
CHECK_FLOOR_BYTES = 16 * 2**20


def available_memory_bytes(device: torch.device | str | None = None) -> int:
    """Memory available now: the GPU's free memory for a CUDA device, else what the OS reports (Linux), else a
    large number where it cannot tell."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(device)[0])
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


def require(needed: int, what: str, advice: str, device: Any = None) -> int:
    """Raise InputError when ``needed`` bytes exceed half of the memory available on ``device``."""
    budget = available_memory_bytes(device) // 2
    if needed > budget:
        raise InputError(f"{what} needs about {format_bytes(needed)}, more than half of the "
                         f"{format_bytes(2 * budget)} available. {advice}")
    return needed


def capture_needs(n_layers: int, n_tokens: int, d_model: int, vocab: int | None, itemsize: int,
                  n_heads: int | None = None, attention: bool = False) -> dict[str, tuple[int, str, str]]:
    """The large buffers of one analysis: {name: (bytes, what, advice)}.

    hidden: the residual stream of every layer (model dtype, then float32 for the result); logits: the model's own
    logits (n_tokens, vocab); lens: one block of decoded positions; attention: every layer's weights (the model's
    dtype, then float32).
    """
    needs: dict[str, tuple[int, str, str]] = {}
    if attention and n_heads:
        needs["attention"] = (n_layers * n_heads * n_tokens * n_tokens * (itemsize + 4),
                              f"The attention weights of {n_layers} layers x {n_heads} heads x {n_tokens}^2 tokens",
                              "Pass attention=False, or analyse a shorter text (attention grows with the square of "
                              "its length).")
    needs["hidden"] = ((n_layers + 1) * n_tokens * d_model * (itemsize + 4),
                       f"Keeping the hidden states of {n_layers + 1} layers x {n_tokens} tokens",
                       "Analyse a shorter text.")
    if vocab:
        needs["logits"] = (n_tokens * vocab * (itemsize + 4), f"The model's logits over {n_tokens} tokens x {vocab} "
                           "vocabulary entries", "Analyse a shorter text.")
        needs["lens"] = (min(LENS_CHUNK_BYTES, n_layers * n_tokens * vocab * 12),
                         f"Decoding {n_layers} layers through the unembedding (one block of positions)",
                         "Analyse a shorter text.")
    return needs


def check_capture_memory(needs: dict[str, tuple[int, str, str]], device: Any = None) -> None:
    """Refuse, before the forward pass, any buffer of :func:`capture_needs` (of CHECK_FLOOR_BYTES or more) that
    would not fit."""
    for needed, what, advice in needs.values():
        if needed >= CHECK_FLOOR_BYTES:
            require(needed, what, advice, device)


def check_activation_memory(spec: Any, layers: list[int], n_tokens: int, dtype: np.dtype, device: Any = None) -> int:
    """Estimate the bytes the activations will take and raise InputError, with the estimate, if they won't fit."""
    total = 0
    for layer in layers:
        proj = spec.down_proj(layer)
        width = proj.in_features if hasattr(proj, "in_features") else proj.weight.shape[0]
        total += n_tokens * width * np.dtype(dtype).itemsize
    return require(total, f"Capturing MLP activations of {len(layers)} layers x {n_tokens} tokens",
                   "Keep fewer layers (activations=[0, 5, 11]), use activation_dtype='float16', or analyse a shorter "
                   "text.", None)
