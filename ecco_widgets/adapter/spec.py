"""Find the parts of any Hugging Face causal LM by inspection: no hand-written table per model.

A :class:`ModelSpec` names the input embedding, the list of blocks, the modules that turn a block's output into the
input of the unembedding (final norm, OPT's ``project_out``), the unembedding itself, and the down projection of each
block's MLP (its *input* is the MLP activation: ``act(fc(x))``, or ``act(gate(x)) * up(x)`` for gated MLPs).

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100))
>>> spec = discover_spec(model)
>>> spec.n_layers, spec.final_norm_names, spec.down_proj_names[0]
(2, ['transformer.ln_f'], 'transformer.h.0.mlp.c_proj')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..errors import UnsupportedModelError

_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f", "final_norm", "layer_norm")
_POST_NORM_PROJECTIONS = ("project_out",)
_ATTENTION_HINTS = ("attn", "attention")
_MLP_HINTS = ("mlp", "feed_forward", "ffn", "ff")
_ATTENTION_OUTPUT_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "wo", "o")


@dataclass
class ModelSpec:
    """Where the parts of a causal LM live. Any field left ``None`` is discovered by :func:`discover_spec`.

    Names are dotted module paths as in ``model.named_modules()``.

    Example, for a model whose parts could not be found automatically::

        spec = ModelSpec(blocks="backbone.layers", final_norm=["backbone.norm_f"], unembedding="lm_head",
                         down_proj=[f"backbone.layers.{i}.mixer.out_proj" for i in range(24)])
        lm = ew.from_pretrained(model, tokenizer=tok, spec=spec)
    """

    blocks: str | None = None
    final_norm: list[str] | None = None
    unembedding: str | None = None
    down_proj: list[str] | None = None
    embedding: str | None = None
    logit_softcap: float | None = None
    attention_out: list[str] | None = None
    """Each block's attention output projection (its input holds the heads side by side); found by inspection."""
    head_dim: int | None = None
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    """Optional callable hidden (..., d_model) -> logits (..., vocab) used instead of final norm(s) + unembedding,
    for heads that are not a chain of modules (e.g. RoBERTa's lm_head: dense, functional gelu, layer norm, decoder)."""


