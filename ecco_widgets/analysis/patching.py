"""Activation patching's arithmetic, on tensors and arrays: the logit difference, its normalisation, the top-k of a
patched run, and how well attribution patching agrees with exact patching.

>>> import numpy as np
>>> normalised_effect(np.array([2.0, 5.0, 8.0]), clean=8.0, corrupted=2.0).tolist()
[0.0, 0.5, 1.0]
>>> agreement(np.array([[0.1, 0.9], [0.0, -0.2]]), np.array([[-0.2, 0.7], [0.05, -0.1]]))["sign_agreement"]
0.6666666666666666
"""

from __future__ import annotations

import numpy as np
import torch


def logit_difference(logits: torch.Tensor, answer: int, foil: int) -> torch.Tensor:
    """logits[..., answer] - logits[..., foil] in float32 (float64 for a float64 model): (..., vocab) -> (...)."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    return logits[..., answer].to(dtype) - logits[..., foil].to(dtype)


def normalised_effect(logit_diff: np.ndarray, clean: float, corrupted: float) -> np.ndarray:
    """(LD - LD_corrupted) / (LD_clean - LD_corrupted), float32 of logit_diff's shape: 0 = the corrupted run's
    logit difference, 1 = the clean run's."""
    return ((np.asarray(logit_diff, np.float64) - corrupted) / (clean - corrupted)).astype(np.float32)


def topk_of(logits: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids int32 (..., k), probabilities float32 (..., k)) of the softmax over logits (..., vocab), best first."""
    probs = torch.softmax(logits.float(), dim=-1)
    values, ids = torch.topk(probs, k, dim=-1)
    return ids.to("cpu", torch.int32).numpy(), values.to("cpu").numpy().astype(np.float32)


#: Cells whose exact effect is smaller than this (1 % of the clean - corrupted gap) have no sign to agree with.
SIGN_FLOOR = 0.01


def agreement(exact: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """How an estimate of the effects matches the exact ones: Pearson's r over every cell (NaN when either is
    constant), and the share of sign agreement over the cells whose exact effect is at least SIGN_FLOOR in size
    ("signed_cells" of them; NaN when none is)."""
    a = np.asarray(exact, np.float64).ravel()
    b = np.asarray(estimate, np.float64).ravel()
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        r = float("nan")
    else:
        r = float(np.corrcoef(a, b)[0, 1])
    signed = np.abs(a) >= SIGN_FLOOR
    share = float(np.mean(np.sign(a[signed]) == np.sign(b[signed]))) if signed.any() else float("nan")
    return {"pearson": r, "sign_agreement": share, "signed_cells": float(signed.sum())}
