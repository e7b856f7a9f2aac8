"""What direct logit attribution needs from the one hooked forward, recorded by a plug of
:func:`ecco_widgets.capture.capture`: the input of block 0 (the embedding term), of each attention output projection
(the heads side by side), of each MLP down projection (the neurons), of Gemma-2/3's post-sublayer norms, of each
final-norm module and of the unembedding, at every position, in the model's dtype.

The parts are found (and a family that cannot be decomposed exactly is refused, NotAvailableError) when the recorder
is built, before the forward runs.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> import torch
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.capture import capture
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval())
>>> recorder = ComponentRecorder(spec, n_tokens=3)
>>> _ = capture(spec, torch.tensor([[1, 2, 3]]), plugs=(recorder,))
>>> tuple(recorder.finish().inputs["attn.1"].shape), recorder.parts.n_heads
((3, 32), 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...capture import this_thread_only
from ...errors import NotAvailableError
from ...memory import require
from .attention import AttentionCall, attention_module, keep_call
from .norms import norm_form


@dataclass
class Parts:
    """The modules of a decomposable causal LM, per layer (``attn_post`` / ``mlp_post``: None without post-norms)."""

    attn_out: list[nn.Module]
    mlp_out: list[nn.Module]
    attn_post: list[nn.Module | None]
    mlp_post: list[nn.Module | None]
    final_chain: list[nn.Module]  # final norm(s) and projections between the last block and the unembedding
    unembedding: nn.Module
    first_block: nn.Module
    head_dim: int
    n_heads: int
    softcap: float | None = None

    @property
    def n_layers(self) -> int:
        return len(self.attn_out)

    def hooked(self) -> dict[str, nn.Module]:
        """{key: module whose *input* is recorded}."""
        found = {"embed": self.first_block, "unembed": self.unembedding}
        for layer in range(self.n_layers):
            found[f"attn.{layer}"], found[f"mlp.{layer}"] = self.attn_out[layer], self.mlp_out[layer]
            for kind, post in (("attn_post", self.attn_post[layer]), ("mlp_post", self.mlp_post[layer])):
                if post is not None:
                    found[f"{kind}.{layer}"] = post
        found.update({f"final.{i}": m for i, m in enumerate(self.final_chain)})
        return found


def is_experts(module: Any) -> bool:
    """A mixture of experts' expert bank as transformers 5 stores it (Mixtral, ...): ``gate_up_proj`` (E, 2F, d) and
    ``down_proj`` (E, d, F) parameters and ``act_fn``, called with (hidden (n, d), top_k_index, top_k_weights)."""
    up, down = getattr(module, "gate_up_proj", None), getattr(module, "down_proj", None)
    return isinstance(up, torch.Tensor) and isinstance(down, torch.Tensor) and up.dim() == down.dim() == 3 \
        and hasattr(module, "act_fn") and getattr(module, "gate_up_proj_bias", None) is None \
        and getattr(module, "down_proj_bias", None) is None


def _experts_of(block: nn.Module) -> nn.Module | None:
    """The one expert bank of a block whose MLP is a plain routed mixture (no shared expert), else None."""
    banks = [m for _, m in block.named_modules() if is_experts(m)]
    shared = any("shared" in name.lower() for name, _ in block.named_modules())
    return banks[0] if len(banks) == 1 and not shared else None


def weight_out_in(module: nn.Module) -> torch.Tensor | None:
    """The weight of a Linear (out, in) or of GPT-2's Conv1D (stored (in, out)) as (out, in); None otherwise."""
    if isinstance(module, nn.Linear):
        return module.weight
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        return module.weight.T
    return None


def _refuse(why: str, what: str = "Direct logit attribution") -> NotAvailableError:
    return NotAvailableError(f"{what} is not available for this model: {why}")


