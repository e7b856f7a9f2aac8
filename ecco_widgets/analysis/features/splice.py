"""A dictionary spliced into the model at its site: hooks that replace what the site holds by an edited value, used
by feature attribution (the reconstruction from differentiable latents plus the error held constant) and by steering
(a latent clamped, or a decoder row added).

The site is read as the feature recorder reads it (:mod:`.site_values`: centred, a head's slice, minus the value
bias); the edit is written back as a difference: ``raw + embed(s' - s)`` (a head's difference goes to its slice).
Centring is not undone: every reader of a LayerNorm model's residual centres it again, as TransformerLens'
centred weights do. A transcoder reads its input site and writes its output site; an SAE reads and writes one site.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> sae = SAE(W_enc=torch.eye(8), W_dec=torch.eye(8), b_enc=torch.zeros(8), b_dec=torch.zeros(8))
>>> [p.write.module for p in placements(spec, [(sae, "blocks.1.hook_mlp_out")])]
['transformer.h.1.mlp.c_proj']
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ...errors import InputError
from .record import FeatureRecorder
from .sae import SAE
from .site_values import read_site, values_of, write_site
from .sites import Site

#: edit(index of the placement, x_in (rows, d_in), s (rows, d_out)) -> the site's new value (rows, d_out)
Edit = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Placement:
    """One dictionary on one model: ``read`` (where it encodes) and ``write`` (where its reconstruction goes: the
    read site for an SAE, the output site for a transcoder)."""

    name: str
    sae: SAE
    read: Site
    write: Site

    @property
    def transcoder(self) -> bool:
        return (self.write.module, self.write.io, self.write.transform) != \
            (self.read.module, self.read.io, self.read.transform)


def placements(spec: Any, saes: Any, what: str = "Splicing a dictionary") -> list[Placement]:
    """The placements of ``saes`` (as ``lm.analyze(saes=...)`` takes them), sites and widths checked (InputError)
    before any forward. A site read through a norm's formula (``ln2.hook_normalized``) cannot be written back."""
    recorder = FeatureRecorder(spec, saes, 1, check=False)
    found = []
    for item in recorder.items:
        write = item["out"] or item["read"]
        if write.transform == "normalized":
            raise InputError(f"{what}: {item['name']!r} writes {write.describe()}, which is computed from its module's "
                             "input and cannot be written back; place the dictionary at the norm's output "
                             "(blocks.L.mlp.hook_in) or at a residual site.")
        found.append(Placement(item["name"], item["sae"], item["read"], write))
    return found


def embed(site: Site, delta: torch.Tensor, width: int) -> torch.Tensor:
    """A difference in the site's space (rows, site width) as a difference of the module's tensor (rows, width)."""
    head = re.search(r"head:(\d+)", site.transform)
    if not head:
        return delta
    size = delta.shape[-1]
    start = int(head.group(1)) * size
    return torch.nn.functional.pad(delta, (start, width - start - size))


@contextmanager
def spliced(spec: Any, items: list[Placement], edit: Edit) -> Iterator[None]:
    """For the duration, each placement's write site holds ``edit(i, x_in, s)`` instead of s (what it held), in every
    forward run by this thread; hooks removed on exit."""
    handles: list = []
    inputs: dict[int, torch.Tensor] = {}

    def keep(i: int) -> Callable[[torch.Tensor], None]:
        def take(values: torch.Tensor) -> None:
            inputs[i] = values.reshape(-1, values.shape[-1])
        return take

    def writer(i: int, place: Placement) -> Callable[[torch.Tensor], torch.Tensor]:
        site, values = place.write, values_of(spec, place.write)

        def new(raw: torch.Tensor) -> torch.Tensor:
            rows = raw.reshape(-1, raw.shape[-1])
            s = values(rows)
            x_in = inputs.pop(i, None) if place.transcoder else s
            if x_in is None or x_in.shape[0] != rows.shape[0]:
                raise InputError(f"Dictionary {place.name!r}: {place.read.describe()} did not run before "
                                 f"{site.describe()} in this forward; pass other sites.")
            delta = edit(i, x_in, s) - s
            return (rows + embed(site, delta, rows.shape[-1]).to(rows.dtype)).reshape(raw.shape)
        return new

    try:
        for i, place in enumerate(items):
            if place.transcoder:
                handles.append(read_site(spec, place.read, keep(i)))
        for i, place in enumerate(items):
            handles.append(write_site(spec, place.write, writer(i, place)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def decode_sparse(sae: SAE, values: torch.Tensor, indices: torch.Tensor, x_in: torch.Tensor | None) -> torch.Tensor:
    """``sae.decode`` of sparse latents, differentiable in ``values``: values / indices (rows, k) (index -1: none),
    x_in (rows, d_in) the encoded input (for a skip connection or an undone normalisation) -> (rows, d_out)."""
    live = indices >= 0
    index = indices.clamp(min=0)
    acts = torch.where(live, values, torch.zeros_like(values)).to(sae.dtype)
    if sae.rescale_acts_by_decoder_norm:
        acts = acts / sae.W_dec.norm(dim=-1)[index]
    out = torch.einsum("rk,rkd->rd", acts, sae.W_dec[index]) + sae.b_dec
    undo = sae.normalize_output and sae.normalization in ("constant_norm_rescale", "layer_norm")
    if x_in is not None and undo:
        out = sae._normalize_out(out, x_in.to(sae.dtype))
    if x_in is not None and sae.W_skip is not None:
        out = out + x_in.to(sae.dtype) @ sae.W_skip.T
        if sae.b_skip is not None:
            out = out + sae.b_skip
    return out


def active(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices int64 (rows, k_max) padded with -1, values (rows, k_max) in the dictionary's dtype, 0 where padded)
    of the latents active on x (rows, d_in), largest first."""
    acts = sae.encode(x)
    on = acts != 0
    k = int(on.sum(-1).max()) if len(acts) else 0
    if k == 0:
        return acts.new_zeros(len(acts), 0, dtype=torch.long), acts.new_zeros(len(acts), 0)
    values, index = torch.topk(torch.where(on, acts.float(), -torch.inf), k=k, dim=-1)
    live = torch.isfinite(values)
    return torch.where(live, index, -1), torch.where(live, values, 0.0).to(acts.dtype)
