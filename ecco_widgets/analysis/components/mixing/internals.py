"""What context mixing reads from a causal LM, one layer at a time during one hooked forward: each block's input,
its value vectors, its attention weights (eager attention) and its attention output (after the output projection).

A model kind's ExplainedFunction offers these through ``internals()`` (a :class:`ModelInternals`); kinds without it
are refused by ``check_methods`` before any forward. Each layer is handed to a callback as soon as its attention has
run and is then dropped, so memory holds one layer's attention weights, not all of them.

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from ecco_widgets.adapter import discover_spec
>>> model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
...     num_attention_heads=4, num_key_value_heads=2, vocab_size=50)).eval()
>>> spec = discover_spec(model)
>>> inside = ModelInternals(spec, spec.embedding(torch.tensor([[1, 2, 3]])).detach(), torch.tensor([2]),
...                         torch.tensor([7]), None, n_columns=4)
>>> seen = []
>>> _ = run_layers(inside, lambda r: seen.append((r.layer, tuple(r.weights.shape), tuple(r.values.shape))))
>>> seen
[(0, (4, 3, 3), (3, 2, 8)), (1, (4, 3, 3), (3, 2, 8))]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ....capture import block_output, forward_until, this_thread_only
from ....errors import UnsupportedModelError
from ..attention import attention_weights, eager_attention
from .layout import MixingLayout, mixing_layout


@dataclass
class ModelInternals:
    """What a causal LM's ExplainedFunction offers context mixing. embeddings: (1, L, d), the prefix fed to the model
    (L = the last target's position); rows: int (T,), the row that predicts each target (its position - 1);
    token_ids / foil_ids: int (T,) (foil_ids None without a contrast); n_columns: the columns of the result."""

    spec: Any
    embeddings: torch.Tensor
    rows: torch.Tensor
    token_ids: torch.Tensor
    foil_ids: torch.Tensor | None
    n_columns: int

    @property
    def length(self) -> int:
        return int(self.embeddings.shape[1])

    def layout(self) -> MixingLayout:
        return mixing_layout(self.spec)

    def final_hidden(self) -> torch.Tensor:
        """The last block's output (the final norm's input), in the model's dtype (L, d)."""
        with torch.inference_mode():
            hidden = forward_until(self.spec.blocks[-1], self.spec.model, inputs_embeds=self.embeddings,
                                   use_cache=False)
        return hidden[0]


@dataclass
class LayerRecord:
    """One block of the forward: x (L, d) its input; values (L, n_kv_heads, head_dim); weights (n_heads, L, L) the
    attention weights (query rows, key columns); attn_out (L, d) what the attention adds to the residual stream
    (the output projection's output, bias included). All float32."""

    layer: int
    x: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor
    attn_out: torch.Tensor


def run_layers(internals: ModelInternals, on_layer: Callable[[LayerRecord], None],
               layout: MixingLayout | None = None) -> torch.Tensor:
    """One forward over the prefix with eager attention; ``on_layer`` gets each block's :class:`LayerRecord` as soon as
    its attention has run. Returns the last block's output, float32 (L, d)."""
    layout = layout or internals.layout()
    spec = internals.spec
    current: dict[str, Any] = {}
    hooks = []

    def block_input(layer: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            current.clear()
            current["x"] = hidden[0].detach().float()
        return hook

    def value_output(layer: int):
        def hook(module, args, output):
            current["values"] = layout.values_of(layer, output[0].detach())
        return hook

    def projection_output(module, args, output):
        current["attn_out"] = block_output(output)[0].detach().float()

    def attention_output(layer: int):
        def hook(module, args, output):
            weights = attention_weights(output, current["x"].shape[0])
            if weights is None:
                raise UnsupportedModelError(f"Block {layer}'s attention returned no weights under eager attention; "
                                            "context mixing needs them.")
            on_layer(LayerRecord(layer, current["x"], current["values"], weights[0].detach().float(),
                                 current["attn_out"]))
            current.clear()
        return hook

    try:
        for layer, block in enumerate(spec.blocks):
            hooks.append(block.register_forward_pre_hook(this_thread_only(block_input(layer)), with_kwargs=True))
            hooks.append(layout.value_modules[layer].register_forward_hook(this_thread_only(value_output(layer))))
            hooks.append(spec.attention_out(layer).register_forward_hook(this_thread_only(projection_output)))
            hooks.append(layout.attention[layer].register_forward_hook(this_thread_only(attention_output(layer))))
        with eager_attention(spec.model), torch.inference_mode():
            hidden = forward_until(spec.blocks[-1], spec.model, inputs_embeds=internals.embeddings, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return hidden[0].float()


@dataclass
class MixingMatrices:
    """What a context-mixing method gives for T targets over the L prefix tokens (float32): ``layers`` (n_layers, T,
    L) each layer's own matrix at the target rows, ``rolled`` (n_layers, T, L) the same traced to the input tokens
    through the layers below, ``score`` (T, L) the method's per-token score."""

    layers: torch.Tensor
    rolled: torch.Tensor
    score: torch.Tensor
