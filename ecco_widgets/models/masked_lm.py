"""Masked language models (BERT, RoBERTa, DistilBERT, ...): the MLM head as the lens, activations, attention.

A masked LM predicts the token *at* each position (not the next one), so ``out.ranks[l, p]`` is the rank of the
actual token at position p when the output of block l is decoded through the model's own MLM head (BERT's
``cls.predictions``: dense, activation, LayerNorm, decoder; RoBERTa's ``lm_head``; DistilBERT's ``vocab_transform``,
activation, ``vocab_layer_norm``, ``vocab_projector``). The head is found by inspection and checked once against the
model's own logits. ``mask_positions`` replaces tokens by the mask token before the forward pass, so their ranks
say how well each layer recovers the hidden word.

An encoder without an MLM head (e.g. a sentence-embedding BertModel) still gives hidden states, MLP activations
(hence NMF) and attention; anything that needs predictions raises a NotAvailableError that says so.

>>> from transformers import BertConfig, BertForMaskedLM
>>> model = BertForMaskedLM(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
...                                    intermediate_size=64, vocab_size=100)).eval()
>>> mlm = masked_lm(model)
>>> out = mlm.analyze_ids([2, 5, 7, 3], mask_positions=[1], mask_token_id=4)
>>> out.ranks.shape, out.mask_positions.tolist()
((2, 4), [1])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..adapter import ModelSpec, ResolvedSpec, discover_spec, find_mlm_head
from ..analysis.attribution.discretized import Vocabulary, vocabulary_of
from ..analysis.attribution import EmbeddedInput, attribute, check_methods, check_n_steps, check_target, \
    decoded_scalar
from ..analysis.lens import logit_lens
from ..capture import capture, forward_until
from ..errors import InputError, NotAvailableError, UnsupportedModelError
from ..memory import check_activation_memory
from ..results import MaskedLMOutput
from .base import ModelBase, load_model, load_tokenizer, name_of, prepare, resolve_source

__all__ = ["MaskedFunction", "MaskedLanguageModel", "masked_lm"]


class MaskedFunction:
    """What a masked LM explains: f_i = prob / logit / logprob of the true token at masked position p_i, read there
    by the MLM head on the input the model saw; every token's embedding is attributed (bidirectional)."""

    def __init__(self, spec: ResolvedSpec, input_ids: torch.Tensor, true_ids: list[int], masked: list[int],
                 target: str):
        self.spec = spec
        self.n_layers = spec.n_layers
        self.blocks = list(spec.blocks)
        with torch.inference_mode():
            embeddings = spec.embedding(input_ids).clone()
        self.inputs = [EmbeddedInput(embeddings, n_columns=int(input_ids.shape[-1]))]
        self.rows = torch.tensor(masked, dtype=torch.long, device=input_ids.device)
        self.token_ids = torch.tensor([true_ids[p] for p in masked], dtype=torch.long, device=input_ids.device)
        self.target = target
        weight = getattr(spec.unembedding, "weight", None)
        self.vocab_size = int(weight.shape[0]) if weight is not None else 1 << 16

    def hidden(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return forward_until(self.spec.blocks[-1], self.spec.model, inputs_embeds=xs[0])[:, self.rows]

    def vocabularies(self) -> list[Vocabulary]:
        """Every word's embedding (what discretized IG walks through)."""
        return [vocabulary_of(self.spec.embedding, self.token_ids)]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return decoded_scalar(self.spec.decode, h, self.token_ids, self.target, vocab_size=self.vocab_size)


# ----- the model wrapper -----
class MaskedLanguageModel(ModelBase):
    """A masked LM (or a head-less encoder) + tokenizer. Build it with :func:`masked_lm`.

    ``analyze(text, mask_positions=[...])`` returns a :class:`MaskedLMOutput`: per-layer ranks of the actual token at
    every position through the MLM head, and activations / attention when asked.
    """

    def __init__(self, model: nn.Module, tokenizer=None, spec: ModelSpec | None = None, name: str = ""):
        super().__init__(model, tokenizer, name)
        head = find_mlm_head(model, spec)
        self.spec = discover_spec(model, head or spec, require_head=False)

    def __repr__(self) -> str:
        head = "MLM head" if self.has_head else "no MLM head"
        return f"MaskedLanguageModel({self.name!r}, layers={self.spec.n_layers}, {head})"

    @property
    def has_head(self) -> bool:
        return self.spec.has_head

    @property
    def mask_token_id(self) -> int | None:
        return getattr(self.tokenizer, "mask_token_id", None) if self.tokenizer is not None else None

    def generate(self, *args, **kwargs):
        raise UnsupportedModelError(
            f"generate() is for causal LMs; {self.name} is a masked LM that fills in masked positions. Use "
            "mlm.analyze(text, mask_positions=[...]) to see how each layer ranks the hidden tokens."
        )

    def analyze(self, text: str, mask_positions: Sequence[int] | None = None, **options: Any) -> MaskedLMOutput:
        """Analyse ``text`` (tokenised with the special tokens, e.g. [CLS] ... [SEP]).

        mask_positions: token positions to replace by the mask token before the forward pass (after tokenisation;
        see ``mlm.encode(text)``). Other options as in :meth:`analyze_ids`.
        Example: ``out = mlm.analyze("The capital of France is Paris.", mask_positions=[6], activations=True)``
        """
        ids = self.encode(text)
        self.check_length(len(ids), "The text")
        return self.analyze_ids(ids, mask_positions=mask_positions, **options)

    def analyze_ids(
        self,
        token_ids: Sequence[int],
        mask_positions: Sequence[int] | None = None,
        mask_token_id: int | None = None,
        activations: bool | Sequence[int] = False,
        activation_dtype: str = "float32",
        attention: bool = False,
        lens_topk: int = 10,
        keep_hidden_states: bool = True,
        attribution: Sequence[str] = (),
        target: str = "prob",
        n_steps: int | None = None,
        progress: bool | None = None,
        **unsupported: Any,
    ) -> MaskedLMOutput:
        """Analyse a token sequence (the true tokens; masked positions are replaced before the forward pass).

        attribution: methods ("ig", "grad_x_input", "saliency", "occlusion") explaining, at each masked position p,
        f = the probability (target="prob"; or "logit", "logprob") of the true token at p, read at p from the MLM
        head on the input the model saw (every mask position masked). Every position, before and after p and p
        itself (its [MASK] embedding), gets attribution. n_steps: integration points for "ig".
        """
        unknown = sorted(k for k in unsupported if k not in ("n_input_tokens", "targets"))
        if unknown:
            raise InputError(f"Unknown option(s) for a masked LM: {unknown}.")
        ids = self.check_ids(token_ids)
        n = len(ids)
        self.check_options(lens_topk, activation_dtype, self.vocab_size)
        masked = self._mask_positions(mask_positions, n)
        methods = self._attribution_request(attribution, masked, target, n_steps)
        seen = list(ids)
        if len(masked):
            mask_id = self._mask_id(mask_token_id)
            for p in masked:
                seen[p] = mask_id
        layers = self.activation_layers(activations, self.spec.n_layers)
        if layers:
            check_activation_memory(self.spec, layers, n, np.dtype(activation_dtype))
        self.check_memory(self.spec.n_layers, n, int(self.spec.embedding.weight.shape[-1]), attention)

        input_ids = torch.tensor([seen], device=self.device)
        fields = {"mask_positions": np.asarray(masked, dtype=np.int64), "input_ids": np.asarray(seen, dtype=np.int64),
                  "has_head": self.has_head}
        with self.lock:
            with self.attention_mode(attention):
                captured = capture(self.spec, input_ids, activation_layers=layers,
                                   activation_dtype=activation_dtype, attention=attention, progress=progress)
            lens = None
            if self.has_head:  # the true token at each position, read at that same position
                lens = logit_lens(self.spec.decode, captured.hidden[1:],
                                  torch.tensor(ids, device=captured.hidden.device), k=lens_topk,
                                  final_logits=captured.logits, progress=progress)
            out = self.output_of(ids, n, captured, layers, lens, n, keep_hidden_states, MaskedLMOutput, **fields)
            if methods:
                function = MaskedFunction(self.spec, input_ids, ids, masked, target)
                result = attribute(function, self.model, methods, n_steps, progress, settings={
                    "target": target, "causal": False,
                    "attributed": f"token embeddings ({type(self.spec.embedding).__name__} output)",
                    "explained": "the true token at each masked position, read there by the MLM head, with every "
                                 "mask position masked"})
                out.targets = np.asarray(masked, dtype=np.int64)
                out.attributions_raw = result.raw
                out.convergence_deltas = result.deltas
                out.attribution_settings = result.settings
        return out

    def _attribution_request(self, attribution, masked: list[int], target: str, n_steps) -> list[str]:
        """The checked attribution methods ([] when none are asked for)."""
        if not attribution:
            return []
        methods = check_methods(attribution)
        if not self.has_head:
            raise NotAvailableError(f"Attribution explains the MLM head's prediction, but {self.name} has no "
                                    "masked-LM head. Load the model with its head (AutoModelForMaskedLM).")
        if not masked:
            raise InputError("Attribution for a masked LM explains the prediction at masked positions: pass "
                             "mask_positions=[p, ...] (token positions, see mlm.encode(text)).")
        check_target(target)
        check_n_steps(n_steps)
        return methods

    def _mask_positions(self, positions: Sequence[int] | None, n: int) -> list[int]:
        if positions is None:
            return []
        if isinstance(positions, (int, np.integer)):
            positions = [positions]
        chosen = []
        for p in positions:
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not -n <= p < n:
                raise InputError(f"mask position {p!r} is out of range: the text has {n} tokens (0..{n - 1}, "
                                 "counting special tokens such as [CLS]).")
            chosen.append(int(p) % n)
        if len(set(chosen)) != len(chosen):
            raise InputError(f"mask_positions {list(positions)} name a position twice.")
        return sorted(chosen)

    def _mask_id(self, mask_token_id: int | None) -> int:
        mask_id = mask_token_id if mask_token_id is not None else self.mask_token_id
        if mask_id is None:
            raise InputError("No mask token is known: load the model with its tokenizer (tokenizer.mask_token_id) "
                             "or pass mask_token_id=... to analyze_ids.")
        return int(mask_id)


def _load_masked(name: str, tokenizer, dtype, attn_implementation, load_kwargs: dict):
    """The checkpoint with its MLM head, or as a plain encoder (never with a randomly initialised head)."""
    from transformers import AutoModel, AutoModelForMaskedLM

    try:
        model, info = load_model(name, AutoModelForMaskedLM, dtype, attn_implementation, output_loading_info=True,
                                 **load_kwargs)
        if info.get("missing_keys"):  # the checkpoint has no MLM head: transformers would have made a random one
            model = load_model(name, AutoModel, dtype, attn_implementation, **load_kwargs)
    except ValueError as error:
        if "Unrecognized configuration class" not in str(error):
            raise
        model = load_model(name, AutoModel, dtype, attn_implementation, **load_kwargs)
    source, _ = resolve_source(name)
    return model, load_tokenizer(tokenizer, source)


def masked_lm(model, tokenizer=None, spec: ModelSpec | None = None, dtype: torch.dtype | str | None = None,
              device: str | torch.device = "cpu", attn_implementation: str | None = None,
              **load_kwargs) -> MaskedLanguageModel:
    """A MaskedLanguageModel from a local folder / hub id or a transformers model object (+ its tokenizer).

    A checkpoint without an MLM head (e.g. a sentence-transformers BertModel) is loaded as a plain encoder (never
    with a randomly initialised head): activations, NMF, hidden states and attention work, ranks do not.
    Example: ``mlm = ew.masked_lm("/models/bert-base-uncased"); out = mlm.analyze(text, mask_positions=[4])``.
    """
    if isinstance(model, (str, Path)):
        name = str(model)
        model, tokenizer = _load_masked(name, tokenizer, dtype, attn_implementation, load_kwargs)
    else:
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(f"masked_lm got a {type(model).__name__}; pass a local folder, a hub id, or a "
                                        "transformers model object (e.g. AutoModelForMaskedLM.from_pretrained(...)).")
        name = name_of(model)
    if type(model).__name__.endswith(("ForCausalLM", "LMHeadModel")):
        raise UnsupportedModelError(f"{type(model).__name__} is a causal LM; use ew.from_pretrained(...) for it.")
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise UnsupportedModelError(f"{type(model).__name__} is an encoder-decoder model, which masked_lm does not "
                                    "support yet.")
    return MaskedLanguageModel(prepare(model, device), tokenizer, spec=spec, name=name)
