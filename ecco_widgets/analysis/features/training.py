"""The training math of a sparse autoencoder on rows of activations: TopK, BatchTopK and JumpReLU.

- Inputs are scaled so that their mean squared norm is ``d_in`` (the scale is folded into the weights at the end, so
  the saved dictionary reads raw activations; SAELens' ``expected_average_only_in`` idea, folded).
- Decoder rows are kept at unit norm: the gradient's component along each row is removed before the step, the rows
  renormalised after it (Gao et al. 2024). The encoder starts as the decoder's transpose; the decoder bias at the
  geometric median of a sample of the data (Weiszfeld's iteration).
- ``topk``: each row keeps its k largest pre-activations (relu'd). ``batchtopk``: a batch of B rows keeps its
  B * k largest; saved as a JumpReLU with one threshold (the running mean of the smallest kept activation), as
  SAELens saves BatchTopK. ``jumprelu``: relu(pre) where pre > threshold, trained with straight-through estimators
  of the threshold's gradient (a rectangle kernel of width ``bandwidth``) and an L0 penalty (Rajamanoharan et al.
  2024).
- Dead latents (no activation over the last ``dead_after`` rows) are revived by the auxiliary-k loss: the top
  ``aux_k`` dead latents reconstruct the main reconstruction's error, weighted by ``aux_coefficient``.

>>> import torch
>>> state = init_state(torch.randn(256, 8), width=16, kind="topk", seed=0)
>>> step = train_step(state, torch.randn(32, 8), TrainSettings(kind="topk", k=2), torch.optim.Adam(state.params()))
>>> sorted(step), state.W_dec.norm(dim=1).allclose(torch.ones(16))
(['aux', 'dead', 'l0', 'mse'], True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

KINDS = ("topk", "batchtopk", "jumprelu")


@dataclass
class TrainSettings:
    """What a training run does (kept in the saved cfg.json's metadata)."""

    kind: str = "topk"
    k: int = 32
    batch_size: int = 1024
    lr: float = 1e-3
    aux_k: int | None = None  # None: d_in // 2
    aux_coefficient: float = 1 / 32
    dead_after: int = 200_000  # rows without an activation after which a latent counts as dead
    l0_coefficient: float = 1e-3  # jumprelu
    bandwidth: float = 1e-3  # jumprelu's straight-through kernel width
    initial_threshold: float = 1e-3  # jumprelu
    threshold_momentum: float = 0.99  # batchtopk's running threshold
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """The weights being trained (in the scaled input space) and the counters a checkpoint keeps."""

    W_enc: torch.Tensor  # (d_in, d_sae)
    W_dec: torch.Tensor  # (d_sae, d_in), unit rows
    b_enc: torch.Tensor  # (d_sae,)
    b_dec: torch.Tensor  # (d_in,)
    log_threshold: torch.Tensor  # (d_sae,), jumprelu
    since_fired: torch.Tensor  # (d_sae,) rows since each latent last fired
    threshold: torch.Tensor  # () batchtopk's running threshold (-1 until the first step)
    scale: float  # inputs are multiplied by it
    step: int = 0

    def params(self) -> list[torch.Tensor]:
        return [self.W_enc, self.W_dec, self.b_enc, self.b_dec, self.log_threshold]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"W_enc": self.W_enc, "W_dec": self.W_dec, "b_enc": self.b_enc, "b_dec": self.b_dec,
                "log_threshold": self.log_threshold, "since_fired": self.since_fired, "threshold": self.threshold}


def geometric_median(x: torch.Tensor, iterations: int = 30, eps: float = 1e-6) -> torch.Tensor:
    """The point minimising the sum of distances to the rows of x (d,), by Weiszfeld's iteration from the mean."""
    point = x.mean(0)
    for _ in range(iterations):
        weights = 1.0 / (x - point).norm(dim=1).clamp_min(eps)
        point = (weights[:, None] * x).sum(0) / weights.sum()
    return point


