"""Where a causal LM keeps what context mixing reads: per block, the attention module, the module whose output holds
the value vectors (and which of its columns they are), the output projection as one (d_head -> d_model) matrix per
query head, how query heads share key/value heads (GQA, multi-query), and the norm the attention's output goes
through before the residual stream (Gemma-2/3's ``post_attention_layernorm``; None elsewhere).

Value vectors are found two ways:

* a separate value projection named ``v_proj`` inside the attention module (Llama, SmolLM2, Mistral, Mixtral,
  Qwen2/3, Gemma 1-3, OPT, GPT-J, GPT-Neo, ...): unambiguous, so any family that has one is handled;
* a fused projection, only for the families whose column order is known (:data:`FUSED`): GPT-2's ``c_attn``
  (q | k | v), Phi-3's ``qkv_proj`` (q | k | v), GPT-NeoX's and BLOOM's ``query_key_value`` (interleaved per head:
  [q | k | v] of head 0, then head 1, ...) and Falcon's (its three layouts, read from its config).

A fused projection of any other family (CodeGen's ``qkv_proj`` is split in four tensor-parallel groups, MPT's
``Wqkv``, ...) is refused, naming its family, before any forward (:func:`mixing_layout`).

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100)).eval())
>>> layout = mixing_layout(spec)
>>> layout.n_heads, layout.n_kv_heads, layout.head_dim, tuple(layout.out_matrix(0).shape)
(4, 4, 8, (4, 8, 32))
>>> int(layout.value_columns(0).sum()), layout.value_columns(0)[64:].all().item(), layout.post[0] is None
(32, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ....errors import UnsupportedModelError
from ..attention import attention_module
from ..norms import norm_form
from ..record import weight_out_in

#: model_type -> (fused projection's name in the attention module, the order of its columns)
FUSED: dict[str, tuple[str, str]] = {
    "gpt2": ("c_attn", "qkv"),
    "phi3": ("qkv_proj", "qkv"),
    "gpt_neox": ("query_key_value", "per_head_qkv"),
    "bloom": ("query_key_value", "per_head_qkv"),
    "falcon": ("query_key_value", "falcon"),
}
#: families checked against hooks written in tests/test_context_mixing.py (others with a ``v_proj`` work the same way)
FAMILIES = ("bloom", "falcon", "gemma", "gemma2", "gemma3", "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral",
            "opt", "phi3", "qwen2")


def _config_int(config, *names) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass
class MixingLayout:
    """The parts of a supported causal LM (see the module docstring); built by :func:`mixing_layout`. ``kind``: how
    the value module's output columns are laid out ("v", "qkv", "per_head_qkv", "grouped_qkv")."""

    spec: Any
    family: str
    attention: list[nn.Module]
    value_modules: list[nn.Module]
    kind: str
    n_heads: int
    n_kv_heads: int
    head_dim: int
    post: list[nn.Module | None]

    def value_columns(self, layer: int) -> torch.Tensor:
        """bool (width,): which output columns of the value module are value vectors (kv head after kv head)."""
        width = int(weight_out_in(self.value_modules[layer]).shape[0])
        columns = torch.zeros(width, dtype=torch.bool)
        q, kv, hd = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.head_dim
        if self.kind == "v":
            columns[:] = True
        elif self.kind == "qkv":
            columns[q + kv: q + 2 * kv] = True
        elif self.kind == "per_head_qkv":  # (H, 3 * head_dim), v last in each head's group
            columns.view(self.n_heads, 3 * hd)[:, 2 * hd:] = True
        else:  # grouped_qkv (Falcon's new architecture): per kv head, its query heads, then k, then v
            group = self.n_heads // self.n_kv_heads + 2
            columns.view(self.n_kv_heads, group * hd)[:, (group - 1) * hd:] = True
        return columns

    def values_of(self, layer: int, output: torch.Tensor) -> torch.Tensor:
        """The value vectors in the value module's output (..., L, width): float32 (..., L, n_kv_heads, head_dim)."""
        picked = output[..., self.value_columns(layer).to(output.device)]
        return picked.float().reshape(*picked.shape[:-1], self.n_kv_heads, self.head_dim)

    def out_matrix(self, layer: int) -> torch.Tensor:
        """The attention output projection as float32 (n_heads, head_dim, d_model): head h's output z_h goes to
        d_model as z_h @ out_matrix[h] (bias left out)."""
        weight = weight_out_in(self.spec.attention_out(layer)).detach().float()  # (d_model, n_heads * head_dim)
        return weight.T.reshape(self.n_heads, self.head_dim, -1)

    def kv_of_head(self) -> torch.Tensor:
        """int (n_heads,): the key/value head each query head reads (GQA: groups of consecutive query heads)."""
        return torch.arange(self.n_heads) // (self.n_heads // self.n_kv_heads)


