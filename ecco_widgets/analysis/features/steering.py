"""Steering: dictionary latents clamped to a value (or a decoder row added) at their site, in every forward that
runs while :func:`steering` is active (generation with its cache included: each step's new tokens).

``steer`` maps a dictionary (an ew.SAE, or an (SAE, site) pair as ``saes=`` takes them) to ``{latent: setting}``;
a setting is a number (clamp: the latent set to it) or ``("clamp", value)`` / ``("add", value)``. At each token:

- clamp: ``s' = s + decode(a') - decode(a)``, a = encode(x), a' = a with the latents set: the reconstruction with
  the clamped latents plus the error term, unchanged (SAELens' steering with its error term);
- add: ``s' = s + value * W_dec[latent]``, the decoder row as stored.

Everything is checked before any forward (:func:`plan`): the sites and widths on this model, the latents' range,
the values.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> sae = SAE(W_enc=torch.eye(8), W_dec=torch.eye(8), b_enc=torch.zeros(8), b_dec=torch.zeros(8))
>>> steps = plan(spec, {(sae, "blocks.0.hook_resid_post"): {3: 2.0, 5: ("add", -1.0)}})
>>> steps[0].settings, steps[0].describe()[0]["mode"]
({3: ('clamp', 2.0), 5: ('add', -1.0)}, 'clamp')
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ...errors import InputError
from .sae import SAE
from .splice import Placement, placements, spliced

MODES = ("clamp", "add")


@dataclass
class Steering:
    """One dictionary's placement and its settings {latent: (mode, value)}."""

    place: Placement
    settings: dict[int, tuple[str, float]]

    def describe(self) -> list[dict[str, Any]]:
        """JSON-able: [{"dictionary", "site", "feature", "mode", "value"}] (site: where it writes)."""
        return [{"dictionary": self.place.name, "site": self.place.write.describe(), "feature": j, "mode": m,
                 "value": v} for j, (m, v) in self.settings.items()]


def _setting(name: str, latent: Any, setting: Any, d_sae: int) -> tuple[int, tuple[str, float]]:
    if isinstance(latent, (bool, np.bool_)) or not isinstance(latent, (int, np.integer)):
        raise InputError(f"steer: the latents of {name!r} are integers (feature indices), got {latent!r}.")
    if not 0 <= int(latent) < d_sae:
        raise InputError(f"steer: feature {int(latent)} does not exist in {name!r}, which has {d_sae} latents "
                         f"(0..{d_sae - 1}).")
    mode, value = ("clamp", setting) if not isinstance(setting, (tuple, list)) else \
        (tuple(setting) if len(setting) == 2 else (None, None))
    if mode not in MODES:
        raise InputError(f"steer: feature {int(latent)} of {name!r} takes a number (clamped to it) or ('clamp', value) "
                         f"/ ('add', value); got {setting!r}.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not math.isfinite(float(value)):
        raise InputError(f"steer: the value of feature {int(latent)} of {name!r} must be a finite number, got "
                         f"{value!r}.")
    return int(latent), (mode, float(value))


def plan(spec: Any, steer: Any) -> list[Steering]:
    """``steer`` checked on this model (InputError before any forward): [Steering], one per dictionary."""
    if not isinstance(steer, dict):
        raise InputError(f"steer maps dictionaries to {{feature: value}}: steer={{sae: {{12: 5.0}}}}; got "
                         f"{type(steer).__name__}.")
    found = []
    for key, settings in steer.items():
        if not isinstance(key, SAE) and not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], SAE)):
            raise InputError(f"steer's keys are ew.SAE objects (or (SAE, site) pairs), got {type(key).__name__}.")
        place = placements(spec, [key], "Steering")[0]
        if not isinstance(settings, dict):
            raise InputError(f"steer[{place.name!r}] must be a dict {{feature: value}}, got {type(settings).__name__}.")
        parsed = dict(_setting(place.name, j, v, place.sae.d_sae) for j, v in settings.items())
        if parsed:
            found.append(Steering(place, parsed))
    return found


@contextmanager
def steering(spec: Any, steps: list[Steering]) -> Iterator[None]:
    """For the duration, each dictionary's site is steered as its settings say (nothing when ``steps`` is empty)."""

    def edit(i: int, x_in: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        step = steps[i]
        sae = step.place.sae
        clamp = {j: v for j, (m, v) in step.settings.items() if m == "clamp"}
        add = {j: v for j, (m, v) in step.settings.items() if m == "add"}
        out = s.float()
        if clamp:
            acts = sae.encode(x_in)
            changed = acts.clone()
            latents = torch.tensor(list(clamp), device=acts.device)
            changed[:, latents] = torch.tensor(list(clamp.values()), device=acts.device, dtype=acts.dtype)
            out = out + (sae.decode(changed, x_in=x_in).float() - sae.decode(acts, x_in=x_in).float())
        if add:
            rows = sae.W_dec[torch.tensor(list(add), device=sae.device)].float()
            out = out + torch.tensor(list(add.values()), device=rows.device) @ rows
        return out

    if not steps:
        yield
        return
    with spliced(spec, [step.place for step in steps], edit):
        yield
