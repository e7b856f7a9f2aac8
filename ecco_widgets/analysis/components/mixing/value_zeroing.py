"""Value zeroing (Mohebbi et al. 2023): how much position i's block output changes when token j's value vectors are
zeroed in that block, ``S_l[i, j] = 1 - cos(block_l(x)_i, block_l(x; v_j = 0)_i)``, rows normalised to sum to 1, then
rolled out across layers as ``R_l = S_l R_(l-1)`` (no identity added: the block output already holds the residual).

Each block's input is held at the clean forward's (as inseq does, by patching every block's output back to the clean
one), so zeroing in layer l changes only layer l's output and the layers can be measured one at a time. Cost: one
clean forward, then for each layer one run of that block alone per token (the L zeroed variants batched, many per
run): about L forwards of one block per layer, i.e. ~L full forwards in all instead of n_layers x L.

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from ecco_widgets.adapter import discover_spec
>>> from .internals import ModelInternals
>>> model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
...     num_attention_heads=4, num_key_value_heads=2, vocab_size=50)).eval()
>>> spec = discover_spec(model)
>>> inside = ModelInternals(spec, spec.embedding(torch.tensor([[1, 2, 3]])).detach(), torch.tensor([2]),
...                         torch.tensor([7]), None, n_columns=4)
>>> result = value_zeroing(inside)
>>> tuple(result.layers.shape), round(float(result.layers[0].sum()), 5), round(float(result.score.sum()), 5)
((2, 1, 3), 1.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ....capture import block_output, forward_until, this_thread_only
from .internals import MixingMatrices, ModelInternals

#: Memory for one batch of zeroed variants of a block (activations of the block over the prefix, per variant).
BATCH_BUDGET_BYTES = 256 * 2**20


def _variants_per_run(length: int, d_model: int, n_heads: int, element: int) -> int:
    per_variant = element * length * (16 * d_model + 2 * n_heads * length)
    return max(1, min(length, BATCH_BUDGET_BYTES // max(1, per_variant)))


def _clean_blocks(internals: ModelInternals) -> list[dict[str, Any]]:
    """Each block's call (args, kwargs) and output in one clean forward over the prefix."""
    calls: list[dict[str, Any]] = [{} for _ in internals.spec.blocks]
    hooks = []
    for layer, block in enumerate(internals.spec.blocks):
        def before(module, args, kwargs, _layer=layer):
            calls[_layer].update(args=args, kwargs=dict(kwargs))

        def after(module, args, output, _layer=layer):
            calls[_layer]["output"] = block_output(output).detach()
        hooks.append(block.register_forward_pre_hook(this_thread_only(before), with_kwargs=True))
        hooks.append(block.register_forward_hook(this_thread_only(after)))
    try:
        with torch.inference_mode():
            forward_until(internals.spec.blocks[-1], internals.spec.model, inputs_embeds=internals.embeddings,
                          use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def zeroed_block_outputs(block: torch.nn.Module, value_module: torch.nn.Module, columns: torch.Tensor,
                         call: dict[str, Any], tokens: torch.Tensor) -> torch.Tensor:
    """The block rerun on its clean input once per entry of ``tokens`` (k,), the value vectors of token tokens[i]
    zeroed in run i: (k, L, d) in the model's dtype."""
    args, kwargs = call["args"], dict(call["kwargs"])
    hidden = args[0] if args else kwargs["hidden_states"]
    batch = hidden.expand(len(tokens), -1, -1)
    if isinstance(kwargs.get("alibi"), torch.Tensor):  # BLOOM: (batch * n_heads, 1, L), batch-major
        kwargs["alibi"] = kwargs["alibi"].repeat(len(tokens), 1, 1)
    if args:
        args = (batch,) + tuple(args[1:])
    else:
        kwargs["hidden_states"] = batch

    def zero(module, inputs, output):
        output = output.clone()
        picked = output[torch.arange(len(tokens), device=output.device), tokens.to(output.device)]  # (k, width)
        picked[:, columns.to(output.device)] = 0
        output[torch.arange(len(tokens), device=output.device), tokens.to(output.device)] = picked
        return output

    hook = value_module.register_forward_hook(this_thread_only(zero))
    try:
        with torch.inference_mode():
            return block_output(block(*args, **kwargs))
    finally:
        hook.remove()


def value_zeroing(internals: ModelInternals) -> MixingMatrices:
    """Value zeroing at the rows of ``internals``' targets, every layer (see the module docstring)."""
    layout = internals.layout()
    spec = internals.spec
    n = internals.length
    rows = internals.rows.cpu()
    calls = _clean_blocks(internals)
    per_run = _variants_per_run(n, int(internals.embeddings.shape[-1]), layout.n_heads,
                                internals.embeddings.element_size())
    future = torch.arange(n)[None, :] > torch.arange(n)[:, None]  # token j after row i: no effect (causal)
    rolled = torch.eye(n)
    layers, rolled_rows = [], []
    for layer, block in enumerate(spec.blocks):
        # in float64: 1 - cos of nearly equal vectors is a few float32 ulps of 1 where a token's values change the
        # block's output little (1e-6 on a random BLOOM, 2 % noise after normalising in float32)
        clean = calls[layer]["output"][0].double()  # (L, d)
        scores = torch.zeros(n, n)
        columns = layout.value_columns(layer)
        for start in range(0, n, per_run):
            tokens = torch.arange(start, min(n, start + per_run))
            zeroed = zeroed_block_outputs(block, layout.value_modules[layer], columns, calls[layer], tokens)
            similarity = F.cosine_similarity(zeroed.double(), clean[None], dim=-1)  # (k, L): variant, row
            scores[:, tokens] = (1.0 - similarity).T.float().cpu()
        scores[future] = 0.0
        totals = scores.sum(-1, keepdim=True)
        scores = scores / torch.where(totals > 0, totals, torch.ones_like(totals))
        rolled = scores @ rolled
        layers.append(scores[rows])
        rolled_rows.append(rolled[rows])
    return MixingMatrices(torch.stack(layers), torch.stack(rolled_rows), rolled_rows[-1].clone())