def attention_outputs(spec: Any, what: str = "Direct logit attribution") -> tuple[list[nn.Module], int]:
    """(each block's attention output projection, n_heads): linear maps whose input is the heads' outputs side by
    side, ``spec.head_dim`` wide each, so that one head is an exact slice of it; NotAvailableError (naming ``what``)
    for a model where it is not (no head_dim, no linear projection found, a width that is not a multiple of
    head_dim, BLOOM's slow_but_exact projections that bypass the module)."""
    config = getattr(spec.model, "config", None)
    if getattr(config, "pretraining_tp", 1) > 1 and getattr(config, "slow_but_exact", False):
        raise _refuse("BLOOM's slow_but_exact tensor-parallel projections bypass the projection modules.", what)
    if not spec.head_dim:
        raise _refuse("its config names no head_dim and no number of heads; pass ew.ModelSpec(head_dim=...).", what)
    outs = []
    for layer in range(spec.n_layers):
        out = spec.attention_out(layer)
        if out is None or weight_out_in(out) is None:
            raise _refuse(f"block {layer} has no attention output projection that is a linear map; pass "
                          "ew.ModelSpec(attention_out=[...]) naming each block's (o_proj, c_proj, dense, ...).", what)
        width = weight_out_in(out).shape[1]
        if width % spec.head_dim:
            raise _refuse(f"block {layer}'s attention output projection reads {width} values, not a multiple of "
                          f"head_dim={spec.head_dim}; pass ew.ModelSpec(head_dim=...).", what)
        outs.append(out)
    return outs, int(weight_out_in(outs[0]).shape[1] // spec.head_dim)


def find_parts(spec: Any) -> Parts:
    """The parts DLA reads, found on ``spec`` (an adapter ResolvedSpec); NotAvailableError naming why a model cannot be
    decomposed exactly (post-norm blocks, mixtures of experts with a shared expert, a head that is not a chain of
    modules, ...). A Mixtral-style expert bank stands in for the block's down projection."""
    config = getattr(spec.model, "config", None)
    if spec.decode_fn is not None or spec.unembedding is None or weight_out_in(spec.unembedding) is None:
        raise _refuse("its head is not a linear unembedding after the final norm (a ModelSpec decode function).")
    if getattr(config, "do_layer_norm_before", True) is False:
        raise _refuse("it normalises after each residual addition (post-norm, e.g. OPT-350m), so the residual stream "
                      "is not a sum of the sublayers' outputs.")
    if getattr(config, "apply_residual_connection_post_layernorm", False):
        raise _refuse("its residual connections start after the layer norm (BLOOM's "
                      "apply_residual_connection_post_layernorm), so the stream is not a sum of the sublayers' outputs.")
    blocks = list(spec.blocks)
    experts = [_experts_of(b) for b in blocks]
    if any(e is None and any("expert" in n.lower() for n, _ in b.named_modules()) for e, b in zip(experts, blocks)):
        raise _refuse("it is a mixture of experts with a shared expert or an expert bank that is not Mixtral's "
                      "(gate_up_proj, down_proj, act_fn, routed by top-k weights); only that form is decomposed.")
    attn_out, n_heads = attention_outputs(spec)
    mlp_out, attn_post, mlp_post = [], [], []
    for layer in range(spec.n_layers):
        out, down = attn_out[layer], experts[layer] if experts[layer] is not None else spec.down_proj(layer)
        if down is None or (weight_out_in(down) is None and not is_experts(down)):
            raise _refuse(f"block {layer} has no MLP down projection that is a linear map; pass "
                          "ew.ModelSpec(down_proj=[...]).")
        posts = []
        for branch, projection in ((spec.attention_branch(layer), out), (spec.mlp_branch(layer), down)):
            post = None if branch is projection else branch
            if post is not None and norm_form(post) is None:
                raise _refuse(f"block {layer} adds its sublayer through {type(post).__name__}, a module that is not a "
                              "known norm (LayerNorm, RMSNorm, Gemma's (1 + weight) RMSNorm).")
            posts.append(post)
        mlp_out.append(down)
        attn_post.append(posts[0])
        mlp_post.append(posts[1])
    for module in spec.final_norms:
        if norm_form(module) is None and weight_out_in(module) is None:
            raise _refuse(f"its final {type(module).__name__} is neither a known norm nor a linear projection.")
    return Parts(attn_out, mlp_out, attn_post, mlp_post, list(spec.final_norms), spec.unembedding, blocks[0],
                 int(spec.head_dim), int(n_heads), spec.logit_softcap or None)


@dataclass
class ComponentRecorder:
    """A capture plug: build it before the forward (it finds the parts, refuses what it cannot decompose and checks
    the memory), pass it in ``capture(..., plugs=(recorder,))``, then ``finish()``: ``inputs[key]`` is each hooked
    module's input (n_tokens, width) in the model's dtype (keys of :meth:`Parts.hooked`); ``attention_calls[layer]``
    each attention module's call (its input and arguments), from which attention.py recomputes a head's pattern."""

    spec: Any
    n_tokens: int
    parts: Parts = field(init=False)
    inputs: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    attention_calls: dict[int, AttentionCall] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.parts = find_parts(self.spec)
        width = sum(m.down_proj.shape[1] if is_experts(m) else weight_out_in(m).shape[1]
                    for m in (*self.parts.attn_out, *self.parts.mlp_out))
        width += self.parts.n_layers * weight_out_in(self.parts.attn_out[0]).shape[0]  # the attention inputs
        itemsize = next(self.spec.model.parameters()).element_size()
        require(self.n_tokens * width * itemsize, f"Recording the components of {self.parts.n_layers} layers x "
                f"{self.n_tokens} tokens", "Analyse a shorter text, or analyze without components=True.", None)

    def register(self, handles: list) -> None:
        def keep(key: str):
            def hook(module, args, kwargs):
                x = args[0] if args else kwargs.get("hidden_states")
                self.inputs[key] = x.detach().reshape(-1, x.shape[-1])[-self.n_tokens:].clone()
                if is_experts(module):  # the router's choice: top_k_index, top_k_weights (n_tokens, k)
                    route = [*args[1:3], *(kwargs[k] for k in ("top_k_index", "top_k_weights") if k in kwargs)]
                    self.inputs[f"route.{key}"] = tuple(r.detach().reshape(-1, r.shape[-1]).clone() for r in route)
            return hook

        for key, module in self.parts.hooked().items():
            handles.append(module.register_forward_pre_hook(this_thread_only(keep(key)), with_kwargs=True))
        for layer, out in enumerate(self.parts.attn_out):  # each attention module's call (attention.py recomputes
            module = attention_module(self.spec.blocks[layer], out)  # a head's pattern from it)
            if module is not None:
                handles.append(module.register_forward_pre_hook(
                    this_thread_only(keep_call(self.attention_calls, layer, self.n_tokens)), with_kwargs=True))

    def finish(self) -> "ComponentRecorder":
        """Self, once every hook has fired (NotAvailableError naming the modules that did not run)."""
        missing = [k for k in self.parts.hooked() if k not in self.inputs]
        if missing:
            raise _refuse(f"the modules {missing[:4]} did not run as modules during the forward pass (a fused or "
                          "functional path), so their inputs could not be recorded.")
        return self
