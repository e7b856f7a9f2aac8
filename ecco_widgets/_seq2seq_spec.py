"""Parts of an encoder-decoder LM (T5, BART, mBART, Pegasus, Marian, ...) found by inspection, and one hooked forward.

Each stack (encoder, decoder) is described by a :class:`~ecco_widgets.adapter.ResolvedSpec` over the whole model: its
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

import numpy as np
import torch
from torch import nn

from .adapter import ResolvedSpec, _config_value, _find_blocks, _find_down_proj, _find_final_norms, block_output
from .capture import _hooks
from .errors import InputError, UnsupportedModelError


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


@dataclass
class Captured2:
    """One forward over (source, decoder tokens). hidden: float (n_layers + 1, n, d), row 0 = input of block 0.
    logits: (n_decoder_tokens, vocab). activations: {layer: (n, n_neurons)}. attentions: (n_layers, heads, q, k)."""

    encoder_hidden: torch.Tensor
    decoder_hidden: torch.Tensor
    logits: torch.Tensor
    encoder_activations: dict[int, np.ndarray] = field(default_factory=dict)
    decoder_activations: dict[int, np.ndarray] = field(default_factory=dict)
    encoder_attentions: torch.Tensor | None = None
    decoder_attentions: torch.Tensor | None = None
    cross_attentions: torch.Tensor | None = None


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
    probe_src = torch.tensor([[1 + i % 7 for i in range(4)]], device=_device(model))
    probe_dec = torch.tensor([[2 + i % 5 for i in range(3)]], device=_device(model))
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


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def capture_seq2seq(spec: Seq2SeqSpec, source_ids: torch.Tensor, decoder_ids: torch.Tensor,
                    encoder_layers: list[int] | None = None, decoder_layers: list[int] | None = None,
                    activation_dtype=np.float32, attention: bool = False) -> Captured2:
    """One forward over source_ids (1, n_src) and decoder_ids (1, m), recording both stacks."""
    np_dtype = np.dtype(activation_dtype)
    stores = {}
    handles: list = []

    def add_hooks(name: str, rspec: ResolvedSpec, layers: list[int]):
        store = {"inputs": [None], "outputs": [None] * rspec.n_layers, "acts": {}}
        stores[name] = store

        def first_input(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states")
            store["inputs"][0] = hidden.detach()[0]

        def keep_output(layer):
            def hook(module, args, output):
                store["outputs"][layer] = block_output(output).detach()[0]
            return hook

        def keep_activation(layer):
            def hook(module, args):
                store["acts"][layer] = args[0].detach()[0].float().cpu().numpy().astype(np_dtype, copy=True)
            return hook

        handles.append(rspec.blocks[0].register_forward_pre_hook(first_input, with_kwargs=True))
        for layer, block in enumerate(rspec.blocks):
            handles.append(block.register_forward_hook(keep_output(layer)))
        for layer in sorted(layers):
            proj = rspec.down_proj(layer)
            if proj is None:
                raise InputError(f"No MLP was found in {name} block {layer}.")
            handles.append(proj.register_forward_pre_hook(keep_activation(layer)))

    with _hooks(handles), torch.inference_mode():
        add_hooks("encoder", spec.encoder, encoder_layers or [])
        add_hooks("decoder", spec.decoder, decoder_layers or [])
        kwargs = {"use_cache": False}
        if attention:
            kwargs["output_attentions"] = True
        output = spec.model(input_ids=source_ids, decoder_input_ids=decoder_ids, **kwargs)

    hidden = {}
    for name, store in stores.items():
        missing = [i for i, h in enumerate(store["outputs"]) if h is None]
        if missing or store["inputs"][0] is None:
            raise RuntimeError(f"{name} blocks {missing} did not run during the forward pass.")
        hidden[name] = torch.stack([store["inputs"][0], *store["outputs"]]).float()

    def stacked(values):
        if not attention:
            return None
        if not values or values[0] is None:
            raise RuntimeError("The model returned no attention weights; load it with attn_implementation='eager'.")
        return torch.stack([a[0] for a in values]).float()

    return Captured2(
        encoder_hidden=hidden["encoder"], decoder_hidden=hidden["decoder"], logits=output.logits[0].float(),
        encoder_activations=dict(sorted(stores["encoder"]["acts"].items())),
        decoder_activations=dict(sorted(stores["decoder"]["acts"].items())),
        encoder_attentions=stacked(getattr(output, "encoder_attentions", None)),
        decoder_attentions=stacked(getattr(output, "decoder_attentions", None)),
        cross_attentions=stacked(getattr(output, "cross_attentions", None)),
    )
