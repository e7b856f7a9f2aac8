"""What attribution explains for a causal LM (:class:`CausalFunction`: each explained token's probability, logit or
log-probability, minus a foil's, from the embeddings of the tokens before it), and :func:`compute_attributions`, which
runs the engine's methods on it.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50)).eval())
>>> res = compute_attributions(spec, torch.tensor([[3, 5, 7]]), np.array([2]), ["grad_x_input"], progress=False)
>>> res.raw["grad_x_input"].shape
(1, 3, 16)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..adapter import ResolvedSpec
from ..analysis.attribution import EmbeddedInput, attribute, check_methods, check_positions, check_target, \
    decoded_scalar
from ..analysis.attribution.discretized import Vocabulary, vocabulary_of
from ..analysis.components.mixing import ModelInternals
from ..capture import forward_until
from ..errors import InputError
from .baselines import baseline_embeddings, keep_mask


class CausalFunction:
    """What a causal LM explains: f_i = prob / logit / logprob of token positions[i] (minus its foil), read at
    positions[i] - 1 from the last block's output; the attributed input is the token embeddings of the prefix."""

    def __init__(self, spec: ResolvedSpec, input_ids: torch.Tensor, positions: np.ndarray, target: str = "prob",
                 foil_ids: np.ndarray | None = None, baseline: torch.Tensor | None = None,
                 keep: torch.Tensor | None = None):
        self.spec = spec
        self.n_layers = spec.n_layers
        self.blocks = list(spec.blocks)
        device = input_ids.device
        length = int(positions.max())  # tokens at >= max(positions) influence no explained value
        with torch.inference_mode():
            embeddings = spec.embedding(input_ids[:, :length]).clone()  # a normal tensor (inference ones can't be saved)
        self.positions = torch.as_tensor(positions, dtype=torch.long, device=device)
        self.inputs = [EmbeddedInput(embeddings, n_columns=int(input_ids.shape[-1]), causal_from=self.positions,
                                     baseline=None if baseline is None else baseline[:, :length].to(device),
                                     keep=None if keep is None else keep[:length].to(device))]
        self.rows = self.positions - 1  # where each explained token is predicted
        self.token_ids = input_ids[0, self.positions]
        foils = None if foil_ids is None else torch.as_tensor(foil_ids, dtype=torch.long, device=device)
        self.foil_ids = foils if foils is not None and bool((foils >= 0).any()) else None
        self.target = target
        weight = getattr(spec.unembedding, "weight", None)
        self.vocab_size = int(weight.shape[0]) if weight is not None else 1 << 16

    def hidden(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return forward_until(self.spec.blocks[-1], self.spec.model, inputs_embeds=xs[0], use_cache=False)[:, self.rows]

    def vocabularies(self) -> list[Vocabulary]:
        """Every word's embedding (what discretized IG walks through)."""
        return [vocabulary_of(self.spec.embedding, self.token_ids)]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return decoded_scalar(self.spec.decode, h, self.token_ids, self.target, self.foil_ids, self.vocab_size)

    def internals(self) -> ModelInternals:
        """What the context-mixing methods read (attention, value vectors, norms: :mod:`...components.mixing`)."""
        return ModelInternals(self.spec, self.inputs[0].embeddings.detach(), self.rows, self.token_ids,
                              self.foil_ids, self.inputs[0].n_columns)


def compute_attributions(spec: ResolvedSpec, input_ids: torch.Tensor, positions: np.ndarray, methods: Sequence[str],
                         target: str = "prob", foil_ids: np.ndarray | None = None, n_steps: int | None = None,
                         progress: bool | None = None, baseline: Any = "zero", keep: Any = "none",
                         tokenizer: Any = None):
    """Attribute each token at ``positions`` to the embeddings of the tokens before it, by each of ``methods``.

    input_ids: int (1, n_tokens). positions: int (n_targets,), each in 1..n_tokens-1. foil_ids: int (n_targets,),
    -1 where a target has no foil. baseline / keep: see :mod:`ecco_widgets.models.baselines`. Returns an
    AttributionResult: raw {method: (n_targets, n_tokens, d_model)}, row i exactly 0 at positions >= positions[i].
    """
    methods = check_methods(methods, internals=True)
    check_target(target)
    input_ids = torch.as_tensor(input_ids)
    input_ids = input_ids[None] if input_ids.dim() == 1 else input_ids
    positions = check_positions(positions, int(input_ids.shape[-1]), "tokens", "a target needs a token before it")
    if foil_ids is not None:
        foil_ids = np.asarray(foil_ids, dtype=np.int64).reshape(-1)
        if foil_ids.shape != positions.shape:
            raise InputError(f"foil_ids has {foil_ids.size} entries for {positions.size} targets.")
    ids = [int(i) for i in input_ids[0]]
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    kept = keep_mask(keep, ids, special)
    base, described = baseline_embeddings(baseline, spec.embedding, input_ids, tokenizer, spec.model.config)
    function = CausalFunction(spec, input_ids, positions, target, foil_ids, base, kept)
    return attribute(function, spec.model, methods, n_steps, progress, positions=positions, settings={
        "target": target, "contrastive": function.foil_ids is not None, "baseline": described,
        "kept_positions": [] if kept is None else [int(p) for p in torch.nonzero(kept)[:, 0]],
        "attributed": f"token embeddings ({spec.embedding_name} output)"})
