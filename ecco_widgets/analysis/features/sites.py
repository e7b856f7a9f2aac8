"""Where a dictionary reads: TransformerLens hook names, sparsify hookpoints and plain module names mapped onto the
modules an adapter ``ResolvedSpec`` found (its ``blocks``, ``attention_out(layer)``, ``attention_branch``,
``mlp_branch``, ``down_proj``). Pure: nothing runs here; :mod:`.record` hooks what a :class:`Site` names.

A site is a module, whether its input or its output is read, and a transform of what is read:

- ``centre``: minus the per-token mean. TransformerLens' ``HookedTransformer.from_pretrained`` centres the weights
  that write to the residual stream of LayerNorm models (``center_writing_weights``), so SAEs trained through it saw
  every residual-width site centred per token: TL names of LayerNorm models get it.
- ``normalized``: the norm's formula without its weight and bias (TL's ``fold_ln`` folds them into the next layer):
  LayerNorm (x - mean) / sqrt(var + eps), RMSNorm x / sqrt(mean(x^2) + eps). For ``ln1`` / ``ln2.hook_normalized``.
- ``head``: one head's slice (``hook_head_index``) of the attention output projection's input (``hook_z`` is that
  input, the heads side by side, as SAELens flattens it).
- ``value_bias``: minus each head's value bias, the pre-attention norm's bias through the value map included (TL's
  ``fold_ln`` folds that bias into ``b_V`` and ``fold_value_biases`` moves ``b_V`` into ``b_O``, so TL's ``hook_z``
  lacks both): ``attn.hook_z`` of models with either (GPT-2, GPT-J, NeoX, Bloom, OPT, Qwen2, ...).

Traps followed: TL's ``hook_mlp_in`` is the residual *before* ln2 (= ``hook_resid_mid``; ``hook_resid_pre`` for
parallel blocks), ``mlp.hook_in`` (TransformerBridge) the MLP's input after it (ln2's output, weight applied);
``blocks.{last}.hook_resid_post``
is the last block's output, not HF's last ``hidden_states`` entry (that one is after the final norm).

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)))
>>> site = resolve(spec, "blocks.1.hook_mlp_in")
>>> site.module, site.io, site.transform, site.width
('transformer.h.1.ln_2', 'input', 'centre', 32)
>>> resolve(spec, "h.0.mlp").describe()
'transformer.h.0.mlp output'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ...errors import InputError
from ..components.norms import norm_form

#: The TransformerLens hook names read (``blocks.{L}.`` + these), and the site kind each one is.
TL_HOOKS = {"hook_resid_pre": "resid_pre", "hook_resid_mid": "resid_mid", "hook_resid_post": "resid_post",
            "hook_mlp_in": "mlp_in", "hook_attn_out": "attn_out", "hook_mlp_out": "mlp_out",
            "mlp.hook_out": "mlp_out_raw", "mlp.hook_in": "mlp_input", "ln2.hook_normalized": "ln2_normalized",
            "ln1.hook_normalized": "ln1_normalized", "attn.hook_z": "z", "hook_z": "z", "mlp.hook_post": "mlp_post"}
#: Kinds TL reads from the residual stream's width (centred on LayerNorm models).
CENTRED = ("resid_pre", "resid_mid", "resid_post", "mlp_in", "attn_out", "mlp_out")
_MLP_NORMS = ("pre_feedforward_layernorm", "ln_mlp", "ln_2", "final_layer_norm", "post_attention_layernorm")
_ATTN_NORMS = ("input_layernorm", "ln_1", "self_attn_layer_norm", "ln_attn")
_TL = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Site:
    """``module``'s ``io`` ("input" / "output"), then ``transform`` ("", "centre", "normalized", "head:<h>",
    "value_bias", "value_bias,head:<h>").
    ``kind`` / ``layer``: the TL site it is ("module" for a plain module name); ``width``: the values per token, None
    where only the forward can tell. Pass one in ``saes=[(sae, Site(...))]`` to read any module."""

    module: str
    io: str = "output"
    transform: str = ""
    name: str = ""
    kind: str = "module"
    layer: int | None = None
    width: int | None = None

    def __post_init__(self) -> None:
        if self.io not in ("input", "output"):
            raise InputError(f"Site.io is 'input' or 'output', got {self.io!r}.")
        if self.transform not in ("", "centre", "normalized") and \
                not re.fullmatch(r"(value_bias)?(,?head:\d+)?", self.transform):
            raise InputError(f"Site.transform is '', 'centre', 'normalized', 'value_bias' and / or 'head:<h>', got "
                             f"{self.transform!r}.")

    def describe(self) -> str:
        extra = {"centre": " (centred per token)", "normalized": " (normalised, without weight and bias)"}
        head = re.search(r"head:(\d+)", self.transform)
        parts = ["minus the value bias"] * ("value_bias" in self.transform)
        parts += [f"head {head.group(1)}"] if head else []
        other = f" ({', '.join(parts)})" if parts else ""
        return f"{self.module} {self.io}{extra.get(self.transform, other)}"


def names_of(spec: Any) -> dict[int, str]:
    """{id(module): dotted name} of the model's modules."""
    return {id(m): n for n, m in spec.modules.items()}