def init_state(sample: torch.Tensor, width: int, kind: str, seed: int = 0,
               initial_threshold: float = 1e-3) -> TrainState:
    """Weights for a dictionary of ``width`` latents over rows like ``sample`` (n, d_in), float32."""
    sample = sample.float()
    scale = math.sqrt(sample.shape[1] / float(sample.pow(2).sum(1).mean().clamp_min(1e-12)))
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(width, sample.shape[1], generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    state = TrainState(W_enc=W_dec.T.clone().contiguous(), W_dec=W_dec, b_enc=torch.zeros(width),
                       b_dec=geometric_median(sample[:16384] * scale),
                       log_threshold=torch.full((width,), math.log(initial_threshold)),
                       since_fired=torch.zeros(width, dtype=torch.long), threshold=torch.tensor(-1.0), scale=scale)
    for p in state.params():
        p.requires_grad_(True)
    return state


class _JumpReLU(torch.autograd.Function):
    """pre * 1[pre > t]; d/dt by the rectangle kernel: -(t / eps) K((pre - t) / eps)."""

    @staticmethod
    def forward(ctx, pre, log_t, eps):
        t = log_t.exp()
        ctx.save_for_backward(pre, t)
        ctx.eps = eps
        return pre * (pre > t)

    @staticmethod
    def backward(ctx, grad):
        pre, t = ctx.saved_tensors
        window = ((pre - t).abs() < ctx.eps / 2).to(grad.dtype)
        d_t = (-(t / ctx.eps) * window * grad).sum(0)
        return grad * (pre > t), d_t * t, None  # d/dlog_t = d/dt * t


class _Step(torch.autograd.Function):
    """1[pre > t], counted by the L0 penalty; d/dt by the rectangle kernel: -(1 / eps) K((pre - t) / eps)."""

    @staticmethod
    def forward(ctx, pre, log_t, eps):
        t = log_t.exp()
        ctx.save_for_backward(pre, t)
        ctx.eps = eps
        return (pre > t).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, t = ctx.saved_tensors
        window = ((pre - t).abs() < ctx.eps / 2).to(grad.dtype)
        return None, (-(1.0 / ctx.eps) * window * grad).sum(0) * t, None


def encode(state: TrainState, x: torch.Tensor, settings: TrainSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(acts (B, d_sae), pre-activations (B, d_sae)) of scaled rows x (B, d_in) as the kind trains them."""
    pre = (x - state.b_dec) @ state.W_enc + state.b_enc
    if settings.kind == "topk":
        values, index = pre.topk(settings.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, index, values.relu()), pre
    if settings.kind == "batchtopk":
        flat = pre.relu().flatten()
        keep = flat.topk(min(settings.k * len(x), flat.numel())).indices
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter(0, keep, True).view_as(pre)
        return pre.relu() * mask, pre
    return _JumpReLU.apply(pre.relu(), state.log_threshold, settings.bandwidth), pre


def train_step(state: TrainState, x: torch.Tensor, settings: TrainSettings, optimizer: torch.optim.Optimizer
               ) -> dict[str, float]:
    """One Adam step on scaled rows x (B, d_in); returns the batch's mse (normalised by the rows' variance), l0,
    aux loss and dead fraction."""
    acts, pre = encode(state, x, settings)
    recon = acts @ state.W_dec + state.b_dec
    error = x - recon
    variance = (x - x.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12)
    mse = error.pow(2).sum(-1).mean() / variance
    fired = (acts > 0).any(0)
    with torch.no_grad():
        state.since_fired += len(x)
        state.since_fired[fired] = 0
    dead = state.since_fired >= settings.dead_after
    loss = mse
    aux = torch.zeros(())
    if int(dead.sum()) > 0:
        aux_k = min(settings.aux_k or x.shape[1] // 2, int(dead.sum()))
        dead_pre = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
        values, index = dead_pre.topk(aux_k, dim=-1)
        aux_acts = torch.zeros_like(pre).scatter(-1, index, values.relu())
        residual = error.detach()
        aux = (aux_acts @ state.W_dec - residual).pow(2).sum(-1).mean() / \
            residual.pow(2).sum(-1).mean().clamp_min(1e-12)
        loss = loss + settings.aux_coefficient * aux
    if settings.kind == "jumprelu":
        loss = loss + settings.l0_coefficient * _Step.apply(pre.relu(), state.log_threshold,
                                                            settings.bandwidth).sum(-1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():  # no change of the decoder rows' norms: drop the gradient along each row
        rows = state.W_dec
        rows.grad -= (rows.grad * rows).sum(1, keepdim=True) * rows
    optimizer.step()
    with torch.no_grad():
        state.W_dec /= state.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if settings.kind == "batchtopk":
            kept = acts[acts > 0]
            smallest = kept.min() if kept.numel() else torch.tensor(0.0)
            m = settings.threshold_momentum
            state.threshold.copy_(smallest if state.threshold < 0 else m * state.threshold + (1 - m) * smallest)
    state.step += 1
    return {"mse": float(mse.detach()), "l0": float((acts > 0).sum(-1).float().mean()), "aux": float(aux.detach()),
            "dead": float(dead.float().mean())}


def folded(state: TrainState, settings: TrainSettings) -> dict[str, torch.Tensor]:
    """The trained weights for raw (unscaled) inputs, as a SAELens file holds them: the scale s folded in so that
    acts are unchanged (W_enc * s, b_dec / s, W_dec / s); BatchTopK as JumpReLU with its running threshold."""
    s = state.scale
    out = {"W_enc": (state.W_enc * s).detach().clone(), "W_dec": (state.W_dec / s).detach().clone(),
           "b_enc": state.b_enc.detach().clone(), "b_dec": (state.b_dec / s).detach().clone()}
    if settings.kind == "jumprelu":
        out["threshold"] = state.log_threshold.detach().exp().clone()
    if settings.kind == "batchtopk":
        out["threshold"] = torch.full_like(state.b_enc, max(float(state.threshold), 0.0)).detach()
    return {k: v.float().contiguous() for k, v in out.items()}


__all__ = ["KINDS", "TrainSettings", "TrainState", "encode", "folded", "geometric_median", "init_state",
           "train_step"]
