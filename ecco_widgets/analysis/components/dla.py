"""Direct logit attribution over one recorded forward: the target's logit (or target - foil) at one position as a sum
of the embedding, every attention head (or layer), every MLP (or neuron) and the bias terms.

With the final norm's scale frozen at the real forward's value (and Gemma-2/3's post-sublayer norms at theirs), the
map from the residual stream to the logit is linear: ``logit = x_final · g + const``, where ``g`` is the unembedding
row (minus the foil's) pulled back through a *copy* of each final module's weight (norm weights folded in, LayerNorm's
centring applied to ``g``). The residual stream is the sum of block 0's input and what every attention and MLP adds,
so each term's share is its vector dotted with ``g``: a head's is its slice of the output projection's input times
that head's slice of the projection. Everything is accumulated in float32, whatever the model's dtype.

Soft-capped models (Gemma-2) are attributed before the cap: the model outputs ``tanh(logit / cap) * cap``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .norms import apply_frozen, freeze
from .record import Parts, is_experts, weight_out_in

UNITS = ("layer", "head", "neuron")


@dataclass
class DLAValues:
    """values float32 (n_components,) with labels ("embed", "3.attn", "3.h5", "3.mlp", "3.n17", "3.attn.bias",
    "3.mlp.bias", "final.bias"), kinds ("embed", "attn", "head", "mlp", "neuron", "bias"), layers (-1 for the embedding
    and the final bias) and indices (the head or neuron, else -1). logit: the model's own (pre-cap) logit (difference),
    from the unembedding's recorded input. attn_by_layer / mlp_by_layer: float32 (n_layers,), each sublayer's share
    with its bias terms. final_scale: the final norm's frozen scale at the position."""

    values: np.ndarray
    labels: list[str]
    kinds: list[str]
    layers: np.ndarray
    indices: np.ndarray
    logit: float
    embed: float
    final_bias: float
    attn_by_layer: np.ndarray
    mlp_by_layer: np.ndarray
    final_scale: float = 1.0
    extra: dict = field(default_factory=dict)


def _bias(module) -> torch.Tensor | None:
    bias = getattr(module, "bias", None)
    return bias.float() if isinstance(bias, torch.Tensor) else None


def readout(parts: Parts, inputs: dict[str, torch.Tensor], position: int, target: int,
            foil: int | None) -> tuple[torch.Tensor, float, float, float]:
    """(g float32 (d_model,), const, model_logit, final_scale): the logit (difference) at ``position`` is
    ``x_final · g + const`` with the final norm(s) frozen; model_logit is the unembedding row(s) dotted with the
    unembedding's recorded input (the model's own pre-cap logit)."""
    weight = weight_out_in(parts.unembedding)
    u = weight[target].float() - (weight[foil].float() if foil is not None else 0.0)
    bias = _bias(parts.unembedding)
    const = 0.0 if bias is None else float(bias[target] - (bias[foil] if foil is not None else 0.0))
    model_logit = float(inputs["unembed"][position].float() @ u) + const
    scale = 1.0
    for index in reversed(range(len(parts.final_chain))):
        module = parts.final_chain[index]
        matrix = weight_out_in(module)
        if matrix is not None:  # a projection (OPT's project_out): fold it
            b = _bias(module)
            const += 0.0 if b is None else float(u @ b)
            u = u @ matrix.float()
        else:
            u, c, scale = freeze(module, inputs[f"final.{index}"][position], u)
            const += c
    return u, const, model_logit, scale


def _experts(bank, x: torch.Tensor, route: tuple[torch.Tensor, torch.Tensor], g: torch.Tensor) -> tuple[
        torch.Tensor, list[int]]:
    """(shares float32 (k * F,), the k chosen experts) of a Mixtral-style bank at one position: each chosen expert's
    neurons, recomputed in float32 from the recorded input (act(gate) * up: the bank runs them inside one module),
    weighted by the router's recorded top-k weight, through that expert's down projection."""
    index, weights = route
    shares, chosen = [], []
    for expert, weight in zip(index.tolist(), weights.float()):
        if not 0 <= expert < bank.down_proj.shape[0]:
            continue  # a padding slot of the router (index = n_experts)
        gate, up = (bank.gate_up_proj[expert].float() @ x.float()).chunk(2)
        shares.append(weight * bank.act_fn(gate) * up * (g @ bank.down_proj[expert].float()))
        chosen.append(expert)
    return torch.cat(shares), chosen


