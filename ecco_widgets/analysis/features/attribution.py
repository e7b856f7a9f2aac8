"""Feature attribution: the effect of every active latent of a dictionary on an explained token, as activation x
gradient with the dictionary spliced in at its site.

The site's value s is replaced by ``decode(a) + e``: a the active latents' values (a leaf), e = s - decode(a) the
error term, held constant (a leaf too, so its gradient is the site's). One forward over the text, then one batched
vector-Jacobian product per chunk of targets (as the attribution engine's gradient): for target t,

- ``attributions[t, p, j] = a[p, j] * d f_t / d a[p, j]`` (latent j active at token p),
- ``error[t, p] = e[p] . d f_t / d s[p]``, the error term's share,
- ``rest[t, p] = decode(a)[p] . d f_t / d s[p] - sum_j attributions[t, p, j]``: the decoder bias's share (with a skip
  connection's and a normalisation's offset);

so that the three add up to ``s . d f_t / d s`` at each token. For a readout that is linear in s this is exactly
the effect of removing each latent (its value set to 0, the error kept).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> sae = SAE(W_enc=torch.eye(8), W_dec=torch.eye(8), b_enc=torch.zeros(8), b_dec=torch.zeros(8))
>>> place = placements(spec, [(sae, "blocks.0.hook_mlp_out")])[0]
>>> found = attribute_features(spec, place, torch.tensor([[1, 2, 3, 4]]), np.array([3]), target="logit")
>>> found["attributions"].shape[:2], found["error"].shape, found["indices"].shape == found["attributions"].shape[1:]
((1, 4), (1, 4), True)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ...capture import forward_until
from ...errors import InputError
from ..attribution.engine import BACKWARD_BUDGET_BYTES, GRAPH_FLOATS_PER_DIM, frozen_model
from ..attribution.targets import TARGETS, decoded_scalar
from .splice import Placement, active, decode_sparse, placements, spliced

__all__ = ["attribute_features", "placements"]


def _vjp(h: torch.Tensor, leaves: list[torch.Tensor], seeds: torch.Tensor, retain: bool) -> list[torch.Tensor]:
    """Gradients of h into each leaf for each seed (k, *h.shape): one batched backward (``is_grads_batched``), or
    one backward per seed where an op has no batching rule."""
    if len(seeds) > 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # vmap fallbacks: slower, still correct
                return list(torch.autograd.grad(h, leaves, seeds, retain_graph=True, is_grads_batched=True))
        except RuntimeError:
            pass
    grads = [torch.autograd.grad(h, leaves, seed, retain_graph=retain or i + 1 < len(seeds))
             for i, seed in enumerate(seeds)]
    return [torch.stack([g[i] for g in grads]) for i in range(len(leaves))]


def attribute_features(spec: Any, place: Placement, input_ids: torch.Tensor, positions: np.ndarray,
                       target: str = "logit", foil_ids: np.ndarray | None = None) -> dict[str, Any]:
    """Attributions of the tokens at ``positions`` (each predicted at position - 1) to the latents of
    ``place.sae`` active on ``input_ids`` (1, n_tokens).

    Returns indices int32 (n, k) padded with -1 and activations float32 (n, k) (tokens after the last target's
    prefix: -1 / 0), attributions float32 (T, n, k), error / rest float32 (T, n), values float32 (T,): the
    explained value of each target.
    """
    if target not in TARGETS:
        raise InputError(f"target must be one of {', '.join(map(repr, TARGETS))}, got {target!r}.")
    if place.write.layer is None or not 0 <= place.write.layer < spec.n_layers:
        raise InputError(f"Feature attribution differentiates the last block's output: {place.name!r} writes "
                         f"{place.write.describe()}, outside the blocks. Place it at a site of a block.")
    positions = np.asarray(positions, dtype=np.int64)
    n = int(input_ids.shape[-1])
    length = int(positions.max())
    device = input_ids.device
    rows = torch.as_tensor(positions - 1, device=device)
    token_ids = input_ids[0, torch.as_tensor(positions, device=device)]
    foils = None if foil_ids is None or not (np.asarray(foil_ids) >= 0).any() else \
        torch.as_tensor(np.asarray(foil_ids, dtype=np.int64), device=device)
    weight = getattr(spec.unembedding, "weight", None)
    vocab = int(weight.shape[0]) if weight is not None else 1 << 16
    leaves: dict[str, torch.Tensor] = {}

    def edit(i: int, x_in: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if "values" in leaves:
            raise InputError(f"{place.write.describe()} ran twice in one forward: it cannot be spliced once.")
        indices, values = active(place.sae, x_in)
        values = values.float().requires_grad_(True)
        recon = decode_sparse(place.sae, values, indices, x_in)
        error = (s.detach().float() - recon.detach().float()).requires_grad_(True)
        leaves.update(indices=indices, values=values, recon=recon.detach().float(), error=error)
        return recon.float() + error

    with frozen_model(spec.model), torch.enable_grad(), spliced(spec, [place], edit):
        h = forward_until(spec.blocks[-1], spec.model, input_ids=input_ids[:, :length], use_cache=False)
        h_rows = h[:, rows]
        if "values" not in leaves:
            raise InputError(f"{place.write.describe()} did not run during the forward pass; pass another site.")
        head_in = h_rows.detach().requires_grad_(True)
        explained = decoded_scalar(spec.decode, head_in, token_ids, target, foils, vocab)  # (1, T)
        (grad_rows,) = torch.autograd.grad(explained.sum(), head_in)
        values, error = leaves["values"], leaves["error"]
        T = len(positions)
        grads_v = torch.zeros(T, *values.shape, dtype=torch.float32, device=device)
        grads_s = torch.zeros(T, *error.shape, dtype=torch.float32, device=device)
        per_token = GRAPH_FLOATS_PER_DIM * int(h.shape[-1]) * h.element_size()
        per_chunk = max(1, min(T, BACKWARD_BUDGET_BYTES // per_token // max(1, length)))
        for t0 in range(0, T, per_chunk):
            idx = torch.arange(t0, min(T, t0 + per_chunk), device=device)
            seeds = h_rows.new_zeros(len(idx), *h_rows.shape)
            seeds[torch.arange(len(idx)), :, idx] = grad_rows[:, idx].transpose(0, 1).to(h_rows.dtype)
            retain = t0 + len(idx) < T
            gv, gs = _vjp(h_rows, [values, error], seeds, retain)
            grads_v[idx], grads_s[idx] = gv.float(), gs.float()
    attributions = values.detach()[None] * grads_v
    error_share = (error.detach()[None] * grads_s).sum(-1)
    rest = (leaves["recon"][None] * grads_s).sum(-1) - attributions.sum(-1)
    indices = leaves["indices"]
    pad = n - indices.shape[0]
    as_np = (lambda x, fill: np.pad(x.cpu().numpy(), [(0, 0)] * (x.dim() - 2) + [(0, pad), (0, 0)],
                                    constant_values=fill))
    live = indices >= 0
    return {"indices": as_np(indices.to(torch.int32), -1).astype(np.int32),
            "activations": as_np(torch.where(live, values.detach(), 0.0)[None], 0.0)[0].astype(np.float32),
            "attributions": as_np(torch.where(live[None], attributions, 0.0), 0.0).astype(np.float32),
            "error": np.pad(error_share.cpu().numpy(), [(0, 0), (0, pad)]).astype(np.float32),
            "rest": np.pad(rest.cpu().numpy(), [(0, 0), (0, pad)]).astype(np.float32),
            "values": explained.detach()[0].float().cpu().numpy().astype(np.float32)}
