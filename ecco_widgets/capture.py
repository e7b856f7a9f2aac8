"""One hooked forward pass over the final token sequence: hidden states, MLP activations, attention, logits.

Hooks are registered for the duration of one call and always removed, also when the forward raises.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> import torch
>>> from ecco_widgets.adapter import discover_spec
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval()
>>> cap = capture(discover_spec(model), torch.tensor([[1, 2, 3]]), activation_layers=[1])
>>> tuple(cap.hidden.shape), tuple(cap.activations[1].shape), tuple(cap.logits.shape)
((3, 3, 32), (3, 128), (3, 100))
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from .adapter import ResolvedSpec, block_output
from .errors import InputError


@dataclass
class Captured:
    """What one forward pass recorded, for a single sequence.

    hidden: float (n_layers + 1, n_tokens, d_model): row 0 is the input of block 0 (the embeddings), row l+1 the
    output of block l, all *before* the final norm. logits: float (n_tokens, vocab), the model's own (None for an
    encoder without a head).
    activations: {layer: array (n_tokens, n_neurons)} (numpy, in the storage dtype), numeric layer order.
    attentions: float (n_layers, n_heads, n_tokens, n_tokens) or None.
    """

    hidden: torch.Tensor
    logits: torch.Tensor | None
    activations: dict[int, np.ndarray] = field(default_factory=dict)
    attentions: torch.Tensor | None = None


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


def check_activation_memory(spec: ResolvedSpec, layers: list[int], n_tokens: int, dtype: np.dtype) -> int:
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


@contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()


def capture(
    spec: ResolvedSpec,
    input_ids: torch.Tensor,
    activation_layers: list[int] | None = None,
    activation_dtype: str | np.dtype = np.float32,
    attention: bool = False,
) -> Captured:
    """Run the model once on ``input_ids`` (shape (1, n_tokens)) and record what the analyses need."""
    model = spec.model
    n_layers = spec.n_layers
    block_inputs: list[torch.Tensor | None] = [None]
    block_outputs: list[torch.Tensor | None] = [None] * n_layers
    activations: dict[int, np.ndarray] = {}
    np_dtype = np.dtype(activation_dtype)
    handles: list = []

    def first_block_input(module, args, kwargs):
        hidden = args[0] if args else kwargs.get("hidden_states")
        block_inputs[0] = hidden.detach()[0]

    def keep_block_output(layer):
        def hook(module, args, output):
            block_outputs[layer] = block_output(output).detach()[0]
        return hook

    def keep_activation(layer):
        def hook(module, args):
            activations[layer] = args[0].detach()[0].float().cpu().numpy().astype(np_dtype, copy=True)
        return hook

    with _hooks(handles), torch.inference_mode():
        handles.append(spec.blocks[0].register_forward_pre_hook(first_block_input, with_kwargs=True))
        for layer, block in enumerate(spec.blocks):
            handles.append(block.register_forward_hook(keep_block_output(layer)))
        for layer in sorted(activation_layers or []):
            proj = spec.down_proj(layer)
            if proj is None:
                raise InputError(
                    f"No MLP was found in block {layer}; pass ew.ModelSpec(down_proj=[...]) to name the MLP output "
                    "projection of each block."
                )
            handles.append(proj.register_forward_pre_hook(keep_activation(layer)))
        kwargs = {"use_cache": False}
        if attention:
            kwargs["output_attentions"] = True
        output = model(input_ids=input_ids, **kwargs)

    missing = [i for i, h in enumerate(block_outputs) if h is None]
    if missing or block_inputs[0] is None:
        raise RuntimeError(f"Blocks {missing} did not run during the forward pass; the ModelSpec may be wrong.")
    hidden = torch.stack([block_inputs[0], *block_outputs]).float()  # type: ignore[list-item]
    attentions = None
    if attention:
        if not output.attentions or output.attentions[0] is None:
            raise RuntimeError("The model returned no attention weights; load it with attn_implementation='eager'.")
        attentions = torch.stack([a[0] for a in output.attentions]).float()
    logits = getattr(output, "logits", None)
    return Captured(
        hidden=hidden,
        logits=None if logits is None else logits[0].float(),
        activations=dict(sorted(activations.items())),
        attentions=attentions,
    )
