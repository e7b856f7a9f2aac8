"""Direct logit attribution at many positions in one pass: the same decomposition as
:func:`~ecco_widgets.analysis.components.dla.direct_logit_attribution`, with each weight read once for a chunk of
positions (a (m, d_model) x (d_model, width) product per sublayer instead of m vector products), accumulated in
float32. Units "layer" and "head".

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.capture import capture
>>> from ecco_widgets.analysis.components import ComponentRecorder
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval())
>>> rec = ComponentRecorder(spec, n_tokens=3)
>>> _ = capture(spec, torch.tensor([[1, 2, 3]]), plugs=(rec,))
>>> found = positions_attribution(rec.finish().parts, rec.inputs, np.arange(3), np.array([4, 5, 6]))
>>> found.values.shape, found.labels[:3]
((3, 5), ['embed', '0.attn', '0.mlp'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .norms import freeze_rows
from .record import Parts, is_experts, weight_out_in

#: Positions per chunk: at most this many float32 values in one (positions x widest sublayer) array.
CHUNK_VALUES = 2**24


@dataclass
class PositionsDLA:
    """values float32 (n_positions, n_components) with labels / kinds / layers / indices as in DLAValues (a bias
    column only where some position's value is not 0); logit, embed, final_bias, final_scale float32 (n_positions,);
    attn_by_layer / mlp_by_layer float32 (n_positions, n_layers)."""

    values: np.ndarray
    labels: list[str]
    kinds: list[str]
    layers: np.ndarray
    indices: np.ndarray
    logit: np.ndarray
    embed: np.ndarray
    final_bias: np.ndarray
    final_scale: np.ndarray
    attn_by_layer: np.ndarray
    mlp_by_layer: np.ndarray


def _bias(module) -> torch.Tensor | None:
    bias = getattr(module, "bias", None)
    return bias.float() if isinstance(bias, torch.Tensor) else None


def readout_rows(parts: Parts, inputs: dict[str, torch.Tensor], pos: torch.Tensor, targets: torch.Tensor,
             foils: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g (m, d_model), const (m,), model_logit (m,), final_scale (m,)): dla.readout for m positions (foils: None, or
    a foil per position, -1 where that position has none). Reads only ``parts.final_chain`` and ``parts.unembedding``,
    and ``inputs`` "final.{i}" and "unembed" (rows: positions)."""
    weight = weight_out_in(parts.unembedding)
    has_foil = None if foils is None else (foils >= 0)
    u = weight[targets].float()
    if foils is not None:
        u = u - weight[foils.clamp(min=0)].float() * has_foil[:, None]
    bias = _bias(parts.unembedding)
    const = torch.zeros(len(pos), device=u.device)
    if bias is not None:
        const = const + bias[targets] - (bias[foils.clamp(min=0)] * has_foil if foils is not None else 0.0)
    model_logit = (inputs["unembed"][pos].float() * u).sum(-1) + const
    scale = torch.ones(len(pos), device=u.device)
    for index in reversed(range(len(parts.final_chain))):
        module = parts.final_chain[index]
        matrix = weight_out_in(module)
        if matrix is not None:  # a projection (OPT's project_out): fold it
            b = _bias(module)
            const = const if b is None else const + u @ b
            u = u @ matrix.float()
        else:
            u, c, scale = freeze_rows(module, inputs[f"final.{index}"][pos], u)
            const = const + c
    return u, const, model_logit, scale


def _experts(bank, x: torch.Tensor, route: tuple[torch.Tensor, torch.Tensor], g: torch.Tensor) -> torch.Tensor:
    """float32 (m,): a Mixtral-style bank's share at m positions, each expert's weights read once for the positions
    routed to it (its neurons recomputed from the recorded input, times the router weight, through its down
    projection)."""
    index, weights = route
    total = torch.zeros(len(x), device=x.device)
    for expert in range(bank.down_proj.shape[0]):
        rows, slots = torch.nonzero(index == expert, as_tuple=True)
        if not len(rows):
            continue
        gate, up = (x[rows].float() @ bank.gate_up_proj[expert].float().T).chunk(2, dim=-1)
        pulled = g[rows] @ bank.down_proj[expert].float()  # (r, F)
        share = (weights[rows, slots].float()[:, None] * bank.act_fn(gate) * up * pulled).sum(-1)
        total = total.index_add(0, rows, share)
    return total


def _chunk(parts: Parts, inputs: dict[str, torch.Tensor], pos: torch.Tensor, targets: torch.Tensor,
           foils: torch.Tensor | None, unit: str) -> tuple[list[tuple[str, str, int, int, torch.Tensor]], dict]:
    """Every column [(label, kind, layer, index, values (m,))] and the per-position totals of one chunk."""
    columns: list[tuple[str, str, int, int, torch.Tensor]] = []
    g, const, model_logit, scale = readout_rows(parts, inputs, pos, targets, foils)
    embed = (inputs["embed"][pos].float() * g).sum(-1)
    columns.append(("embed", "embed", -1, -1, embed))
    totals: dict[str, list[torch.Tensor]] = {"attn": [], "mlp": []}
    for layer in range(parts.n_layers):
        for kind, out, post in (("attn", parts.attn_out, parts.attn_post), ("mlp", parts.mlp_out, parts.mlp_post)):
            module, gl, bias = out[layer], g, torch.zeros_like(const)
            if post[layer] is not None:
                gl, bias, _ = freeze_rows(post[layer], inputs[f"{kind}_post.{layer}"][pos], g)
            x = inputs[f"{kind}.{layer}"][pos].float()
            if is_experts(module):
                route = tuple(r[pos] for r in inputs[f"route.{kind}.{layer}"])
                whole = _experts(module, x, route, gl)
                columns.append((f"{layer}.{kind}", kind, layer, -1, whole))
            else:
                shares = x * (gl @ weight_out_in(module).float())  # (m, width): the weight read once
                b = _bias(module)
                bias = bias if b is None else bias + gl @ b
                whole = shares.sum(-1)
                if kind == "attn" and unit == "head":
                    heads = shares.reshape(len(pos), parts.n_heads, parts.head_dim).sum(-1)
                    columns += [(f"{layer}.h{h}", "head", layer, h, heads[:, h]) for h in range(parts.n_heads)]
                else:
                    columns.append((f"{layer}.{kind}", kind, layer, -1, whole))
            columns.append((f"{layer}.{kind}.bias", "bias", layer, -1, bias))
            totals[kind].append(whole + bias)
    columns.append(("final.bias", "bias", -1, -1, const))
    extra = {"logit": model_logit, "embed": embed, "final_bias": const, "final_scale": scale,
             "attn_by_layer": torch.stack(totals["attn"], -1), "mlp_by_layer": torch.stack(totals["mlp"], -1)}
    return columns, extra


def positions_attribution(parts: Parts, inputs: dict[str, torch.Tensor], positions: np.ndarray, targets: np.ndarray,
                          foils: np.ndarray | None = None, unit: str = "layer") -> PositionsDLA:
    """The decomposition of logit(targets[i]) - logit(foils[i]) at each of ``positions`` (int (n,), 0-based, in
    range), unit "layer" or "head", in chunks of positions (bounded memory: CHUNK_VALUES)."""
    if unit not in ("layer", "head"):
        raise ValueError(f"unit must be 'layer' or 'head', got {unit!r}")
    widths = [m.down_proj.shape[1] if is_experts(m) else weight_out_in(m).shape[1]
              for m in (*parts.attn_out, *parts.mlp_out)]
    step = max(1, CHUNK_VALUES // max(widths + [weight_out_in(parts.unembedding).shape[1]]))
    device = inputs["embed"].device
    chunks, extras = [], []
    with torch.no_grad():
        for start in range(0, len(positions), step):
            part = slice(start, start + step)
            pos = torch.as_tensor(np.asarray(positions[part], np.int64), device=device)
            t = torch.as_tensor(np.asarray(targets[part], np.int64), device=device)
            f = None if foils is None else torch.as_tensor(np.asarray(foils[part], np.int64), device=device)
            columns, extra = _chunk(parts, inputs, pos, t, f, unit)
            chunks.append(torch.stack([c[-1] for c in columns], -1).cpu())
            extras.append({k: v.cpu() for k, v in extra.items()})
    values = torch.cat(chunks).numpy().astype(np.float32)
    keep = [i for i, c in enumerate(columns) if c[1] != "bias" or np.any(values[:, i] != 0)]
    joined = {k: torch.cat([e[k] for e in extras]).numpy().astype(np.float32) for k in extras[0]}
    return PositionsDLA(values=np.ascontiguousarray(values[:, keep]), labels=[columns[i][0] for i in keep],
                        kinds=[columns[i][1] for i in keep],
                        layers=np.array([columns[i][2] for i in keep], np.int32),
                        indices=np.array([columns[i][3] for i in keep], np.int32), **joined)
