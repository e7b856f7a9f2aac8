"""The explained scalar: "prob" (default, as Ecco), "logit" or "logprob" of a token or label, optionally minus a foil.

Every model kind reads its explained value through :func:`scalar_of_logits` (the one switch over the three
targets) or, when the logits come from decoding hidden rows through a vocabulary head, :func:`decoded_scalar`
(which decodes a bounded number of rows at a time).

>>> import torch
>>> logits = torch.tensor([[[2.0, 0.0, 0.0]]])          # (b=1, T=1, vocab=3)
>>> round(float(scalar_of_logits(logits, torch.tensor([0]), "prob")), 4)
0.787
>>> float(scalar_of_logits(logits, torch.tensor([0]), "logit", foil_ids=torch.tensor([1])))   # contrastive
2.0
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

TARGETS = ("prob", "logit", "logprob")
DECODE_BUDGET_BYTES = 64 * 2**20


def scalar_of_logits(logits: torch.Tensor, ids: torch.Tensor, target: str = "prob",
                     foil_ids: torch.Tensor | None = None, multi_label: bool = False) -> torch.Tensor:
    """f from logits (b, T, V) and the explained ids (T,) -> float32 (b, T).

    target: "prob" (softmax, or sigmoid when ``multi_label``), "logit", or "logprob" (log-softmax / log-sigmoid).
    foil_ids: int (T,), -1 where a target has no foil: f(token) - f(foil) (contrastive, as inseq's
    ``contrast_prob_diff``).
    """
    logits = logits.float()
    if target == "logit":
        values = logits
    elif target == "prob":
        values = logits.sigmoid() if multi_label else logits.softmax(-1)
    else:
        values = nn.functional.logsigmoid(logits) if multi_label else logits.log_softmax(-1)
    chosen = _pick(values, ids)
    if foil_ids is not None:
        foils = foil_ids.to(values.device)
        chosen = chosen - torch.where(foils >= 0, _pick(values, foils.clamp(min=0)), 0.0)
    return chosen


def _pick(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    index = ids.to(values.device)[None, :, None].expand(values.shape[0], -1, 1)
    return values.gather(-1, index)[..., 0]


def decoded_scalar(decode: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor, ids: torch.Tensor,
                   target: str = "prob", foil_ids: torch.Tensor | None = None, vocab_size: int = 1 << 16,
                   budget_bytes: int | None = None) -> torch.Tensor:
    """f of hidden rows h (b, T, d) decoded to logits by ``decode``, a bounded number of targets at a time."""
    budget = DECODE_BUDGET_BYTES if budget_bytes is None else budget_bytes
    per_chunk = max(1, budget // (3 * 4 * vocab_size * max(1, h.shape[0])))
    parts = []
    for start in range(0, h.shape[1], per_chunk):
        stop = start + per_chunk
        foils = None if foil_ids is None else foil_ids[start:stop]
        parts.append(scalar_of_logits(decode(h[:, start:stop]), ids[start:stop], target, foils))
    return torch.cat(parts, dim=1)