def _name(spec: Any, module: nn.Module | None) -> str | None:
    return None if module is None else names_of(spec).get(id(module))


def is_parallel(spec: Any) -> bool:
    """Whether attention and MLP read the same block input (GPT-J, NeoX's parallel residual, Falcon, Phi-1/2)."""
    config = getattr(spec.model, "config", None)
    return bool(getattr(config, "model_type", "") in ("gptj", "codegen", "phi")
                or getattr(config, "use_parallel_residual", False) or getattr(config, "parallel_attn", False)
                or getattr(config, "new_decoder_architecture", False))


def _child_norm(block: nn.Module, names: tuple[str, ...]) -> str | None:
    for name in names:
        child = getattr(block, name, None)
        if isinstance(child, nn.Module) and norm_form(child) is not None:
            return name
    return None


def layer_norm_model(spec: Any) -> bool:
    """Whether the blocks' norms centre (LayerNorm: GPT-2, OPT, NeoX, ...), not RMSNorm."""
    block = spec.blocks[0]
    forms = [norm_form(m) for _, m in block.named_modules()]
    return any(f is not None and f.centre for f in forms)


def _width(module: nn.Module | None, io: str) -> int | None:
    if isinstance(module, nn.Linear):
        return module.in_features if io == "input" else module.out_features
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        return int(module.weight.shape[0 if io == "input" else 1])
    shape = getattr(module, "normalized_shape", None)
    weight = getattr(module, "weight", None)
    if norm_form(module) is not None:
        return int(shape[-1]) if shape else (int(weight.shape[-1]) if weight is not None else None)
    return None


def _refuse(name: str, why: str) -> InputError:
    return InputError(f"Site {name!r}: {why} Pass the site by hand: saes=[(sae, ew.Site(module='...', io='input' or "
                      "'output'))] naming a module of model.named_modules(), or fix the parts with ew.ModelSpec.")


