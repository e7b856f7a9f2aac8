"""Where a causal LM keeps what context mixing reads: per block, the attention module, the module whose output holds
the value vectors (and which of its columns they are), the output projection as one (d_head -> d_model) matrix per
query head, and how query heads share key/value heads (GQA).

Families (``config.model_type``): GPT-2 (fused ``c_attn``, Conv1D), the Llama layout (``v_proj`` / ``o_proj``:
Llama, SmolLM2, Mistral, Qwen2/3, Gemma), Phi-3 (fused ``qkv_proj``: q | k | v) and GPT-NeoX / Pythia (fused
``query_key_value``, interleaved per head: [q | k | v] of head 0, then head 1, ...). Anything else is refused, naming
its family, before any forward (:func:`mixing_layout`).

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100)).eval())
>>> layout = mixing_layout(spec)
>>> layout.n_heads, layout.n_kv_heads, layout.head_dim, tuple(layout.out_matrix(0).shape)
(4, 4, 8, (4, 8, 32))
>>> int(layout.value_columns(0).sum()), layout.value_columns(0)[64:].all().item()
(32, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ....errors import UnsupportedModelError
from ..norms import norm_form

#: model_type -> (attention child of the block, value module in it, layout of its output)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "gpt2": ("attn", "c_attn", "qkv"),
    "llama": ("self_attn", "v_proj", "v"),
    "mistral": ("self_attn", "v_proj", "v"),
    "qwen2": ("self_attn", "v_proj", "v"),
    "qwen3": ("self_attn", "v_proj", "v"),
    "gemma": ("self_attn", "v_proj", "v"),
    "phi3": ("self_attn", "qkv_proj", "qkv"),
    "gpt_neox": ("attention", "query_key_value", "per_head_qkv"),
}


def _config_int(config, *names) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


@dataclass
class MixingLayout:
    """The parts of a supported causal LM (see the module docstring); built by :func:`mixing_layout`."""

    spec: Any
    family: str
    attention: list[nn.Module]
    value_modules: list[nn.Module]
    kind: str
    n_heads: int
    n_kv_heads: int
    head_dim: int

    def value_columns(self, layer: int) -> torch.Tensor:
        """bool (width,): which output columns of the value module are value vectors (kv head after kv head)."""
        module = self.value_modules[layer]
        width = int(module.weight.shape[1] if type(module).__name__ == "Conv1D" else module.weight.shape[0])
        columns = torch.zeros(width, dtype=torch.bool)
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        if self.kind == "v":
            columns[:] = True
        elif self.kind == "qkv":
            columns[q + kv: q + 2 * kv] = True
        else:  # per_head_qkv: (H, 3 * head_dim), v last in each head's group
            columns.view(self.n_heads, 3 * self.head_dim)[:, 2 * self.head_dim:] = True
        return columns

    def values_of(self, layer: int, output: torch.Tensor) -> torch.Tensor:
        """The value vectors in the value module's output (..., L, width): float32 (..., L, n_kv_heads, head_dim)."""
        picked = output[..., self.value_columns(layer).to(output.device)]
        return picked.float().reshape(*picked.shape[:-1], self.n_kv_heads, self.head_dim)

    def out_matrix(self, layer: int) -> torch.Tensor:
        """The attention output projection as float32 (n_heads, head_dim, d_model): head h's output z_h goes to
        d_model as z_h @ out_matrix[h] (bias left out)."""
        module = self.spec.attention_out(layer)
        weight = module.weight.detach().float()
        if type(module).__name__ != "Conv1D":  # Linear: (d_model, n_heads * head_dim)
            weight = weight.T
        return weight.reshape(self.n_heads, self.head_dim, -1)

    def kv_of_head(self) -> torch.Tensor:
        """int (n_heads,): the key/value head each query head reads (GQA: groups of consecutive query heads)."""
        return torch.arange(self.n_heads) // (self.n_heads // self.n_kv_heads)


def mixing_layout(spec: Any) -> MixingLayout:
    """The layout of ``spec``'s model, or UnsupportedModelError naming its family and the ones handled."""
    config = getattr(spec.model, "config", None)
    family = str(getattr(config, "model_type", type(spec.model).__name__))
    handled = ", ".join(sorted(FAMILIES))
    if family not in FAMILIES:
        raise UnsupportedModelError(
            f"Context mixing (value_zeroing, alti_logit, rollout) reads each block's value vectors and output "
            f"projection; the {family!r} family ({type(spec.model).__name__}) has a layout this version does not "
            f"handle. Handled families: {handled}. Use a gradient method (ig, grad_x_input, occlusion) for it.")
    attention_name, value_name, kind = FAMILIES[family]
    attention, values = [], []
    for layer, block in enumerate(spec.blocks):
        module = getattr(block, attention_name, None)
        value = getattr(module, value_name, None) if module is not None else None
        if module is None or value is None or spec.attention_out(layer) is None:
            raise UnsupportedModelError(f"Block {layer} of this {family!r} model has no {attention_name}."
                                        f"{value_name}: context mixing cannot find its value vectors.")
        attention.append(module)
        values.append(value)
    n_heads = _config_int(config, "num_attention_heads", "n_head")
    n_kv = _config_int(config, "num_key_value_heads") or n_heads
    d_model = int(spec.embedding.weight.shape[-1])
    head_dim = spec.head_dim or _config_int(config, "head_dim") or (d_model // n_heads if n_heads else None)
    if not n_heads or not head_dim or n_heads % n_kv:
        raise UnsupportedModelError(f"The {family!r} config gives no usable head counts (heads {n_heads}, key/value "
                                    f"heads {n_kv}, head_dim {head_dim}).")
    if len(spec.final_norms) != 1 or norm_form(spec.final_norms[0]) is None or spec.decode_fn is not None:
        raise UnsupportedModelError(f"alti_logit reads the logit through one final norm at its frozen scale; this "
                                    f"{family!r} model decodes through {spec.final_norm_names or 'no final norm'}.")
    return MixingLayout(spec, family, attention, values, kind, int(n_heads), int(n_kv), int(head_dim))