def _sublayer(module, post, x: torch.Tensor, post_input: torch.Tensor | None,
              g: torch.Tensor, route: tuple | None = None) -> tuple[torch.Tensor, float]:
    """(per-unit shares float32 (width,), bias share) of one sublayer: input x (width,) of its output projection."""
    const = 0.0
    if post is not None:
        g, const, _ = freeze(post, post_input, g)
    if is_experts(module):
        return _experts(module, x, route, g)[0], const
    pulled = g @ weight_out_in(module).float()  # (width,): the projection's columns dotted with g
    b = _bias(module)
    return x.float() * pulled, const + (0.0 if b is None else float(b @ g))


def _neuron_labels(module, layer: int, n: int, route: tuple | None) -> tuple[list[str], list[int]]:
    """Labels and indices of a down projection's neurons ("3.n17"), or of the chosen experts' ("3.e5.n17", index
    expert * F + neuron)."""
    if not is_experts(module):
        return [f"{layer}.n{i}" for i in range(n)], list(range(n))
    width = module.down_proj.shape[2]
    chosen = [e for e in route[0].tolist() if 0 <= e < module.down_proj.shape[0]]
    return ([f"{layer}.e{e}.n{i}" for e in chosen for i in range(width)],
            [e * width + i for e in chosen for i in range(width)])


def direct_logit_attribution(parts: Parts, inputs: dict[str, torch.Tensor], position: int, target: int,
                             foil: int | None = None, unit: str = "layer") -> DLAValues:
    """The decomposition at ``position`` (0-based, in range) of logit(target) - logit(foil); unit "layer" (each
    attention and MLP whole), "head" (attention split by head) or "neuron" (MLPs split by neuron)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    values: list[torch.Tensor] = []
    labels: list[str] = []
    kinds: list[str] = []
    layers: list[int] = []
    indices: list[int] = []

    def add(vals: torch.Tensor, names: list[str], index: list[int], kind: str, layer: int) -> None:
        values.append(vals.reshape(-1).float())
        labels.extend(names)
        kinds.extend([kind] * len(names))
        layers.extend([layer] * len(names))
        indices.extend(index)

    with torch.no_grad():
        g, const, model_logit, scale = readout(parts, inputs, position, target, foil)
        embed = inputs["embed"][position].float() @ g
        add(embed, ["embed"], [-1], "embed", -1)
        attn_by_layer, mlp_by_layer = [], []
        for layer in range(parts.n_layers):
            for kind, out, post, totals in (("attn", parts.attn_out, parts.attn_post, attn_by_layer),
                                            ("mlp", parts.mlp_out, parts.mlp_post, mlp_by_layer)):
                post_module = post[layer]
                post_input = None if post_module is None else inputs[f"{kind}_post.{layer}"][position]
                route = inputs.get(f"route.{kind}.{layer}")
                route = None if route is None else tuple(r[position] for r in route)
                shares, bias = _sublayer(out[layer], post_module, inputs[f"{kind}.{layer}"][position], post_input, g,
                                         route)
                if kind == "attn" and unit == "head":
                    heads = shares.reshape(parts.n_heads, parts.head_dim).sum(-1)
                    add(heads, [f"{layer}.h{h}" for h in range(parts.n_heads)], list(range(parts.n_heads)), "head",
                        layer)
                elif kind == "mlp" and unit == "neuron":
                    add(shares, *_neuron_labels(out[layer], layer, shares.numel(), route), "neuron", layer)
                else:
                    add(shares.sum(), [f"{layer}.{kind}"], [-1], kind, layer)
                if bias:
                    add(torch.tensor(bias), [f"{layer}.{kind}.bias"], [-1], "bias", layer)
                totals.append(float(shares.sum()) + bias)
        if const:
            add(torch.tensor(const), ["final.bias"], [-1], "bias", -1)
    return DLAValues(values=torch.cat(values).cpu().numpy().astype(np.float32), labels=labels, kinds=kinds,
                     layers=np.asarray(layers, dtype=np.int32), indices=np.asarray(indices, dtype=np.int32),
                     logit=model_logit, embed=float(embed), final_bias=const,
                     attn_by_layer=np.asarray(attn_by_layer, dtype=np.float32),
                     mlp_by_layer=np.asarray(mlp_by_layer, dtype=np.float32), final_scale=scale)


def top_token(parts: Parts, inputs: dict[str, torch.Tensor], position: int) -> int:
    """The model's own top prediction at ``position`` (the unembedding of its recorded input; the cap is monotone)."""
    with torch.no_grad():
        weight = weight_out_in(parts.unembedding)
        logits = weight.float() @ inputs["unembed"][position].float()
        bias = _bias(parts.unembedding)
        return int(torch.argmax(logits if bias is None else logits + bias))


