"""The values a :class:`~.sites.Site` names, from what its module's input or output held (its transform applied:
:func:`apply`, :func:`values_of`), and the one pair of hooks that read and write a site in a forward:
:func:`read_site` hands a callback what the site held, :func:`write_site` replaces it. Every kind of site
(residual pre / mid / post, attention and MLP outputs, a transcoder's MLP input, a norm's input, ``hook_z``) is a
module's first input (a pre-hook) or its output's hidden state (a forward hook): :mod:`.sites` resolved which.

>>> import torch
>>> from types import SimpleNamespace
>>> from ecco_widgets.analysis.features.sites import Site
>>> apply(Site(module="m", transform="centre"), torch.tensor([[1.0, 3.0]])).tolist()
[[-1.0, 1.0]]
>>> spec, got = SimpleNamespace(modules={"m": torch.nn.Identity()}), []
>>> handle = read_site(spec, Site(module="m", transform="centre"), got.append)
>>> _ = spec.modules["m"](torch.tensor([[[1.0, 3.0]]]))
>>> handle.remove(); got[0].tolist()
[[[-1.0, 1.0]]]
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch

from ...capture import block_output, this_thread_only
from ...patch_hooks import replace_first
from ..components.norms import norm_form
from .sites import Site, value_bias


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


def values_of(spec: Any, site: Site) -> Callable[[torch.Tensor], torch.Tensor]:
    """raw (..., width), what the site's module held -> the site's values (..., site width), transformed (float32
    once a transform applies); the module and the value bias are looked up once."""
    module = spec.modules[site.module]
    bias = value_bias(spec, site.layer) if "value_bias" in site.transform else None

    def values(raw: torch.Tensor) -> torch.Tensor:
        rows = apply(site, raw.reshape(-1, raw.shape[-1]), module, bias)
        return rows.reshape(*raw.shape[:-1], rows.shape[-1])
    return values


def _first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def read_site(spec: Any, site: Site, take: Callable[[torch.Tensor], Any], raw: bool = False) -> Any:
    """Hooks the site's module (a pre-hook for an input site) so that every forward run by this thread calls
    ``take(values)``: the site's values, detached, as :func:`values_of` gives them; ``raw``: the module's tensor as it
    is (what several sites of one module share). ``take`` may end the forward
    (:func:`~ecco_widgets.capture.stop_forward`). Returns the hook's handle (``.remove()``)."""
    module = spec.modules[site.module]
    values = (lambda x: x) if raw else values_of(spec, site)

    if site.io == "input":
        def pre(mod: Any, args: tuple, kwargs: dict) -> None:
            take(values(_first_input(args, kwargs).detach()))
        return module.register_forward_pre_hook(this_thread_only(pre), with_kwargs=True)

    def post(mod: Any, args: tuple, output: Any) -> None:
        take(values(block_output(output).detach()))
    return module.register_forward_hook(this_thread_only(post))


def write_site(spec: Any, site: Site, how: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Hooks the site's module so that in every forward run by this thread its raw tensor v (the first input of an
    input site, the output's hidden state otherwise; not transformed, not detached) is replaced by ``how(v)``.
    Returns the hook's handle (``.remove()``)."""
    module = spec.modules[site.module]

    if site.io == "input":
        def pre(mod: Any, args: tuple, kwargs: dict) -> tuple:
            if args:
                return (how(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": how(kwargs["hidden_states"])}
        return module.register_forward_pre_hook(this_thread_only(pre), with_kwargs=True)

    def post(mod: Any, args: tuple, output: Any) -> Any:
        return replace_first(output, how(block_output(output)))
    return module.register_forward_hook(this_thread_only(post))
