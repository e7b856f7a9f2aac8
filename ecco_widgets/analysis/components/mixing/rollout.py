"""Attention rollout (Abnar & Zuidema 2020): per layer the attention averaged over heads, plus the identity (the
residual connection), rows normalised; multiplied from the first layer up.

``A_l = rownorm(mean_h W_h + I)``, ``R_l = A_l R_(l-1)`` with ``R_(-1) = I``; a target's score over the source tokens
is its row of ``R_last`` (each row sums to 1). Cost: one forward with eager attention, plus an (L x L) product per
layer.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from .internals import ModelInternals
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50)).eval())
>>> inside = ModelInternals(spec, spec.embedding(torch.tensor([[1, 2, 3]])).detach(), torch.tensor([2]),
...                         torch.tensor([7]), None, n_columns=4)
>>> result = attention_rollout(inside)
>>> round(float(result.score.sum()), 5), tuple(result.rolled.shape)
(1.0, (2, 1, 3))
"""

from __future__ import annotations

import torch

from .internals import LayerRecord, MixingMatrices, ModelInternals, run_layers


def attention_rollout(internals: ModelInternals) -> MixingMatrices:
    """Rollout at the rows of ``internals``' targets; layers[l] is row-normalised (mean attention + I) of layer l."""
    n = internals.length
    rows = internals.rows.cpu()
    state = {"rolled": torch.eye(n)}
    layers, rolled = [], []

    def on_layer(record: LayerRecord) -> None:
        mixed = record.weights.mean(0).cpu() + torch.eye(n)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        state["rolled"] = mixed @ state["rolled"]
        layers.append(mixed[rows])
        rolled.append(state["rolled"][rows])

    run_layers(internals, on_layer)
    return MixingMatrices(torch.stack(layers), torch.stack(rolled), rolled[-1].clone())