def _falcon(config) -> tuple[str, int]:
    """(kind, n_kv_heads) of Falcon's fused projection, from its config."""
    n_heads = int(config.num_attention_heads)
    if getattr(config, "new_decoder_architecture", False):
        return "grouped_qkv", int(getattr(config, "num_kv_heads", None) or n_heads)
    if getattr(config, "multi_query", True):
        return "qkv", 1
    return "per_head_qkv", n_heads


def _value_module(family: str, attention: nn.Module, config) -> tuple[nn.Module | None, str, int | None]:
    """(value module, kind, n_kv_heads or None for the config's) inside one block's attention module."""
    if family in FUSED:
        name, kind = FUSED[family]
        n_kv = None
        if kind == "falcon":
            kind, n_kv = _falcon(config)
        elif kind == "per_head_qkv":
            n_kv = _config_int(config, "num_attention_heads", "n_head")
    else:
        name, kind, n_kv = "v_proj", "v", None
    found = [m for n, m in attention.named_modules() if n.rsplit(".", 1)[-1] == name and weight_out_in(m) is not None]
    return (found[0] if len(found) == 1 else None), kind, n_kv


def mixing_layout(spec: Any) -> MixingLayout:
    """The layout of ``spec``'s model, or UnsupportedModelError naming its family and what is handled."""
    config = getattr(spec.model, "config", None)
    family = str(getattr(config, "model_type", type(spec.model).__name__))
    attention, values, posts, kind, n_kv = [], [], [], "v", None
    for layer, block in enumerate(spec.blocks):
        out = spec.attention_out(layer)
        module = attention_module(block, out) if out is not None and weight_out_in(out) is not None else None
        value, kind, n_kv = _value_module(family, module, config) if module is not None else (None, kind, n_kv)
        if value is None:
            raise UnsupportedModelError(
                f"Context mixing (value_zeroing, alti_logit, rollout) reads each block's value vectors and output "
                f"projection. Block {layer} of this {family!r} model ({type(spec.model).__name__}) has no separate "
                f"v_proj in its attention, and its fused projection's column order is known only for "
                f"{', '.join(sorted(FUSED))}. Use a gradient method (ig, grad_x_input, occlusion) for it.")
        branch = spec.attention_branch(layer)
        post = None if branch is out else branch
        if post is not None and norm_form(post) is None:
            raise UnsupportedModelError(f"Block {layer} of this {family!r} model adds its attention through "
                                        f"{type(post).__name__}, not a known norm: alti_logit cannot follow it.")
        attention.append(module)
        values.append(value)
        posts.append(post)
    n_heads = _config_int(config, "num_attention_heads", "n_head", "num_heads")
    n_kv = n_kv or _config_int(config, "num_key_value_heads") or n_heads
    d_model = int(spec.embedding.weight.shape[-1])
    head_dim = spec.head_dim or _config_int(config, "head_dim") or (d_model // n_heads if n_heads else None)
    if not n_heads or not head_dim or n_heads % n_kv:
        raise UnsupportedModelError(f"The {family!r} config gives no usable head counts (heads {n_heads}, key/value "
                                    f"heads {n_kv}, head_dim {head_dim}).")
    if spec.decode_fn is not None or spec.unembedding is None or weight_out_in(spec.unembedding) is None:
        raise UnsupportedModelError(f"alti_logit reads the logit through the final norm(s) at their frozen scale and "
                                    f"a linear unembedding; this {family!r} model decodes through a ModelSpec "
                                    f"decode function.")
    for module in spec.final_norms:
        if norm_form(module) is None and weight_out_in(module) is None:
            raise UnsupportedModelError(f"alti_logit cannot follow this {family!r} model's final "
                                        f"{type(module).__name__}: neither a known norm nor a linear projection.")
    return MixingLayout(spec, family, attention, values, kind, int(n_heads), int(n_kv), int(head_dim), posts)
