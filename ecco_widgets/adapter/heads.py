"""Heads found by inspection and checked against the model's own logits: masked-LM heads and encoder-decoder heads.

**Masked LMs** (:func:`find_mlm_head`): BERT's ``cls.predictions`` (dense, activation, LayerNorm, decoder), RoBERTa's
``lm_head``, DistilBERT's ``vocab_transform``, activation, ``vocab_layer_norm``, ``vocab_projector``: the output
embedding's parent module, a known chain of modules, or the output embedding alone, whichever reproduces the logits.

**Encoder-decoders** (:func:`discover_seq2seq`: T5, BART, mBART, Pegasus, Marian, ...): each stack (encoder,
decoder) is described by a :class:`~ecco_widgets.adapter.ResolvedSpec` over the whole model: its
blocks, its MLP down projections, and for the decoder the head that turns a block output into logits. The head is
``final norm(s) -> [x d_model ** -0.5] -> lm_head -> [+ final_logits_bias]``:

* T5 scales the decoder output by ``d_model ** -0.5`` before ``lm_head`` when ``config.scale_decoder_outputs``
  (transformers >= 5: True unless the checkpoint's config said ``tie_word_embeddings=False``, as T5 v1.1 / mT5 do);
  older transformers read ``config.tie_word_embeddings`` directly.
* BART, mBART, Pegasus and Marian add the ``final_logits_bias`` buffer to the logits.

The head is checked once on a short probe against the model's own logits (the alternative scaling is tried too), so
a model whose head is something else fails loudly instead of giving wrong ranks.

>>> from transformers import BartConfig, BartForConditionalGeneration
>>> model = BartForConditionalGeneration(BartConfig(d_model=16, encoder_layers=1, decoder_layers=2,
...     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
...     vocab_size=50, max_position_embeddings=32)).eval()
>>> spec = discover_seq2seq(model)
>>> spec.encoder.n_layers, spec.decoder.n_layers, spec.decoder.final_norm_names, spec.has_logits_bias
(1, 2, [], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..capture import capture, capture_seq2seq
from ..errors import InputError, UnsupportedModelError
from .spec import (ModelSpec, ResolvedSpec, _config_value, _find_blocks, _find_down_proj, _find_final_norms,
                   discover_spec, model_device)

#: Masked-LM heads that are a chain of modules on the model itself (not one head module): applied in this order.
HEAD_RECIPES: tuple[tuple[str, ...], ...] = (
    ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),  # DistilBERT
    ("generator_predictions", "generator_lm_head"),  # ELECTRA generator
)


@dataclass
class Seq2SeqSpec:
    """encoder / decoder: ResolvedSpec of each stack (the decoder's ``decode`` is the full head, checked against the
    model's logits). scale: the factor applied before lm_head (``d_model ** -0.5`` or None)."""

    model: nn.Module
    encoder: ResolvedSpec
    decoder: ResolvedSpec
    encoder_embedding: nn.Module
    decoder_embedding: nn.Module
    scale: float | None = None
    has_logits_bias: bool = False
    notes: list[str] = field(default_factory=list)

    def stack(self, name: str) -> ResolvedSpec:
        if name not in ("encoder", "decoder"):
            raise InputError(f"stack must be 'encoder' or 'decoder', got {name!r}.")
        return self.encoder if name == "encoder" else self.decoder


def _name_of(modules: dict[str, nn.Module], module: nn.Module) -> str | None:
    return next((n for n, m in modules.items() if m is module and n), None)


def _stack_spec(model: nn.Module, modules: dict[str, nn.Module], stack: nn.Module, n_layers: int | None,
                embedding_name: str, d_model: int, what: str) -> tuple[ResolvedSpec, nn.Module]:
    stack_name = _name_of(modules, stack)
    if stack_name is None:
        raise UnsupportedModelError(f"Could not find the {what} of {type(model).__name__} among its modules.")
    relative = _find_blocks(stack, n_layers)
    blocks_name = f"{stack_name}.{relative}"
    norms = [f"{stack_name}.{n}" for n in _find_final_norms(stack, relative)]
    blocks = modules[blocks_name]
    down = [_find_down_proj(b, f"{blocks_name}.{i}", d_model) for i, b in enumerate(blocks)]
    embedding = getattr(stack, "embed_tokens", None)
    if not isinstance(embedding, nn.Module):
        embedding = modules[embedding_name]
    spec = ResolvedSpec(model=model, embedding_name=_name_of(modules, embedding) or embedding_name,
                        blocks_name=blocks_name, final_norm_names=norms, unembedding_name=None,
                        down_proj_names=down, modules=modules)
    return spec, embedding


def _make_head(norms: list[nn.Module], lm_head: nn.Module, scale: float | None, bias: torch.Tensor | None):
    def decode(hidden: torch.Tensor) -> torch.Tensor:
        for norm in norms:
            hidden = norm(hidden)
        if scale is not None:
            hidden = hidden * scale
        logits = lm_head(hidden)
        if bias is not None:
            logits = logits + bias.to(device=logits.device, dtype=logits.dtype)
        return logits
    return decode


def check_seq2seq_model(model) -> None:
    """Raise UnsupportedModelError (saying which entry point to use) unless ``model`` is an encoder-decoder LM."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"seq2seq got a {type(model).__name__}; pass a local folder, a hub id, or a "
                                    "transformers model object (AutoModelForSeq2SeqLM.from_pretrained(...)).")
    config = getattr(model, "config", None)
    name = type(model).__name__
    if not getattr(config, "is_encoder_decoder", False):
        if name.endswith(("ForCausalLM", "LMHeadModel")) or getattr(config, "is_decoder", False):
            raise UnsupportedModelError(f"{name} is a decoder-only (causal) language model, not an encoder-decoder "
                                        "model; use ew.from_pretrained(model, tokenizer=...) for it.")
        if name.endswith("ForMaskedLM"):
            raise UnsupportedModelError(f"{name} is a masked language model; use ew.masked_lm(model, ...) for it.")
        raise UnsupportedModelError(f"{name} is not an encoder-decoder model (config.is_encoder_decoder is not "
                                    "True); ew.seq2seq needs e.g. T5ForConditionalGeneration or "
                                    "BartForConditionalGeneration.")
    if not all(hasattr(model, a) for a in ("get_encoder", "get_decoder")) or model.get_output_embeddings() is None:
        raise UnsupportedModelError(f"{name} has no language-model head; load it with AutoModelForSeq2SeqLM "
                                    "(e.g. T5ForConditionalGeneration rather than T5Model).")


def discover_seq2seq(model: nn.Module) -> Seq2SeqSpec:
    """Find both stacks and the decoder head of an encoder-decoder LM; check the head against the model's logits."""
    check_seq2seq_model(model)
    config = model.config
    modules = dict(model.named_modules())
    d_model = _config_value(config, "d_model", "hidden_size")
    embedding = model.get_input_embeddings()
    embedding_name = _name_of(modules, embedding)
    if d_model is None:
        d_model = int(embedding.weight.shape[1])
    n_enc = _config_value(config, "encoder_layers", "num_layers")
    n_dec = _config_value(config, "decoder_layers", "num_decoder_layers", "num_layers")
    encoder, enc_embedding = _stack_spec(model, modules, model.get_encoder(), n_enc, embedding_name, d_model,
                                         "encoder")
    decoder, dec_embedding = _stack_spec(model, modules, model.get_decoder(), n_dec, embedding_name, d_model,
                                         "decoder")
    lm_head = model.get_output_embeddings()
    decoder.unembedding_name = _name_of(modules, lm_head)
    bias = getattr(model, "final_logits_bias", None)
    bias = bias if isinstance(bias, torch.Tensor) else None

    rule = getattr(config, "scale_decoder_outputs", None)
    if rule is None:  # transformers < 5: T5ForConditionalGeneration scales when tie_word_embeddings
        rule = bool(getattr(config, "tie_word_embeddings", False)) and hasattr(model, "model_dim")
    factor = float(d_model) ** -0.5
    candidates = [factor if rule else None, None if rule else factor]
    norms = decoder.final_norms
    probe_src = torch.tensor([[1 + i % 7 for i in range(4)]], device=model_device(model))
    probe_dec = torch.tensor([[2 + i % 5 for i in range(3)]], device=model_device(model))
    captured = capture_seq2seq(Seq2SeqSpec(model, encoder, decoder, enc_embedding, dec_embedding), probe_src,
                               probe_dec)
    expected = captured.logits.float()
    tolerance = 1e-3 * max(1.0, float(expected.abs().max()))
    with torch.inference_mode():
        for scale in candidates:
            decode = _make_head(norms, lm_head, scale, bias)
            got = decode(captured.decoder_hidden[-1]).float()
            if got.shape == expected.shape and float((got - expected).abs().max()) <= tolerance:
                decoder.decode_fn = decode
                return Seq2SeqSpec(model, encoder, decoder, enc_embedding, dec_embedding, scale=scale,
                                   has_logits_bias=bias is not None)
    raise UnsupportedModelError(
        f"Could not reproduce the logits of {type(model).__name__} from its last decoder block: tried final norm(s) "
        f"{decoder.final_norm_names} -> [x d_model**-0.5 or not] -> {decoder.unembedding_name}"
        f"{' + final_logits_bias' if bias is not None else ''}. This encoder-decoder head is not supported."
    )


# ----- finding the head -----
def _probe_ids(model: nn.Module) -> torch.Tensor:
    vocab = getattr(model.config, "vocab_size", None) or 8
    return torch.tensor([[1 + i % max(1, vocab - 1) for i in range(5)]], device=model_device(model))


def _head_candidates(model: nn.Module, unembedding_name: str) -> list[tuple[str, list[str], Callable]]:
    """(description, module names, decode callable), most specific first."""
    modules = dict(model.named_modules())
    candidates = []
    if "." in unembedding_name:
        parent_name = unembedding_name.rsplit(".", 1)[0]
        parent = modules[parent_name]
        leaf = unembedding_name.rsplit(".", 1)[1]
        names = [f"{parent_name}.{n}" for n, _ in parent.named_children() if n != leaf]
        candidates.append((f"the head module {parent_name!r}", names, parent))
    for recipe in HEAD_RECIPES:
        if all(name in modules for name in recipe) and recipe[-1] == unembedding_name:
            chain = [modules[name] for name in recipe]

            def run(hidden, chain=chain):
                for module in chain:
                    hidden = module(hidden)
                return hidden

            candidates.append((" -> ".join(recipe), list(recipe[:-1]), run))
    candidates.append((f"the output embedding {unembedding_name!r} alone", [], modules[unembedding_name]))
    return candidates


def find_mlm_head(model: nn.Module, spec: ModelSpec | None = None) -> ModelSpec | None:
    """A ModelSpec whose ``decode`` is the model's MLM head, or None when the model has no output embedding.

    Each candidate (the output embedding's parent module, known chains such as DistilBERT's, the output embedding
    alone) is checked on a short probe: decoding the last block's output must reproduce the model's own logits.
    Raises UnsupportedModelError when none does (pass ModelSpec(decode=...) to name the head yourself).
    """
    spec = spec or ModelSpec()
    if spec.decode is not None:
        return spec
    base = discover_spec(model, spec, require_head=False)
    if base.unembedding_name is None:
        return None
    if spec.final_norm is not None or spec.unembedding is not None:
        return spec  # the user named the head's parts: final norm(s) in order, then the unembedding
    captured = capture(base, _probe_ids(model))
    if captured.logits is None:
        return None
    last = captured.hidden[-1]
    expected = captured.logits.float()
    tolerance = 1e-3 * max(1.0, float(expected.abs().max()))
    tried = []
    with torch.inference_mode():
        for description, names, decode in _head_candidates(model, base.unembedding_name):
            try:
                logits = decode(last).float()
            except Exception as error:  # noqa: BLE001 - a candidate that cannot run is just not the head
                tried.append(f"{description} (fails: {type(error).__name__})")
                continue
            if logits.shape == expected.shape and float((logits - expected).abs().max()) <= tolerance:
                return ModelSpec(blocks=spec.blocks, final_norm=names, unembedding=base.unembedding_name,
                                 down_proj=spec.down_proj, embedding=spec.embedding, decode=decode)
            tried.append(description)
    raise UnsupportedModelError(
        f"Could not find the masked-LM head of {type(model).__name__}: none of {tried} reproduces the model's "
        "logits from the last block's output. Pass ew.ModelSpec(decode=callable) mapping hidden states to logits."
    )