@dataclass
class ResolvedSpec:
    """A :class:`ModelSpec` with every part found and bound to the model's modules."""

    model: nn.Module
    embedding_name: str
    blocks_name: str
    final_norm_names: list[str]
    unembedding_name: str | None  # None only for an encoder without a head (discover_spec(require_head=False))
    down_proj_names: list[str | None]
    logit_softcap: float | None = None
    attention_out_names: list[str] | None = None
    head_dim: int | None = None
    modules: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    decode_fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def embedding(self) -> nn.Module:
        return self.modules[self.embedding_name]

    @property
    def blocks(self) -> nn.ModuleList:
        return self.modules[self.blocks_name]  # type: ignore[return-value]

    @property
    def final_norms(self) -> list[nn.Module]:
        return [self.modules[n] for n in self.final_norm_names]

    @property
    def unembedding(self) -> nn.Module | None:
        return None if self.unembedding_name is None else self.modules[self.unembedding_name]

    @property
    def has_head(self) -> bool:
        """Whether hidden states can be decoded into logits (False for an encoder without a head)."""
        return self.decode_fn is not None or self.unembedding_name is not None

    def _to_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden in the dtype of the head's weights, and on their device unless accelerate places them."""
        weight = getattr(self.unembedding, "weight", None) if self.unembedding_name is not None else None
        if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
            return hidden
        device = hidden.device if weight.device.type == "meta" else weight.device
        return hidden.to(device=device, dtype=weight.dtype)

    def down_proj(self, layer: int) -> nn.Module | None:
        name = self.down_proj_names[layer]
        return None if name is None else self.modules[name]

    def mlp_branch(self, layer: int) -> nn.Module | None:
        """The module whose output block ``layer``'s MLP adds to the residual stream: Gemma-2/3's
        ``post_feedforward_layernorm`` where the block has one, else the MLP's down projection."""
        post = getattr(self.blocks[layer], "post_feedforward_layernorm", None)
        return post if isinstance(post, nn.Module) else self.down_proj(layer)

    def attention_branch(self, layer: int) -> nn.Module | None:
        """The module whose output block ``layer``'s attention adds to the residual stream: Gemma-2/3's
        ``post_attention_layernorm`` where the block also has a ``post_feedforward_layernorm``, else the attention's
        output projection (``o_proj``, ``out_proj``, ``c_proj``, ``dense``; Bloom's attention module itself adds the
        residual, its ``dense`` does not). None when no attention module is found."""
        block = self.blocks[layer]
        post = getattr(block, "post_attention_layernorm", None)
        if isinstance(post, nn.Module) and isinstance(getattr(block, "post_feedforward_layernorm", None), nn.Module):
            return post
        return self.attention_out(layer)

    def attention_out(self, layer: int) -> nn.Module | None:
        """Block ``layer``'s attention output projection (``o_proj``, ``out_proj``, ``c_proj``, ``dense``): its
        input is the heads' outputs side by side, ``head_dim`` wide each. None when no attention module is found."""
        if self.attention_out_names is not None:
            return self.modules[self.attention_out_names[layer]]
        block = self.blocks[layer]
        linears: list[tuple[str, nn.Module]] = []
        for child_name, child in block.named_children():  # the first attention-named child that holds a linear map
            if any(h in child_name.lower() for h in _ATTENTION_HINTS) and not _is_norm(child):
                linears = [(n.rsplit(".", 1)[-1], m) for n, m in child.named_modules() if _linear_dims(m) is not None]
                if linears:
                    break
        for name in _ATTENTION_OUTPUT_NAMES:
            found = next((m for n, m in linears if n == name), None)
            if found is not None:
                return found
        return linears[-1][1] if linears else None

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of block outputs: final norm(s), then the unembedding (and Gemma-2's soft cap).

        hidden: float (..., d_model) -> logits float (..., vocab). With ``decode_fn`` set, that callable replaces the
        final norm(s) and the unembedding (the soft cap still applies).
        """
        hidden = self._to_head(hidden)
        if self.decode_fn is not None:
            logits = self.decode_fn(hidden)
        elif self.unembedding_name is None:
            raise UnsupportedModelError(f"{type(self.model).__name__} has no head that maps hidden states to logits.")
        else:
            for norm in self.final_norms:
                hidden = norm(hidden)
            logits = self.unembedding(hidden)
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits


def _config_value(config, *names):
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in names:
        for cfg in (text_config, config):
            value = getattr(cfg, name, None)
            if value is not None:
                return value
    return None


def _find_blocks(model: nn.Module, n_layers: int | None) -> str:
    candidates = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            kinds = {type(m) for m in module}
            n_params = sum(p.numel() for p in module.parameters())
            if len(kinds) == 1 and n_params > 0:
                candidates.append((name, len(module), n_params))
    if n_layers is not None:
        exact = [c for c in candidates if c[1] == n_layers]
        if exact:
            candidates = exact
    if not candidates:
        raise UnsupportedModelError(
            f"Could not find the list of transformer blocks in {type(model).__name__}. "
            "Pass ew.ModelSpec(blocks='path.to.layers', ...) to from_pretrained(..., spec=...)."
        )
    return max(candidates, key=lambda c: c[2])[0]


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or "norm" in type(module).__name__.lower()


def _find_final_norms(model: nn.Module, blocks_name: str) -> list[str]:
    parent_name = blocks_name.rsplit(".", 1)[0] if "." in blocks_name else ""
    parent = model.get_submodule(parent_name) if parent_name else model
    prefix = parent_name + "." if parent_name else ""
    found: list[str] = []
    for preferred in _FINAL_NORM_NAMES:
        child = getattr(parent, preferred, None)
        if isinstance(child, nn.Module) and _is_norm(child):
            found.append(prefix + preferred)
            break
    if not found:
        norms = [n for n, m in parent.named_children() if _is_norm(m) and "emb" not in n.lower()]
        if len(norms) == 1:
            found.append(prefix + norms[0])
    for projection in _POST_NORM_PROJECTIONS:
        child = getattr(parent, projection, None)
        if isinstance(child, nn.Module):
            found.append(prefix + projection)
    return found


def _linear_dims(module: nn.Module) -> tuple[int, int] | None:
    """(in_features, out_features) of a Linear or GPT-2 style Conv1D, else None."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and hasattr(module, "weight") and module.weight.dim() == 2:
        return module.weight.shape[0], module.weight.shape[1]
    return None


def _find_down_proj(block: nn.Module, block_name: str, d_model: int) -> str | None:
    """The block's MLP output projection: a linear map from a wider space back to d_model, outside attention."""
    best = None
    for name, module in block.named_modules():
        dims = _linear_dims(module)
        if dims is None:
            continue
        lowered = name.lower()
        if any(h in part for part in lowered.split(".")[:-1] for h in _ATTENTION_HINTS):
            continue
        if any(h in lowered.split(".")[-1] for h in _ATTENTION_HINTS):
            continue
        d_in, d_out = dims
        if d_out == d_model and d_in > d_model:
            in_mlp = any(h in part for part in lowered.split(".") for h in _MLP_HINTS)
            score = (in_mlp, d_in)
            if best is None or score > best[0]:
                best = (score, name)
    return None if best is None else f"{block_name}.{best[1]}"


def discover_spec(model: nn.Module, override: ModelSpec | None = None, require_head: bool = True) -> ResolvedSpec:
    """Inspect ``model`` and return where its parts are; ``override`` fixes any field by hand.

    Raises UnsupportedModelError with the fix when a part cannot be found. ``require_head=False`` accepts a model
    without an output embedding (an encoder such as BertModel): its ``unembedding_name`` is then None.
    """
    override = override or ModelSpec()
    config = getattr(model, "config", None)
    n_layers = _config_value(config, "num_hidden_layers", "n_layer", "num_layers") if config is not None else None
    modules = dict(model.named_modules())

    embedding_name = override.embedding
    if embedding_name is None:
        embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        embedding_name = next((n for n, m in modules.items() if m is embedding), None)
    if embedding_name is None:
        raise UnsupportedModelError("Could not find the input embedding; pass ew.ModelSpec(embedding='...').")

    blocks_name = override.blocks or _find_blocks(model, n_layers)
    final_norm_names = override.final_norm if override.final_norm is not None else _find_final_norms(
        model, blocks_name
    )

    unembedding_name = override.unembedding
    if unembedding_name is None:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        unembedding_name = next((n for n, m in modules.items() if m is head and n), None)
    if unembedding_name is None and require_head:
        raise UnsupportedModelError(
            f"{type(model).__name__} has no output embedding (language-model head). ecco_widgets needs a causal LM "
            "(AutoModelForCausalLM); for an encoder without a head, pass ew.ModelSpec(unembedding='...')."
        )

    for name in [embedding_name, blocks_name, unembedding_name, *final_norm_names]:
        if name is not None and name not in modules:
            raise UnsupportedModelError(f"ModelSpec names {name!r}, which is not a module of {type(model).__name__}.")
    blocks = modules[blocks_name]
    d_model = _config_value(config, "hidden_size", "n_embd", "d_model") if config is not None else None
    if d_model is None:
        d_model = modules[embedding_name].weight.shape[1]
    if override.down_proj is not None:
        down_proj_names: list[str | None] = list(override.down_proj)
    else:
        down_proj_names = [_find_down_proj(b, f"{blocks_name}.{i}", d_model) for i, b in enumerate(blocks)]

    softcap = override.logit_softcap
    if softcap is None and config is not None:
        softcap = _config_value(config, "final_logit_softcapping")

    head_dim = override.head_dim or (_config_value(config, "head_dim") if config is not None else None)
    n_heads = _config_value(config, "num_attention_heads", "n_head", "num_heads") if config is not None else None
    if head_dim is None and n_heads:
        head_dim = int(d_model) // int(n_heads)
    for name in [n for n in [*down_proj_names, *(override.attention_out or [])] if n]:
        if name not in modules:
            raise UnsupportedModelError(f"ModelSpec names {name!r}, which is not a module of {type(model).__name__}.")
    return ResolvedSpec(
        model=model,
        embedding_name=embedding_name,
        blocks_name=blocks_name,
        final_norm_names=list(final_norm_names),
        unembedding_name=unembedding_name,
        down_proj_names=down_proj_names,
        logit_softcap=softcap,
        attention_out_names=override.attention_out,
        head_dim=None if head_dim is None else int(head_dim),
        modules=modules,
        decode_fn=override.decode,
    )


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


DecodeFn = Callable[[torch.Tensor], torch.Tensor]
