"""Norms at a frozen scale: with the scale of the real forward held fixed, a norm is a linear map (plus a bias), so
a sum of components goes through it term by term.

Forms: LayerNorm (centred, weight, bias), RMSNorm (weight), Gemma's RMSNorm (``1 + weight``).

>>> import torch
>>> norm = torch.nn.LayerNorm(4)
>>> x, u = torch.randn(4), torch.randn(4)
>>> g, const, scale = freeze(norm, x, u)
>>> bool(torch.allclose(norm(x) @ u, x @ g + const, atol=1e-5))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NormForm:
    centre: bool
    offset: float  # Gemma's RMSNorm multiplies by (1 + weight)
    eps: float


def norm_form(module: nn.Module) -> NormForm | None:
    """The form of a known norm module, None for anything else."""
    name = type(module).__name__
    if isinstance(module, nn.LayerNorm):
        return NormForm(True, 0.0, float(module.eps))
    if "rmsnorm" in name.lower():
        eps = getattr(module, "variance_epsilon", None)
        eps = getattr(module, "eps", None) if eps is None else eps
        if eps is None:
            return None
        return NormForm(False, 1.0 if name.startswith("Gemma") else 0.0, float(eps))
    return None


def freeze(module: nn.Module, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """``u · norm(v)`` as ``v · g + const`` for the norm's scale at input ``x`` (d_model,): returns (g float32,
    const, scale), all in float32."""
    form = norm_form(module)
    if form is None:
        raise ValueError(f"{type(module).__name__} is not a known norm.")
    x = x.float()
    centred = x - x.mean() if form.centre else x
    scale = torch.rsqrt(centred.pow(2).mean() + form.eps)
    weight = getattr(module, "weight", None)
    g = u.float() * scale
    if weight is not None:
        g = g * (weight.detach().float() + form.offset)
    if form.centre:
        g = g - g.mean()
    bias = getattr(module, "bias", None)
    const = float(u.float() @ bias.detach().float()) if isinstance(bias, torch.Tensor) else 0.0
    return g, const, float(scale)


def apply_frozen(module: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The norm's linear part at the scale of input ``x`` (d_model,) applied to vectors ``v`` (..., d_model), bias left
    out (a constant, not a share of any one vector): centred (LayerNorm), times the scale and the weight (Gemma's
    ``1 + weight``). float32. The forward counterpart of :func:`freeze`: ``apply_frozen(m, x, v) @ u == v @ g``."""
    return apply_frozen_rows(module, x.reshape(1, -1), v.unsqueeze(-2)).squeeze(-2)


def freeze_rows(module: nn.Module, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`freeze` for many positions at once: inputs ``x`` and readouts ``u`` (m, d_model) give (g float32
    (m, d_model), const float32 (m,), scale float32 (m,)), row i equal to ``freeze(module, x[i], u[i])``."""
    form = norm_form(module)
    if form is None:
        raise ValueError(f"{type(module).__name__} is not a known norm.")
    x, u = x.float(), u.float()
    centred = x - x.mean(-1, keepdim=True) if form.centre else x
    scale = torch.rsqrt(centred.pow(2).mean(-1) + form.eps)
    g = u * scale[:, None]
    weight = getattr(module, "weight", None)
    if weight is not None:
        g = g * (weight.detach().float() + form.offset)
    if form.centre:
        g = g - g.mean(-1, keepdim=True)
    bias = getattr(module, "bias", None)
    const = u @ bias.detach().float() if isinstance(bias, torch.Tensor) else torch.zeros(len(u), device=u.device)
    return g, const, scale


def apply_frozen_rows(module: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """:func:`apply_frozen` row by row: inputs ``x`` (m, d_model) and vectors ``v`` (..., m, d_model), row i of v
    through the norm frozen at the scale of x[i]; bias left out. float32 (..., m, d_model)."""
    form = norm_form(module)
    if form is None:
        raise ValueError(f"{type(module).__name__} is not a known norm.")
    x, v = x.float(), v.float()
    centred = x - x.mean(-1, keepdim=True) if form.centre else x
    scale = torch.rsqrt(centred.pow(2).mean(-1) + form.eps)  # (m,)
    v = (v - v.mean(-1, keepdim=True) if form.centre else v) * scale[:, None]
    weight = getattr(module, "weight", None)
    return v * (weight.detach().float() + form.offset) if weight is not None else v
