"""Baselines of integrated gradients and occlusion, and the positions held fixed along the path.

``baseline=``: ``"zero"`` (default of captum and Ecco), ``"pad"`` / ``"eos"`` / ``"bos"`` / ``"mask"`` (that special
token's embedding at every position), ``"mean"`` (the mean of the embedding matrix), a string that is one token
(its embedding), or a tensor (d_model,) or (n_tokens, d_model). ``keep=``: positions that stay at their input along
the path (``"first"``: position 0, the attention sink of RMSNorm models; ``"special"``: the first token and every
special token such as BOS or chat-template markers; ``"none"``; or a list of positions).

>>> import torch
>>> embedding = torch.nn.Embedding(5, 2)
>>> with torch.no_grad():
...     _ = embedding.weight.copy_(torch.arange(10.0).reshape(5, 2))
>>> tensor, described = baseline_embeddings("mean", embedding, torch.tensor([[1, 2, 3]]), None, None)
>>> tensor[0].tolist(), described
([[4.0, 5.0], [4.0, 5.0], [4.0, 5.0]], 'mean token embedding')
>>> keep_mask("first", [7, 3, 3], set()).tolist()
[True, False, False]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError

BASELINES = ("zero", "pad", "eos", "bos", "mask", "mean")
KEEP = ("none", "first", "special")


def _special_id(name: str, tokenizer: Any, config: Any) -> int:
    for source in (tokenizer, config):
        value = getattr(source, f"{name}_token_id", None) if source is not None else None
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, (int, np.integer)):
            return int(value)
    raise InputError(f"baseline={name!r}: this model names no {name} token (tokenizer.{name}_token_id); choose "
                     f"another baseline ({', '.join(BASELINES)}, a token string or a tensor).")


def baseline_embeddings(baseline: Any, embedding: nn.Module, input_ids: torch.Tensor, tokenizer: Any,
                        config: Any) -> tuple[torch.Tensor | None, str]:
    """The baseline as (1, n_tokens, d_model) embeddings (None for "zero") and its description for the settings."""
    n = int(input_ids.shape[-1])
    if isinstance(baseline, str) and baseline == "zero":
        return None, "zero"
    weight = embedding.weight
    if isinstance(baseline, torch.Tensor) or isinstance(baseline, np.ndarray):
        tensor = torch.as_tensor(baseline, dtype=weight.dtype, device=input_ids.device)
        if tensor.dim() == 1:
            tensor = tensor[None].expand(n, -1)
        if tuple(tensor.shape) != (n, weight.shape[1]):
            raise InputError(f"A baseline tensor must have shape (d_model,) = ({weight.shape[1]},) or (n_tokens, "
                             f"d_model) = ({n}, {weight.shape[1]}); got {tuple(tensor.shape)}.")
        return tensor[None].clone(), "tensor"
    if not isinstance(baseline, str):
        raise InputError(f"baseline must be one of {', '.join(BASELINES)}, a token string or a tensor; got "
                         f"{type(baseline).__name__}.")
    with torch.inference_mode():
        if baseline == "mean":
            row = weight.float().mean(0).to(weight.dtype)
            described = "mean token embedding"
        else:
            if baseline in ("pad", "eos", "bos", "mask"):
                token = _special_id(baseline, tokenizer, config)
                described = f"{baseline} token embedding (id {token})"
            else:
                if tokenizer is None:
                    raise InputError(f"baseline={baseline!r} names a token, but this model has no tokenizer; pass "
                                     f"one of {', '.join(BASELINES)} or a tensor.")
                ids = tokenizer.encode(baseline, add_special_tokens=False)
                if len(ids) != 1:
                    raise InputError(f"baseline={baseline!r} is neither one of {', '.join(BASELINES)} nor a single "
                                     f"token (it splits into {len(ids)} tokens).")
                token = int(ids[0])
                described = f"token {baseline!r} embedding (id {token})"
            row = embedding(torch.tensor([token], device=input_ids.device))[0]
    return row[None, None].expand(1, n, -1).clone(), described


def keep_mask(keep: Any, ids: Sequence[int], special_ids: set[int]) -> torch.Tensor | None:
    """bool (n_tokens,) of the positions held at their input along the path, or None when none is."""
    n = len(ids)
    if keep is None or (isinstance(keep, str) and keep == "none"):
        return None
    mask = torch.zeros(n, dtype=torch.bool)
    if isinstance(keep, str):
        if keep not in KEEP:
            raise InputError(f"keep must be one of {', '.join(KEEP)} or a list of positions; got {keep!r}.")
        mask[0] = True
        if keep == "special":
            mask |= torch.tensor([int(i) in special_ids for i in ids], dtype=torch.bool)
        return mask
    for p in keep:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not -n <= p < n:
            raise InputError(f"keep position {p!r} is out of range: the text has {n} tokens (0..{n - 1}).")
        mask[int(p) % n] = True
    return mask if bool(mask.any()) else None