def to_logits(parts: Parts, inputs: dict[str, torch.Tensor], position: int, vectors: torch.Tensor) -> torch.Tensor:
    """float32 (n, vocab): residual-stream vectors (n, d_model) read as logits at ``position`` through the final
    norm(s) at their frozen scale and the unembedding, biases left out (what each vector adds to every logit)."""
    v = vectors.float()
    for index, module in enumerate(parts.final_chain):
        matrix = weight_out_in(module)
        v = v @ matrix.float().T if matrix is not None else apply_frozen(module, inputs[f"final.{index}"][position], v)
    return v @ weight_out_in(parts.unembedding).float().T


def promoted_tokens(parts: Parts, inputs: dict[str, torch.Tensor], position: int,
                    k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, values float32), both (n_layers, n_heads + 1, k): per layer each head's and (last column) the whole
    MLP's k most promoted tokens at ``position``: its output vector there (a head's slice of the output projection's
    input times its slice of the weight; the MLP's down projection's input times its weight, bias left out), through
    Gemma-2/3's post-norm at its frozen scale, then :func:`to_logits`, top-k over the vocabulary. A mixture of
    experts' MLP column is -1 / NaN (its output is a routed sum, not one projection)."""
    n_layers, n_heads, hd = parts.n_layers, parts.n_heads, parts.head_dim
    ids = np.full((n_layers, n_heads + 1, k), -1, np.int64)
    values = np.full((n_layers, n_heads + 1, k), np.nan, np.float32)
    with torch.no_grad():
        for layer in range(n_layers):
            weight = weight_out_in(parts.attn_out[layer]).float()  # (d_model, n_heads * head_dim)
            x = inputs[f"attn.{layer}"][position].float()
            heads = (weight.reshape(-1, n_heads, hd) * x.reshape(n_heads, hd)).sum(-1).T  # (n_heads, d_model)
            rows = [("attn", heads, parts.attn_post[layer], slice(0, n_heads))]
            if not is_experts(parts.mlp_out[layer]):
                down = weight_out_in(parts.mlp_out[layer]).float()
                mlp = (down @ inputs[f"mlp.{layer}"][position].float())[None]
                rows.append(("mlp", mlp, parts.mlp_post[layer], slice(n_heads, n_heads + 1)))
            for kind, vectors, post, columns in rows:
                if post is not None:
                    vectors = apply_frozen(post, inputs[f"{kind}_post.{layer}"][position], vectors)
                top = torch.topk(to_logits(parts, inputs, position, vectors), min(k, weight_out_in(
                    parts.unembedding).shape[0]), dim=-1)
                ids[layer, columns, :top.indices.shape[1]] = top.indices.cpu().numpy()
                values[layer, columns, :top.values.shape[1]] = top.values.cpu().numpy()
    return ids, values