def tl_site(spec: Any, kind: str, layer: int, name: str = "", centre: bool | None = None,
            head: int | None = None) -> Site:
    """The site of TL kind ``kind`` (a value of :data:`TL_HOOKS`) in block ``layer``; InputError when this model has
    none (a parallel block's resid_mid, a block without a found MLP, ...). centre: None follows TL (LayerNorm
    models centred)."""
    name = name or f"blocks.{layer}.{kind}"
    if not 0 <= layer < spec.n_layers:
        raise InputError(f"Site {name!r}: layer {layer} does not exist; the model has {spec.n_layers} blocks "
                         f"(0..{spec.n_layers - 1}).")
    d_model = _d_model(spec)
    block_name = f"{spec.blocks_name}.{layer}"
    block = spec.blocks[layer]
    centre = layer_norm_model(spec) if centre is None else centre
    transform = "centre" if centre and kind in CENTRED else ""
    site = Site(module=block_name, io="input", transform=transform, name=name, kind=kind, layer=layer, width=d_model)
    if kind == "resid_pre" or (kind == "mlp_in" and is_parallel(spec)):
        return site
    if kind == "resid_post":
        return replace(site, io="output")
    if kind in ("resid_mid", "mlp_in"):
        if is_parallel(spec):
            raise _refuse(name, "this model's blocks run attention and MLP side by side on the block's input, so "
                                "there is no residual stream between them (TL has no hook_resid_mid here either).")
        norm = _child_norm(block, _MLP_NORMS)
        if norm is None:
            raise _refuse(name, f"no norm before the MLP of block {layer} was found among {', '.join(_MLP_NORMS)}.")
        return replace(site, module=f"{block_name}.{norm}")
    if kind in ("ln2_normalized", "ln1_normalized", "mlp_input"):
        names = _ATTN_NORMS if kind == "ln1_normalized" else _MLP_NORMS
        norm = _child_norm(block, names) or (_child_norm(block, _ATTN_NORMS) if is_parallel(spec) else None)
        if norm is None:
            raise _refuse(name, f"no norm of block {layer} was found among {', '.join(names)}.")
        if kind == "mlp_input":  # the MLP's input: the norm's output, weight and bias applied
            return replace(site, module=f"{block_name}.{norm}", io="output")
        return replace(site, module=f"{block_name}.{norm}", transform="normalized")
    parts = {"attn_out": (spec.attention_branch(layer), "output"), "mlp_out": (spec.mlp_branch(layer), "output"),
             "mlp_out_raw": (spec.mlp_branch(layer), "output"), "z": (spec.attention_out(layer), "input"),
             "mlp_post": (spec.down_proj(layer), "input")}
    if kind not in parts:
        known = ", ".join(sorted(set(TL_HOOKS.values())))
        raise InputError(f"Site {name!r}: unknown site kind {kind!r}; known: {known}.")
    module, io = parts[kind]
    module_name = _name(spec, module)
    if module_name is None:
        what = {"z": "attention output projection (ew.ModelSpec(attention_out=[...]))",
                "attn_out": "attention output projection (ew.ModelSpec(attention_out=[...]))"}.get(
            kind, "MLP down projection (ew.ModelSpec(down_proj=[...]))")
        raise _refuse(name, f"block {layer} has no {what}.")
    width = d_model if kind in CENTRED or kind == "mlp_out_raw" else _width(module, io)
    site = replace(site, module=module_name, io=io, width=width)
    if kind == "z" and value_bias(spec, layer) is not None:
        site = replace(site, transform="value_bias")
    if kind == "z" and head is not None:
        if not spec.head_dim or not width or not 0 <= head < width // spec.head_dim:
            raise _refuse(name, f"head {head} is not one of the {(width or 0) // (spec.head_dim or 1)} heads.")
        site = replace(site, transform=",".join(filter(None, [site.transform, f"head:{head}"])), width=spec.head_dim)
    return site


