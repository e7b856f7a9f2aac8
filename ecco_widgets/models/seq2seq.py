"""Encoder-decoder language models (T5, BART, mBART, Pegasus, Marian, ...): lens, activations, attention, attribution.

``ew.seq2seq(model_or_path, tokenizer=None)`` returns a :class:`Seq2SeqLanguageModel`. ``generate(source_text)``
generates the target greedily, then analyses source + generated decoder tokens teacher-forced in one hooked
forward; ``analyze(source_text, target_text)`` analyses a given target. Both return a :class:`Seq2SeqOutput`:

* ``source_ids`` / ``source_tokens`` (encoder) and ``token_ids`` / ``tokens`` (decoder, starting with the decoder
  start token) are kept apart; ``n_input_tokens`` is 1 (the start token).
* ``ranks`` (n_decoder_layers, n_decoder_tokens - 1): decoder block outputs through the decoder's final norm,
  T5's ``d_model ** -0.5`` scaling (``config.scale_decoder_outputs``), ``lm_head`` and BART's ``final_logits_bias``;
  the last row is computed from the model's own logits.
* ``encoder_activations`` / ``decoder_activations`` (n_layers_kept, n_tokens, n_neurons), each with its layers.
* ``encoder_attention``, ``decoder_attention`` (self) and ``cross_attention`` (n_dec_layers, heads, m, n_source).
* attributions ``out.attributions(method, aggregate)`` -> (n_targets, n_source + n_decoder_tokens): each explained
  decoder token by the source tokens and its decoder prefix (later decoder positions 0).

>>> from transformers import BartConfig, BartForConditionalGeneration
>>> model = BartForConditionalGeneration(BartConfig(d_model=16, encoder_layers=1, decoder_layers=2,
...     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
...     vocab_size=50, max_position_embeddings=32)).eval()
>>> s2s = seq2seq(model)
>>> out = s2s.analyze_ids([0, 5, 6, 2], [2, 0, 7, 8], attribution=("grad_x_input",))
>>> out.ranks.shape, out.attributions("grad_x_input").shape
((2, 3), (3, 8))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..adapter import Seq2SeqSpec, check_seq2seq_model, discover_seq2seq
from ..analysis.attribution.discretized import Vocabulary, vocabulary_of
from ..analysis.attribution import EmbeddedInput, attribute, check_methods, check_target, decoded_scalar
from ..analysis.lens import logit_lens
from ..capture import capture_seq2seq, forward_until
from .generation import check_generation_options, generate_ids
from ..errors import InputError, UnsupportedModelError
from ..memory import check_activation_memory
from ..results.seq2seq import STACKS, Seq2SeqOutput
from .base import ModelBase, load_config, load_model, load_tokenizer, name_of, prepare, resolve_source, to_numpy

__all__ = ["Seq2SeqFunction", "Seq2SeqLanguageModel", "seq2seq"]


class Seq2SeqFunction:
    """What an encoder-decoder explains: f_i = prob / logit / logprob of decoder token positions[i], read at
    positions[i] - 1 from the last decoder block, given the source and the decoder prefix; both token embeddings
    (source columns first, then the decoder's) are attributed, the decoder prefix causally."""

    def __init__(self, spec: Seq2SeqSpec, source_ids: torch.Tensor, decoder_ids: torch.Tensor, positions: np.ndarray,
                 target: str, foil_ids: np.ndarray | None = None):
        self.spec = spec
        self.n_layers = spec.encoder.n_layers + spec.decoder.n_layers
        self.blocks = [*spec.encoder.blocks, *spec.decoder.blocks]
        device = source_ids.device
        length = int(positions.max())  # decoder tokens at >= max(positions) influence no explained value
        with torch.inference_mode():
            enc = spec.encoder_embedding(source_ids).clone()
            dec = spec.decoder_embedding(decoder_ids[:, :length]).clone()
        self.positions = torch.as_tensor(positions, dtype=torch.long, device=device)
        self.inputs = [EmbeddedInput(enc, n_columns=int(source_ids.shape[-1])),
                       EmbeddedInput(dec, n_columns=int(decoder_ids.shape[-1]), causal_from=self.positions)]
        self.rows = self.positions - 1
        self.source_ids, self.decoder_ids = source_ids, decoder_ids
        self.token_ids = decoder_ids[0, self.positions]
        self.foil_ids = None if foil_ids is None else torch.as_tensor(foil_ids, dtype=torch.long, device=device)
        self.target = target
        self.vocab_size = int(spec.decoder.unembedding.weight.shape[0])

    def hidden(self, xs: list[torch.Tensor]) -> torch.Tensor:
        h = forward_until(self.spec.decoder.blocks[-1], self.spec.model, inputs_embeds=xs[0],
                          decoder_inputs_embeds=xs[1], use_cache=False)
        return h[:, self.rows]

    def vocabularies(self) -> list[Vocabulary]:
        """Every word's embedding, for the source and for the decoder (what discretized IG walks through)."""
        return [vocabulary_of(self.spec.encoder_embedding, self.source_ids),
                vocabulary_of(self.spec.decoder_embedding, self.decoder_ids)]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return decoded_scalar(self.spec.decoder.decode, h, self.token_ids, self.target, self.foil_ids,
                              vocab_size=self.vocab_size)


class Seq2SeqLanguageModel(ModelBase):
    """An encoder-decoder LM + tokenizer. Build it with :func:`seq2seq`. ``self.spec`` is the decoder's spec (its
    ``decode`` is the full head); ``self.seq2seq_spec`` holds both stacks."""

    def __init__(self, model: nn.Module, tokenizer=None, name: str = "", decoder_start_token_id: int | None = None,
                 max_source_tokens: int | None = None):
        check_seq2seq_model(model)
        super().__init__(model, tokenizer, name)
        self.seq2seq_spec: Seq2SeqSpec = discover_seq2seq(model)
        self.spec = self.seq2seq_spec.decoder
        self._start = decoder_start_token_id
        self._max_source = max_source_tokens

    def __repr__(self) -> str:
        s = self.seq2seq_spec
        return (f"Seq2SeqLanguageModel({self.name!r}, encoder_layers={s.encoder.n_layers}, "
                f"decoder_layers={s.decoder.n_layers})")

    # ----- limits and tokens -----
    @property
    def decoder_start_token_id(self) -> int:
        for value in (self._start, getattr(getattr(self.model, "generation_config", None), "decoder_start_token_id",
                                           None), getattr(self.model.config, "decoder_start_token_id", None)):
            if isinstance(value, (int, np.integer)):
                return int(value)
        raise InputError(f"{self.name} names no decoder start token (generation_config.decoder_start_token_id); pass "
                         "ew.seq2seq(model, decoder_start_token_id=...) (T5 uses its pad token id, 0).")

    @property
    def context_window(self) -> int | None:
        """Most source tokens the encoder takes (and decoder tokens the decoder takes), where the model says so."""
        if self._max_source is not None:
            return int(self._max_source)
        for key in ("max_position_embeddings", "n_positions"):
            value = getattr(self.model.config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def encode_source(self, text: str) -> list[int]:
        if not isinstance(text, str) or not text.strip():
            raise InputError("The source text is empty: give some text, e.g. s2s.generate('translate English to "
                             "German: The house is wonderful.').")
        return [int(i) for i in self._require_tokenizer()(text)["input_ids"]]

    def encode_target(self, text: str) -> list[int]:
        """Decoder token ids for ``text``: the decoder start token, then the target's tokens (with EOS)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("The target text is empty: give the text the model should produce.")
        ids = self._require_tokenizer()(text_target=text)["input_ids"]
        return [self.decoder_start_token_id] + [int(i) for i in ids]

    # ----- entry points -----
    def generate(self, source_text: str, max_new_tokens: int = 20, do_sample: bool = False,
                 generation_kwargs: dict | None = None, **options: Any) -> Seq2SeqOutput:
        """Generate a target for ``source_text``, then analyse it teacher-forced. Options as in analyze_ids.

        Example: ``out = s2s.generate("translate English to German: Hello", max_new_tokens=10)``
        """
        return self.generate_ids(self.encode_source(source_text), max_new_tokens, do_sample, generation_kwargs,
                                 **options)

    def analyze(self, source_text: str, target_text: str, **options: Any) -> Seq2SeqOutput:
        """Teacher-forced analysis of ``target_text`` as the output for ``source_text``. Options as in analyze_ids."""
        return self.analyze_ids(self.encode_source(source_text), self.encode_target(target_text), **options)

    def generate_ids(self, source_ids: Sequence[int], max_new_tokens: int = 20, do_sample: bool = False,
                     generation_kwargs: dict | None = None, **options: Any) -> Seq2SeqOutput:
        """generate() from source token ids (no tokenizer needed)."""
        src = self._source(source_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) \
                or max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be 1 or more, got {max_new_tokens!r}.")
        self.check_length(1 + int(max_new_tokens), f"The decoder sequence (start token + max_new_tokens={max_new_tokens})")
        kwargs = check_generation_options(do_sample, generation_kwargs)
        kwargs.setdefault("decoder_start_token_id", self.decoder_start_token_id)
        pad = getattr(self.tokenizer, "pad_token_id", None) if self.tokenizer is not None else None
        pad = pad if pad is not None else getattr(self.model.config, "pad_token_id", None)
        return self.analyze_ids(src, generate_ids(self, src, max_new_tokens, do_sample, kwargs, pad), **options)

    def analyze_ids(
        self,
        source_ids: Sequence[int],
        decoder_ids: Sequence[int],
        attribution: Sequence[str] = ("ig", "grad_x_input"),
        targets: slice | Sequence[int] | None = None,
        target: str = "prob",
        contrast: dict | str | int | None = None,
        n_steps: int | None = None,
        activations: bool | Sequence[int] | dict = False,
        activation_dtype: str = "float32",
        attention: bool = False,
        lens_topk: int = 10,
        keep_hidden_states: bool = True,
        progress: bool | None = None,
        **unsupported: Any,
    ) -> Seq2SeqOutput:
        """Analyse source ids + decoder ids (the decoder start token first): ranks always; attributions (default ig
        and grad_x_input; ``attribution=()`` for none), activations and attention when asked.

        targets: decoder positions to explain (default every decoder token after the start token). contrast: a foil
        token for every target, or {token: foil}, as for causal LMs (f(token) - f(foil)).
        activations: True (every layer of both stacks), a list of layers (taken in both stacks), or
        {"encoder": [...], "decoder": [...]}. attention: capture encoder, decoder and cross attention.
        """
        unknown = sorted(unsupported)
        if unknown:
            raise InputError(f"Unknown option(s) for an encoder-decoder model: {unknown}.")
        src = self._source(source_ids)
        if not list(decoder_ids):
            raise InputError("There are no decoder tokens; the decoder sequence starts with the decoder start token.")
        dec = self.check_ids(decoder_ids, "The decoder sequence")
        n_src, m = len(src), len(dec)
        self.check_options(lens_topk, activation_dtype, self.vocab_size)
        self.check_memory(self.seq2seq_spec.encoder.n_layers + self.seq2seq_spec.decoder.n_layers, n_src + m,
                          int(self.seq2seq_spec.encoder_embedding.weight.shape[-1]), attention)
        enc_layers, dec_layers = self._stack_layers(activations)
        if enc_layers:
            check_activation_memory(self.seq2seq_spec.encoder, enc_layers, n_src, np.dtype(activation_dtype))
        if dec_layers:
            check_activation_memory(self.seq2seq_spec.decoder, dec_layers, m, np.dtype(activation_dtype))
        request = None
        if attribution:
            check_target(target)
            if m < 2:
                raise InputError("No decoder tokens to explain: the decoder sequence holds only the start token. "
                                 "Pass attribution=() or a longer target.")
            positions = self._decoder_targets(targets, m)
            request = {"methods": check_methods(attribution, kind=" for an encoder-decoder model"),
                       "positions": positions, "target": target, "n_steps": n_steps,
                       "foil_ids": self.foil_ids(contrast, np.asarray(dec), positions)}
        elif contrast is not None:
            raise InputError("contrast=... applies to attribution: pass attribution=('ig',) too.")

        source_t = torch.tensor([src], device=self.device)
        decoder_t = torch.tensor([dec], device=self.device)
        with self.lock:
            return self._analyze(source_t, decoder_t, enc_layers, dec_layers, activation_dtype, attention, lens_topk,
                                 keep_hidden_states, request, progress)

    def _analyze(self, source_t: torch.Tensor, decoder_t: torch.Tensor, enc_layers: list[int],
                 dec_layers: list[int], activation_dtype: str, attention: bool, lens_topk: int,
                 keep_hidden_states: bool, request: dict | None, progress: bool | None) -> Seq2SeqOutput:
        """The hooked forward, the lens and the attributions of checked inputs (under the model's lock)."""
        src, dec = source_t[0].tolist(), decoder_t[0].tolist()
        m = len(dec)
        with self.attention_mode(attention):
            cap = capture_seq2seq(self.seq2seq_spec, source_t, decoder_t, enc_layers, dec_layers,
                                  activation_dtype, attention)
        next_ids = torch.tensor(dec[1:] + [0], device=cap.decoder_hidden.device)
        lens = logit_lens(self.spec.decode, cap.decoder_hidden[1:], next_ids, k=lens_topk, final_logits=cap.logits)
        tokens, raw = self.display(dec)
        src_tokens, src_raw = self.display(src)
        out = Seq2SeqOutput(
            token_ids=np.asarray(dec, dtype=np.int64), tokens=tokens, raw_tokens=raw, n_input_tokens=1,
            ranks=lens.ranks[:, : m - 1].copy(), topk_ids=lens.topk_ids, topk_probs=lens.topk_probs,
            target_probs=lens.target_probs[:, : m - 1].copy(), entropy=lens.entropy[:, : m - 1].copy(),
            kl_to_final=lens.kl_to_final[:, : m - 1].copy(), vocab_text=self.vocab_text(np.unique(lens.topk_ids)),
            hidden_states=to_numpy(cap.decoder_hidden) if keep_hidden_states else None,
            model_name=self.name, source_ids=np.asarray(src, dtype=np.int64), source_tokens=src_tokens,
            source_raw_tokens=src_raw, n_encoder_layers=self.seq2seq_spec.encoder.n_layers,
        )
        if enc_layers:
            out.encoder_activations = np.stack([cap.encoder_activations[layer] for layer in enc_layers])
            out.encoder_activation_layers = list(enc_layers)
        if dec_layers:
            out.decoder_activations = np.stack([cap.decoder_activations[layer] for layer in dec_layers])
            out.decoder_activation_layers = list(dec_layers)
        if attention:
            out.encoder_attention = to_numpy(cap.encoder_attentions)
            out.decoder_attention = to_numpy(cap.decoder_attentions)
            out.cross_attention = to_numpy(cap.cross_attentions)
        out.attach(self)
        if request:
            spec, positions, foils = self.seq2seq_spec, request["positions"], request["foil_ids"]
            function = Seq2SeqFunction(spec, source_t, decoder_t, positions, request["target"], foils)
            result = attribute(function, self.model, request["methods"], request["n_steps"], progress,
                               positions=positions, settings={
                                   "target": request["target"], "contrastive": foils is not None,
                                   "attributed": f"encoder token embeddings ({spec.encoder.embedding_name} output) "
                                                 f"and decoder token embeddings ({spec.decoder.embedding_name} "
                                                 "output); columns: source tokens, then decoder tokens"})
            out.targets = positions
            out.attributions_raw = result.raw
            out.convergence_deltas = result.deltas
            out.attribution_settings = result.settings
        return out

    # ----- helpers -----
    def _source(self, source_ids: Sequence[int]) -> list[int]:
        if not list(source_ids):
            raise InputError("The source is empty: give at least one source token.")
        return self.check_ids(source_ids, "The source")

    def _stack_layers(self, activations) -> tuple[list[int], list[int]]:
        if activations is False or activations is None:
            return [], []
        n_enc, n_dec = self.seq2seq_spec.encoder.n_layers, self.seq2seq_spec.decoder.n_layers
        if activations is True:
            return list(range(n_enc)), list(range(n_dec))
        if isinstance(activations, dict):
            unknown = set(activations) - set(STACKS)
            if unknown:
                raise InputError(f"activations: unknown stack(s) {sorted(unknown)}; use 'encoder' and 'decoder'.")
            return (self.activation_layers(activations.get("encoder", []), n_enc, "encoder"),
                    self.activation_layers(activations.get("decoder", []), n_dec, "decoder"))
        return (self.activation_layers(activations, n_enc, "encoder"),
                self.activation_layers(activations, n_dec, "decoder"))

    @staticmethod
    def _decoder_targets(targets, m: int) -> np.ndarray:
        if targets is None:
            positions = list(range(1, m))
        elif isinstance(targets, slice):
            positions = list(range(m))[targets]
        elif isinstance(targets, (int, np.integer)):
            positions = [int(targets)]
        else:
            positions = [int(t) for t in targets]
        bad = [p for p in positions if not 1 <= (p % m if p < 0 else p) < m]
        if bad:
            raise InputError(f"Decoder positions {bad} cannot be explained: position 0 is the decoder start token, so "
                             f"targets go from 1 to {m - 1}.")
        positions = sorted(set(p % m for p in positions))
        if not positions:
            raise InputError("No decoder tokens to explain: the targets selection is empty.")
        return np.asarray(positions, dtype=np.int64)


def _load_seq2seq(name: str, tokenizer, dtype, attn_implementation, load_kwargs: dict):
    from transformers import AutoModelForSeq2SeqLM

    config = load_config(name)
    if not getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(f"{name!r} is a {type(config).__name__.replace('Config', '')} model, not an "
                                    "encoder-decoder model; use ew.from_pretrained(...) for a causal LM or "
                                    "ew.masked_lm(...) for a masked LM.")
    model = load_model(name, AutoModelForSeq2SeqLM, dtype, attn_implementation, **load_kwargs)
    source, _ = resolve_source(name)
    return model, load_tokenizer(tokenizer, source, optional=tokenizer is None)


def seq2seq(model, tokenizer=None, dtype: torch.dtype | str | None = None, device: str | torch.device = "cpu",
            attn_implementation: str | None = None, decoder_start_token_id: int | None = None,
            max_source_tokens: int | None = None, **load_kwargs) -> Seq2SeqLanguageModel:
    """A Seq2SeqLanguageModel from a local folder / hub id or a transformers model object (+ its tokenizer).

    decoder_start_token_id: overrides the model's (needed for a bare T5Config). max_source_tokens: a length limit
    for models whose config gives none (T5's relative positions have no hard limit).
    Example: ``s2s = ew.seq2seq("/models/t5-small"); out = s2s.generate("translate English to German: Hi")``.
    """
    if isinstance(model, (str, Path)):
        name = str(model)
        model, tokenizer = _load_seq2seq(name, tokenizer, dtype, attn_implementation, load_kwargs)
    else:
        check_seq2seq_model(model)
        name = name_of(model)
    return Seq2SeqLanguageModel(prepare(model, device), tokenizer, name=name, decoder_start_token_id=decoder_start_token_id,
                                max_source_tokens=max_source_tokens)
