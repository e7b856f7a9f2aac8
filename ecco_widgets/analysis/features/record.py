"""The features of a text, recorded by a plug of :func:`ecco_widgets.capture.capture` in the one hooked forward: each
dictionary's site (and a transcoder's output site, and the neighbouring sites the attach check compares) is kept,
then encoded; per token the active latents are stored sparse (indices + values), with the reconstruction error's
norm, and the text's FVU and L0. Sites, widths and the memory are checked when the recorder is built, before the
forward runs.

The attach check: a dictionary whose FVU on the text is above :data:`FVU_LIMIT` (or far above the FVU its files
state) gives a :class:`~ecco_widgets.errors.SiteWarning` naming the neighbouring site that it reconstructs best.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> from ecco_widgets.capture import capture
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> sae = SAE(W_enc=torch.eye(8), W_dec=torch.eye(8), b_enc=torch.zeros(8), b_dec=torch.zeros(8))
>>> recorder = FeatureRecorder(spec, [(sae, "blocks.1.hook_resid_post")], n_tokens=3, check=False)
>>> _ = capture(spec, torch.tensor([[1, 2, 3]]), plugs=(recorder,))
>>> found = recorder.finish()[0]
>>> found["name"], found["indices"].shape[0], found["values"].dtype.name
('blocks.1.hook_resid_post', 3, 'float32')
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch

from ...errors import InputError, SiteWarning
from ...memory import require
from .sae import SAE, fvu
from .site_values import read_site, values_of
from .sites import Site, neighbours, resolve, sites_of

FVU_LIMIT = 0.5  # above it a dictionary is taken to read the wrong site (or the wrong normalisation)
#: On fewer tokens (after the first) a high FVU alone warns of nothing: a short text's tokens vary little around their
#: own mean, so its FVU overstates the dictionary's (the demo SAE: 0.56 on a 19-token prompt, 0.21 on held-out text);
#: there the check warns only when a neighbouring site fits better, or when the FVU is above 1 (worse than the text's
#: own mean: a dictionary of another site or another model).
SHORT_TEXT = 32
CHUNK_ROWS = 256  # tokens encoded at a time: the dense (rows, d_sae) activations never exceed this many rows


def entries(saes: Any) -> list[tuple[str, SAE, Any]]:
    """``saes`` as [(name, sae, site or None)]: an SAE, a list of SAEs or (SAE, site) pairs (site: a hook name, a
    module name, an ew.Site, or for a transcoder a pair (in, out)), or a dict {name: SAE or (SAE, site)}."""
    if isinstance(saes, SAE) or (isinstance(saes, tuple) and len(saes) == 2 and isinstance(saes[0], SAE)):
        saes = [saes]
    items = list(saes.items()) if isinstance(saes, dict) else [(None, s) for s in saes]
    found: list[tuple[str, SAE, Any]] = []
    for name, item in items:
        sae, site = (item if isinstance(item, tuple) and len(item) == 2 else (item, None))
        if not isinstance(sae, SAE):
            raise InputError(f"saes takes ew.SAE objects (SAE.load(folder)), or (SAE, site) pairs; got "
                             f"{type(sae).__name__}.")
        found.append((name, sae, site))
    return found


def _file_fvu(sae: SAE) -> float | None:
    """The FVU the dictionary's files state (fvu, or 1 - explained_variance), None where they state none."""
    for where in (sae.config, sae.config.get("metadata") or {}, sae.site):
        for key, flip in (("fvu", False), ("eval_fvu", False), ("explained_variance", True)):
            value = where.get(key) if isinstance(where, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return 1.0 - float(value) if flip else float(value)
    return None


class FeatureRecorder:
    """A capture plug: build it before the forward (sites resolved, widths and memory checked), pass it in
    ``capture(..., plugs=(recorder,))``, then ``finish()``: one dict per dictionary (see :meth:`finish`)."""

    def __init__(self, spec: Any, saes: Any, n_tokens: int, check: bool = True):
        self.spec, self.n_tokens, self.check = spec, int(n_tokens), check
        self.items: list[dict[str, Any]] = []
        taken: set[str] = set()
        for name, sae, site in entries(saes):
            pair = site if isinstance(site, tuple) else (site, None)
            read, out = sites_of(spec, sae, pair[0]) if pair[1] is None else \
                (resolve(spec, pair[0]), resolve(spec, pair[1]))
            name = str(name or read.name or read.describe()).replace("/", "_")
            base, i = name, 2
            while name in taken:
                name, i = f"{base}#{i}", i + 1
            taken.add(name)
            for what, where, want in (("reads", read, sae.d_in), ("writes", out, sae.d_out if out else None)):
                if where is not None and where.width is not None and want is not None and where.width != want:
                    raise InputError(f"Dictionary {name!r} {what} {want} values per token, but {where.describe()} "
                                     f"holds {where.width}: it was trained on another site or another model "
                                     f"({sae.site.get('model_name') or 'model not named in its files'}).")
            if out is None and sae.d_out != sae.d_in:
                raise InputError(f"Dictionary {name!r} writes {sae.d_out} values from {sae.d_in}: it is a transcoder; "
                                 "pass its output site, saes=[(sae, (site_in, site_out))].")
            near = neighbours(spec, read) if check and sae.d_in == (read.width or sae.d_in) else []
            self.items.append({"name": name, "sae": sae, "read": read, "out": out, "near": near})
        self.wanted = {(s.module, s.io) for it in self.items for s in (it["read"], it["out"], *it["near"]) if s}
        itemsize = next(spec.model.parameters()).element_size()
        width = sum(max(it["sae"].d_in, it["sae"].d_out) for it in self.items) * (1 + 2 * check)
        require(self.n_tokens * width * itemsize + CHUNK_ROWS * sum(it["sae"].d_sae for it in self.items) * 4,
                f"Recording {len(self.items)} dictionaries' sites over {self.n_tokens} tokens",
                "Analyse a shorter text, or attach fewer dictionaries.", None)
        self.values: dict[tuple[str, str], torch.Tensor] = {}

    def register(self, handles: list) -> None:
        """Hooks keeping each wanted module's input / output (raw: its sites' transforms apply in :meth:`read`)."""
        def keep(key: tuple[str, str]):
            def take(x: torch.Tensor) -> None:
                self.values[key] = x.reshape(-1, x.shape[-1])[-self.n_tokens:].clone()
            return take

        for key in sorted(self.wanted):
            handles.append(read_site(self.spec, Site(module=key[0], io=key[1]), keep(key), raw=True))

    def read(self, site: Site) -> torch.Tensor:
        """What ``site`` held in the forward, transformed (float32 once a transform applies), (n_tokens, width)."""
        key = (site.module, site.io)
        if key not in self.values:
            raise InputError(f"{site.describe()} did not run as a module during the forward pass (a fused or "
                             "functional path), so it could not be read; pass another site.")
        return values_of(self.spec, site)(self.values[key])

    def finish(self) -> list[dict[str, Any]]:
        """Per dictionary: name, site / site_out (descriptions), indices int32 (n_tokens, k_max) padded with -1 and
        values float32 (same shape; each token's active latents, largest first), error_norm float32 (n_tokens,),
        fvu, l0 (mean active latents per token), d_sae, file_fvu, warning ("" when the check passed)."""
        found = []
        for item in self.items:
            sae, read, out = item["sae"], item["read"], item["out"]
            x = self.read(read)
            if x.shape[-1] != sae.d_in:
                raise InputError(f"Dictionary {item['name']!r} reads {sae.d_in} values per token, but "
                                 f"{read.describe()} held {x.shape[-1]} in the forward.")
            target = x if out is None else self.read(out)
            indices, values, recon = encode_sparse(sae, x)
            error = (target.to(recon.device, torch.float32) - recon.float())
            result = {"name": item["name"], "site": read.describe(), "site_out": out.describe() if out else "",
                      "indices": indices, "values": values, "d_sae": sae.d_sae,
                      "error_norm": error.norm(dim=-1).cpu().numpy().astype(np.float32),
                      "fvu": fvu(target, recon), "l0": float((indices >= 0).sum(1).mean()) if len(indices) else 0.0,
                      "file_fvu": _file_fvu(sae), "warning": ""}
            if self.check:
                result["warning"] = self.attach_check(item, result, target, recon)
            found.append(result)
        return found

    def attach_check(self, item: dict, result: dict, target: torch.Tensor, recon: torch.Tensor) -> str:
        """The SiteWarning's text ("" when the dictionary fits): FVU over the tokens after the first (the attention
        sink's outlying norm is left out, as SAELens' evaluations leave special tokens out)."""
        skip = 1 if len(target) > 2 else 0
        measured = fvu(target[skip:], recon[skip:])
        limit = FVU_LIMIT if result["file_fvu"] is None else min(FVU_LIMIT, 2 * result["file_fvu"] + 0.1)
        if not measured > limit:
            return ""
        sae, read, out = item["sae"], item["read"], item["out"]
        scores = []
        for site in item["near"]:
            try:
                x = self.read(site)
            except InputError:
                continue
            _, _, other = encode_sparse(sae, x, keep=False)
            goal = x if out is None else target
            scores.append((fvu(goal[skip:], other[skip:]), site))
        stated = "" if result["file_fvu"] is None else f" (its files state {result['file_fvu']:.3g})"
        text = (f"Dictionary {item['name']!r} reconstructs {read.describe()} with FVU {measured:.3g} on this text"
                f"{stated}, above {limit:.3g}: it may read the wrong site or the wrong normalisation.")
        best = min(scores, key=lambda s: s[0], default=None)
        if len(target) - skip < SHORT_TEXT and measured <= 1.0 and (best is None or best[0] >= measured):
            return ""
        if best is not None and best[0] < measured:
            site = best[1]
            how = f"'{site.name}'" if site.transform == read.transform or site.name != read.name else \
                f"ew.Site(module={site.module!r}, io={site.io!r}, transform={site.transform!r})"
            same = f" (= blocks.{site.layer - 1}.hook_resid_post)" if site.kind == "resid_pre" and site.layer else ""
            text += f" It fits {site.describe()}{same} better (FVU {best[0]:.3g}): saes=[(sae, {how})]."
        warnings.warn(text, SiteWarning, stacklevel=4)
        return text


def encode_sparse(sae: SAE, x: torch.Tensor, keep: bool = True) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(indices int32 (n, k_max) padded with -1, values float32, reconstruction (n, d_out)), encoded CHUNK_ROWS
    tokens at a time; each row's active latents sorted by value, largest first."""
    rows_i, rows_v, recons = [], [], []
    for start in range(0, len(x), CHUNK_ROWS):
        chunk = x[start:start + CHUNK_ROWS]
        acts = sae.encode(chunk)
        recons.append(sae.decode(acts, x_in=chunk))
        if keep:
            active = acts != 0
            k = int(active.sum(-1).max()) if len(acts) else 0
            values, index = torch.topk(torch.where(active, acts.float(), -torch.inf), k=k, dim=-1) if k else \
                (acts.new_zeros(len(acts), 0).float(), acts.new_zeros(len(acts), 0, dtype=torch.long))
            live = torch.isfinite(values)
            rows_i.append(torch.where(live, index, -1).to(torch.int32).cpu().numpy())
            rows_v.append(torch.where(live, values, 0.0).cpu().numpy().astype(np.float32))
    recon = torch.cat(recons) if recons else x.new_zeros(0, sae.d_out)
    if not keep:
        return np.zeros((0, 0), np.int32), np.zeros((0, 0), np.float32), recon
    return _pad(rows_i, -1, np.int32, len(x)), _pad(rows_v, 0.0, np.float32, len(x)), recon


def _pad(parts: Sequence[np.ndarray], fill: Any, dtype: Any, n: int) -> np.ndarray:
    width = max((p.shape[1] for p in parts), default=0)
    out = np.full((n, width), fill, dtype=dtype)
    row = 0
    for part in parts:
        out[row:row + len(part), :part.shape[1]] = part
        row += len(part)
    return out