def value_bias(spec: Any, layer: int) -> torch.Tensor | None:
    """What TL's ``fold_ln`` + ``fold_value_biases`` take out of block ``layer``'s z: the value bias plus the
    pre-attention norm's bias through the value map, laid out as the attention output projection's input (heads side
    by side, a key / value head repeated for each query head it serves); None when it is zero. The value map is
    ``v_proj``, GPT-2's ``c_attn`` (q, k, v side by side) or a fused ``query_key_value`` laid out per head (NeoX,
    Bloom)."""
    out = spec.attention_out(layer)
    name = _name(spec, out)
    width = _width(out, "input")
    if name is None or "." not in name or not width or not spec.head_dim:
        return None
    attention = spec.modules[name.rsplit(".", 1)[0]]
    n_heads, head_dim = width // spec.head_dim, spec.head_dim
    norm_name = _child_norm(spec.blocks[layer], _ATTN_NORMS)
    norm = getattr(spec.blocks[layer], norm_name) if norm_name else None
    d_model = _d_model(spec)
    b = getattr(norm, "bias", None)
    v_proj, c_attn, fused = (getattr(attention, n, None) for n in ("v_proj", "c_attn", "query_key_value"))
    with torch.no_grad():
        if isinstance(v_proj, nn.Module) and _width(v_proj, "input") == d_model:
            ref = v_proj.weight if hasattr(v_proj, "weight") else None
            b = torch.zeros(d_model, dtype=ref.dtype, device=ref.device) if b is None else b
            bias = v_proj(b[None].to(ref.dtype))[0].view(-1, head_dim)
        elif isinstance(c_attn, nn.Module) and _width(c_attn, "output") == 3 * width:
            b = torch.zeros(d_model, dtype=c_attn.weight.dtype, device=c_attn.weight.device) if b is None else b
            bias = c_attn(b[None].to(c_attn.weight.dtype))[0, 2 * width:].view(-1, head_dim)
        elif isinstance(fused, nn.Module) and _width(fused, "output") == 3 * width:
            b = torch.zeros(d_model, dtype=fused.weight.dtype, device=fused.weight.device) if b is None else b
            bias = fused(b[None].to(fused.weight.dtype))[0].view(n_heads, 3, head_dim)[:, 2]
        else:
            return None
    if not bool(bias.any()) or n_heads % bias.shape[0]:
        return None
    return bias.float().repeat_interleave(n_heads // bias.shape[0], dim=0).reshape(-1)


def _d_model(spec: Any) -> int | None:
    """The residual stream's width: the attention output projection's output (OPT's embeddings are narrower)."""
    width = _width(spec.attention_out(0), "output") if spec.n_layers else None
    if width:
        return width
    weight = getattr(spec.embedding, "weight", None)
    return int(weight.shape[-1]) if weight is not None else None


def module_site(spec: Any, name: str, io: str | None = None, read_input: bool = False) -> Site:
    """A plain module name: the full dotted name, or its tail (sparsify's ``layers.6.mlp``, ``h.3``), with an
    optional ``.input`` / ``.output`` suffix (Gemma Scope 2's ``hf_hook_point_in``); the output unless
    ``read_input`` (a sparsify transcoder reads its module's input)."""
    base = name
    if io is None:
        for suffix in ("input", "output"):
            if name.endswith("." + suffix) and name[: -len(suffix) - 1] in _all_tails(spec):
                base, io = name[: -len(suffix) - 1], suffix
    io = io or ("input" if read_input else "output")
    full = _all_tails(spec).get(base)
    if full is None:
        raise _refuse(name, "no module of the model has this name (full or its tail).")
    if full == "ambiguous":
        raise _refuse(name, "several modules end with this name.")
    layer = _layer_of(spec, full)
    kind = "module"
    if layer is not None and full == f"{spec.blocks_name}.{layer}":
        kind = "resid_post" if io == "output" else "resid_pre"
    width = _d_model(spec) if kind != "module" else _width(spec.modules[full], io)
    return Site(module=full, io=io, name=name, kind=kind, layer=layer, width=width)


def _all_tails(spec: Any) -> dict[str, str]:
    tails: dict[str, str] = {}
    for full in spec.modules:
        parts = full.split(".")
        for i in range(len(parts)):
            tail = ".".join(parts[i:])
            tails[tail] = full if tails.get(tail, full) == full else "ambiguous"
    for full in spec.modules:
        tails[full] = full
    return tails


def _layer_of(spec: Any, full: str) -> int | None:
    prefix = spec.blocks_name + "."
    if not full.startswith(prefix):
        return None
    head = full[len(prefix):].split(".", 1)[0]
    return int(head) if head.isdigit() else None


def resolve(spec: Any, name: Any, centre: bool | None = None, head: int | None = None,
            read_input: bool = False) -> Site:
    """The :class:`Site` a name means on this model: a Site as it is; ``blocks.{L}.<hook>`` (TransformerLens,
    :data:`TL_HOOKS`); else a module name (full, or its tail as sparsify names them)."""
    if isinstance(name, Site):
        module_site(spec, name.module, name.io)  # it must exist
        return name
    if not isinstance(name, str) or not name:
        raise InputError(f"A site is a TransformerLens hook name, a module name or an ew.Site; got {name!r}.")
    match = _TL.match(name)
    if match and match.group(2) in TL_HOOKS:
        return tl_site(spec, TL_HOOKS[match.group(2)], int(match.group(1)), name, centre, head)
    if match:
        raise InputError(f"Site {name!r}: the TransformerLens hook {match.group(2)!r} is not mapped; mapped: "
                         f"{', '.join(sorted(TL_HOOKS))} (after blocks.L.).")
    return module_site(spec, name, read_input=read_input)


def sites_of(spec: Any, sae: Any, site: Any = None) -> tuple[Site, Site | None]:
    """(where ``sae`` reads, where a transcoder's output is compared; None for an SAE), from ``site`` when given,
    else from the files' metadata: SAELens ``hook_name`` / ``hook_name_out`` (``hook_head_index``), sparsify's
    hookpoint (a transcoder reads its module's input and writes its output), Gemma Scope 2's ``hf_hook_point_in`` /
    ``_out``, SAELens' ``hf_hook_name``."""
    meta = getattr(sae, "site", {}) or {}
    head = meta.get("hook_head_index")
    if site is None:
        site = meta.get("hook_name") or meta.get("hookpoint") or meta.get("hf_hook_point_in") \
            or meta.get("hf_hook_name")
        if site is None:
            raise InputError("This dictionary's files name no site (hook_name, hookpoint): pass one, "
                             "saes=[(sae, 'blocks.3.hook_resid_post')].")
    sparsify_transcoder = getattr(sae, "format", "") == "sparsify" and sae.transcoder
    read = resolve(spec, site, head=head, read_input=sparsify_transcoder)
    if not sae.transcoder:
        return read, None
    out_name = meta.get("hook_name_out") or meta.get("hf_hook_point_out") or meta.get("hf_hook_name_out")
    if sparsify_transcoder and out_name is None:
        return read, replace(read, io="output", width=_width(spec.modules[read.module], "output") or read.width)
    if out_name is None:
        raise InputError("This transcoder's files name no output site (hook_name_out): pass both, "
                         "saes=[(sae, ('blocks.3.ln2.hook_normalized', 'blocks.3.hook_mlp_out'))].")
    return read, resolve(spec, out_name, head=meta.get("hook_head_index_out"))


def neighbours(spec: Any, site: Site) -> list[Site]:
    """Sites a misplaced dictionary may belong to: the block's resid_pre / resid_post, the same kind one block
    before and after, and the same site with the other centring; those this model has."""
    if site.layer is None or site.kind not in TL_HOOKS.values():
        return []
    wanted = [("resid_pre", site.layer), ("resid_post", site.layer), (site.kind, site.layer - 1),
              (site.kind, site.layer + 1)]
    found: list[Site] = []
    for kind, layer in wanted:
        for centre in (site.transform == "centre", site.transform != "centre"):
            if not 0 <= layer < spec.n_layers:
                continue
            try:
                other = tl_site(spec, kind, layer, f"blocks.{layer}.{_hook_of(kind)}", centre=centre)
            except InputError:
                continue
            key = (other.module, other.io, other.transform)
            if key != (site.module, site.io, site.transform) and other.width == site.width \
                    and key not in [(f.module, f.io, f.transform) for f in found]:
                found.append(other)
    return found


def _hook_of(kind: str) -> str:
    return next(h for h, k in TL_HOOKS.items() if k == kind)
