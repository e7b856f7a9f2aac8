"""ALTI-Logit (Ferrando et al. 2023, after the authors' code, mt-upc/logit-explanations): the target's logit updates
of each layer's attention, split over the source tokens and traced to the input tokens through ALTI's mixing of the
layers below.

For layer l, query row t and source j, the attention block's output is decomposed as
``z_tj = sum_h A_h[t, j] v_hj W_O^h`` (attention weight x value vector, bias of the values included, through head h's
slice of the output projection; GQA: a query head reads its key/value head's values), so that
``x_t + sum_j z_tj + b_O`` is the residual stream after the attention. Then:

* the logit update ``dlogit_l[t, j] = z_tj . g_t``, ``g_t`` the target's unembedding row (minus its foil's) through
  the final norm frozen at its real scale at row t (the pre-cap logit on soft-capped models);
* ALTI's layer matrix ``C_l[t, j] = max(0, |y_t|_1 - |z_tj + [j = t] x_t - y_t|_1)``, rows normalised, with
  ``y_t = x_t + attn_out_t``; rolled out ``M_l = C_l M_(l-1)``, ``M_(-1) = I``;
* ALTI-Logit of source s: ``sum_l (dlogit_l M_(l-1))[t, s]``.

Memory: one layer's attention weights and value projections, two (L x L) float32 matrices, and the decomposition
for a chunk of query rows at a time (``CHUNK_BYTES``); nothing grows with the number of layers. At 2,000 tokens on
SmolLM2: see docs/components.md (benchmarks/bench_mixing.py).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from .internals import ModelInternals
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50)).eval())
>>> inside = ModelInternals(spec, spec.embedding(torch.tensor([[1, 2, 3]])).detach(), torch.tensor([2]),
...                         torch.tensor([7]), None, n_columns=4)
>>> result = alti_logit(inside)
>>> tuple(result.layers.shape), bool(torch.allclose(result.score, result.rolled.sum(0)))
((2, 1, 3), True)
"""

from __future__ import annotations

import torch

from types import SimpleNamespace

from torch import nn

from ..batched import readout_rows
from ..norms import apply_frozen_rows, freeze_rows
from .internals import LayerRecord, MixingMatrices, ModelInternals, run_layers

#: Memory for the per-source decomposition of one chunk of query rows (rows x sources x d_model float32).
CHUNK_BYTES = 64 * 2**20


def logit_directions(internals: ModelInternals, final_hidden: torch.Tensor) -> torch.Tensor:
    """g_t for each target: float32 (T, d), the unembedding row of its token (minus its foil's) through the final
    norm(s) and projections (OPT's ``project_out``) frozen at the real forward's scale at its row, as direct logit
    attribution folds them (final_hidden: the last block's output (L, d) in the model's dtype)."""
    spec = internals.spec
    inputs, x = {}, final_hidden
    with torch.inference_mode():
        for index, module in enumerate(spec.final_norms):
            inputs[f"final.{index}"] = x.float()
            x = module(x)
    inputs["unembed"] = x.float()
    head = SimpleNamespace(final_chain=list(spec.final_norms), unembedding=spec.unembedding)
    foils = None if internals.foil_ids is None else internals.foil_ids.to(x.device)  # -1: that target has no foil
    return readout_rows(head, inputs, internals.rows.to(x.device), internals.token_ids.to(x.device), foils)[0]


def alti_layer(record: LayerRecord, per_head: torch.Tensor, chunk: int, post: nn.Module | None = None) -> torch.Tensor:
    """ALTI's matrix of one layer, float32 (L, L): per_head (H, L, d) each head's value vectors through its slice of the
    output projection; rows of queries processed ``chunk`` at a time; ``post``: the norm the attention's output goes
    through before the residual stream (Gemma-2/3), frozen at its scale at each query row."""
    n = record.x.shape[0]
    added = record.attn_out
    if post is not None:
        bias = getattr(post, "bias", None)
        added = apply_frozen_rows(post, record.attn_out, record.attn_out) + (0 if bias is None else bias.float())
    resultant = record.x + added  # (L, d): the residual stream after the attention
    mixing = torch.zeros(n, n, device=record.x.device)
    for t0 in range(0, n, chunk):
        t1 = min(n, t0 + chunk)
        rows = torch.arange(t0, t1, device=record.x.device)
        # (t1, c, H) @ (t1, H, d): every source's vector at each query row of the chunk, as (t1 sources, c rows, d)
        parts = torch.bmm(record.weights[:, t0:t1, :t1].permute(2, 1, 0), per_head[:, :t1].transpose(0, 1))
        if post is not None:
            parts = apply_frozen_rows(post, record.attn_out[t0:t1], parts)
        parts[rows, rows - t0] += record.x[t0:t1]
        distance = parts.sub_(resultant[None, t0:t1]).abs_().sum(-1).T  # (c, t1), in place: one copy in memory
        del parts
        contribution = (resultant[t0:t1].abs().sum(-1, keepdim=True) - distance).clamp(min=0)
        contribution = contribution * (torch.arange(t1, device=rows.device)[None, :] <= rows[:, None])  # causal
        totals = contribution.sum(-1, keepdim=True)
        mixing[t0:t1, :t1] = contribution / torch.where(totals > 0, totals, torch.ones_like(totals))
    return mixing


def alti_logit(internals: ModelInternals) -> MixingMatrices:
    """ALTI-Logit at the rows of ``internals``' targets: layers[l] = dlogit_l (T, L) (layer l's attention update of
    the logit per source token at that layer), rolled[l] = dlogit_l M_(l-1) (traced to the input tokens),
    score = sum over layers of rolled."""
    layout = internals.layout()
    directions = logit_directions(internals, internals.final_hidden())  # (T, d)
    rows = internals.rows
    n = internals.length
    d_model = int(internals.embeddings.shape[-1])
    chunk = max(1, CHUNK_BYTES // (4 * n * d_model))
    kv_of = layout.kv_of_head()
    state = {"rolled": torch.eye(n, device=directions.device)}
    layers, rolled = [], []

    def on_layer(record: LayerRecord) -> None:
        out = layout.out_matrix(record.layer).to(record.x.device)  # (H, hd, d)
        values = record.values[:, kv_of.to(record.values.device)]  # (L, H, hd)
        per_head = torch.einsum("lhc,hcd->hld", values, out)  # (H, L, d)
        post = layout.post[record.layer]
        g = directions.to(per_head.device)
        if post is not None:  # through the post-attention norm frozen at each target row's scale
            g = freeze_rows(post, record.attn_out[rows], g)[0]
        along = per_head @ g.T  # (H, L, T): each head-source's logit through g_t
        update = torch.einsum("htl,hlt->tl", record.weights[:, rows], along)  # (T, L)
        layers.append(update.cpu())
        rolled.append((update @ state["rolled"]).cpu())
        state["rolled"] = alti_layer(record, per_head, chunk, post) @ state["rolled"]

    run_layers(internals, on_layer, layout)
    stacked = torch.stack(rolled)
    return MixingMatrices(torch.stack(layers), stacked, stacked.sum(0))
