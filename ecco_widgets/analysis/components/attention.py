"""Attention patterns recomputed after the fact: with ``components=True`` the one hooked forward also keeps each
block's attention module input (the normed hidden states) and the other arguments it was called with (rotary
``position_embeddings``, the mask, BLOOM's ALiBi tensor, ...). A head's attention row at one position is then got by
re-running only that layer's attention module with eager attention on those recorded inputs (the family's own
q/k projections, rotary embeddings, ALiBi, scaling, Gemma-2's soft cap and sliding window), not a new forward.

The mask is made additive for eager attention: sdpa's boolean mask becomes 0 / the dtype's minimum, and the
``None`` that sdpa passes when it relies on ``is_causal`` becomes the causal mask.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.capture import capture
>>> from ecco_widgets.analysis.components import ComponentRecorder
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval()
>>> rec = ComponentRecorder(discover_spec(model), n_tokens=3)
>>> _ = capture(rec.spec, torch.tensor([[1, 2, 3]]), plugs=(rec,))
>>> rows = attention_rows(model, rec.finish().attention_calls, position=2)
>>> rows.shape, bool(np.allclose(rows.sum(-1), 1.0))
((2, 2, 3), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ...errors import NotAvailableError

#: Arguments of an attention module that hold a key/value cache (dropped when it is re-run).
CACHE_KEYS = ("cache", "layer_past", "past_key_value", "past_key_values")


@dataclass
class AttentionCall:
    """One block's attention module and what it was called with: args (the hidden states first, or in kwargs as
    ``hidden_states``), kwargs (cache arguments left out)."""

    module: nn.Module
    args: tuple
    kwargs: dict[str, Any]


def attention_module(block: nn.Module, out_proj: nn.Module) -> nn.Module | None:
    """The child of ``block`` that holds its attention output projection ``out_proj`` (GPT-2's ``attn``, Llama's
    ``self_attn``, NeoX's ``attention``, ...), else None."""
    for _, child in block.named_children():
        if child is not out_proj and any(m is out_proj for m in child.modules()):
            return child
    return None


def keep_call(calls: dict[int, AttentionCall], layer: int, n_tokens: int):
    """A forward pre-hook (with kwargs) storing block ``layer``'s attention call in ``calls``."""
    def hook(module, args, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k not in CACHE_KEYS}
        if args:
            args = (args[0].detach()[:, -n_tokens:].clone(), *args[1:])
        elif isinstance(kwargs.get("hidden_states"), torch.Tensor):
            kwargs["hidden_states"] = kwargs["hidden_states"].detach()[:, -n_tokens:].clone()
        calls[layer] = AttentionCall(module, tuple(args), kwargs)
    return hook


def _additive(mask: torch.Tensor | None, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An eager (additive, (1, 1, n, n)) mask from what sdpa was given: None (causal), boolean (True = attend) or
    already additive."""
    low = torch.finfo(dtype).min
    if mask is None:
        keep = torch.ones(n, n, dtype=torch.bool, device=device).tril()[None, None]
        return torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill(~keep, low)
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, low)
    return mask


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Eager attention for the duration (sdpa and flash attention return no weights), restored after."""
    previous = getattr(model.config, "_attn_implementation", None)
    switch = previous not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)


def attention_weights(output: Any, n: int) -> torch.Tensor | None:
    """The attention weights (1, n_heads, n, n) among what an attention module returned."""
    found = [t for t in (output if isinstance(output, tuple) else (output,))
             if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[-2:] == (n, n)]
    return found[-1] if found else None


def attention_rows(model: nn.Module, calls: dict[int, AttentionCall], position: int,
                   layers: Sequence[int] | None = None) -> np.ndarray:
    """float32 (len(layers), n_heads, n_tokens): each head's attention from ``position`` (0-based) over the tokens,
    in each of ``layers`` (None: every layer), re-running only those layers' attention modules, eagerly, on their
    recorded inputs. NotAvailableError when a layer's call was not recorded or returns no weights."""
    layers = sorted(calls) if layers is None else list(layers)
    rows = []
    with torch.no_grad(), eager_attention(model):
        for layer in layers:
            call = calls.get(layer)
            if call is None:
                raise NotAvailableError(f"Block {layer}'s attention module was not recorded, so its pattern cannot "
                                        "be recomputed: analyze with attention=True.")
            hidden = call.args[0] if call.args else call.kwargs["hidden_states"]
            n = hidden.shape[1]
            kwargs = dict(call.kwargs)
            kwargs["attention_mask"] = _additive(kwargs.get("attention_mask"), n, hidden.dtype, hidden.device)
            for key, value in (("use_cache", False), ("output_attentions", True)):
                if key in kwargs:
                    kwargs[key] = value
            weights = attention_weights(call.module(*call.args, **kwargs), n)
            if weights is None:
                raise NotAvailableError(f"{type(call.module).__name__} returned no attention weights when re-run "
                                        "eagerly: analyze with attention=True.")
            rows.append(weights[0, :, position, :].float().cpu().numpy())
    return np.stack(rows).astype(np.float32)
