"""The values a :class:`~.sites.Site` names, from what its module's input or output held: its transform applied.

>>> import torch
>>> from ecco_widgets.analysis.features.sites import Site
>>> apply(Site(module="m", transform="centre"), torch.tensor([[1.0, 3.0]])).tolist()
[[-1.0, 1.0]]
"""

from __future__ import annotations

import re
from typing import Any

import torch

from ..components.norms import norm_form
from .sites import Site


def apply(site: Site, x: torch.Tensor, module: Any = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A site's transform of the values read at its module (see :class:`~.sites.Site`); bias: the value bias."""
    if site.transform == "centre":
        x = x.float()
        return x - x.mean(dim=-1, keepdim=True)
    if site.transform == "normalized":
        form = norm_form(module)
        x = x.float()
        if form.centre:
            x = x - x.mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + form.eps)
    if "value_bias" in site.transform and bias is not None:
        x = x.float() - bias.to(x.device, torch.float32)
    head = re.search(r"head:(\d+)", site.transform)
    if head:
        width = site.width or x.shape[-1]
        return x[:, int(head.group(1)) * width:(int(head.group(1)) + 1) * width]
    return x
