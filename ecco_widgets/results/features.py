"""The features of a text under one sparse dictionary (``lm.analyze(text, saes=[sae])`` -> ``out.features[name]``):
per token the active latents stored sparse (indices + values, never the dense n_tokens x d_sae array unless asked),
the reconstruction error's norm, and the text's FVU and L0. Saved and loaded with the output (results/storage.py).

>>> import numpy as np
>>> f = SAEFeatures(name="blocks.0.hook_resid_post", site="h.0 output", d_sae=5,
...                 indices=np.array([[3, 1], [2, -1]], np.int32),
...                 values=np.array([[2.0, 0.5], [1.0, 0.0]], np.float32),
...                 error_norm=np.array([0.1, 0.2], np.float32), fvu=0.05, l0=1.5)
>>> f.dense().tolist()
[[0.0, 0.5, 0.0, 2.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]]
>>> f.active(0)
[(3, 2.0), (1, 0.5)]
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError

ARRAYS = ("indices", "values", "error_norm")


@dataclass(eq=False)
class SAEFeatures:
    """One dictionary's features of a text. indices: int32 (n_tokens, k_max), each token's active latents, largest
    value first, padded with -1; values: float32, same shape (0 where padded); error_norm: float32 (n_tokens,),
    |target - reconstruction| per token; fvu: sum |target - recon|^2 / sum |target - mean|^2 over the text's tokens;
    l0: mean number of active latents per token; site / site_out: where it read (and a transcoder's target was read);
    file_fvu: the FVU its files state (None when they state none); warning: the attach check's SiteWarning ("" when
    it fit)."""

    name: str
    site: str
    d_sae: int
    indices: np.ndarray
    values: np.ndarray
    error_norm: np.ndarray
    fvu: float
    l0: float
    site_out: str = ""
    file_fvu: float | None = None
    warning: str = ""

    @property
    def n_tokens(self) -> int:
        return int(self.indices.shape[0])

    def dense(self) -> np.ndarray:
        """float32 (n_tokens, d_sae): built on demand, never stored."""
        out = np.zeros((self.n_tokens, self.d_sae), dtype=np.float32)
        rows, cols = np.nonzero(self.indices >= 0)
        out[rows, self.indices[rows, cols]] = self.values[rows, cols]
        return out

    def active(self, position: int) -> list[tuple[int, float]]:
        """[(latent, value)] active at ``position``, largest first."""
        n = self.n_tokens
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not -n <= position < n:
            raise InputError(f"position {position!r} is out of range: {n} tokens (0..{n - 1}).")
        keep = self.indices[position] >= 0
        return [(int(i), float(v)) for i, v in zip(self.indices[position][keep], self.values[position][keep])]

    def top(self, k: int = 10) -> list[tuple[int, float, int]]:
        """The k strongest (latent, value, position) over the text, one entry per latent."""
        best: dict[int, tuple[float, int]] = {}
        rows, cols = np.nonzero(self.indices >= 0)
        for row, col in zip(rows, cols):
            latent, value = int(self.indices[row, col]), float(self.values[row, col])
            if latent not in best or value > best[latent][0]:
                best[latent] = (value, int(row))
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:k]
        return [(latent, value, row) for latent, (value, row) in ranked]

    def take(self, positions: np.ndarray) -> "SAEFeatures":
        """The features at chosen token positions (a word's last piece: ``out.by_word()``); fvu and l0 stay the
        text's."""
        indices, values = self.indices[positions], self.values[positions]
        width = int((indices >= 0).sum(1).max()) if len(indices) else 0
        return SAEFeatures(**{**self.meta(), "indices": indices[:, :width].copy(), "values": values[:, :width].copy(),
                              "error_norm": self.error_norm[positions].copy()})

    def explore(self, tokens: Sequence[str], *, sae: Any = None, labels: Mapping[int, str] | None = None,
                attribution: Any = None, attribution_target: str = "", attribution_index: int = 0,
                dashboard: Any = None, **view_options: Any):
        """FeatureExplorer of these features over ``tokens`` (the output's; ``out.explore_features(name)`` passes
        them): ``labels`` {latent: description}, default ``sae.labels`` when ``sae`` is given; ``attribution``
        {position: (indices, values)} or a pair of (n_tokens, k) arrays, each token's features' effect on
        ``attribution_target``; or ``out.feature_attribution(sae)``'s result, whose target ``attribution_index`` is
        shown; ``dashboard``: ``ew.feature_dashboard(lm, sae, texts)``'s result, whose cards of these features open
        on click. Sends indices + values + per-token offsets, never the dense array."""
        from ..views import FeatureExplorer

        if hasattr(attribution, "attributions") and hasattr(attribution, "indices"):  # a FeatureAttribution
            attribution, attribution_target = _one_target(attribution, attribution_index, attribution_target,
                                                          self.d_sae)

        if labels is None and sae is not None:
            labels = getattr(sae, "labels", None)
            if getattr(sae, "d_sae", self.d_sae) != self.d_sae:
                raise InputError(f"sae has d_sae={sae.d_sae} but the features {self.name!r} come from a dictionary of "
                                 f"{self.d_sae} latents: pass the SAE they were recorded with.")
        if len(tokens) != self.n_tokens:
            raise InputError(f"features {self.name!r} cover {self.n_tokens} tokens, not {len(tokens)}.")
        view_options.setdefault("dictionary", self.name)
        view_options.setdefault("title", f"Features of {self.name} ({self.site}; FVU {self.fvu:.3g}, L0 "
                                         f"{self.l0:.3g})")
        return FeatureExplorer(list(tokens), self.indices, self.values, d_sae=self.d_sae, labels=labels,
                               attribution=attribution, attribution_target=attribution_target, dashboard=dashboard,
                               **view_options)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SAEFeatures):
            return NotImplemented
        return all(np.array_equal(getattr(self, n), getattr(other, n)) and
                   getattr(self, n).dtype == getattr(other, n).dtype for n in ARRAYS) and \
            self.meta() == other.meta()

    def meta(self) -> dict[str, Any]:
        """The fields that are not arrays (JSON-able)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ARRAYS}

    def problems(self, n_tokens: int) -> list[str]:
        """What disagrees with an output of n_tokens tokens (a file edited by hand)."""
        found = []
        if self.indices.shape != self.values.shape or self.indices.ndim != 2 or self.indices.shape[0] != n_tokens:
            found.append(f"features {self.name!r}: indices {self.indices.shape} / values {self.values.shape} for "
                         f"{n_tokens} tokens")
        elif self.indices.size and (self.indices.min() < -1 or self.indices.max() >= self.d_sae):
            found.append(f"features {self.name!r}: latents outside 0..{self.d_sae - 1}")
        if self.error_norm.shape != (n_tokens,):
            found.append(f"features {self.name!r}: error_norm {self.error_norm.shape} for {n_tokens} tokens")
        return found


def _one_target(result: Any, t: int, label: str, d_sae: int) -> tuple[tuple[np.ndarray, np.ndarray], str]:
    """(indices, attributions of target t) of a FeatureAttribution, and the target's description."""
    n = len(result.positions)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not -n <= t < n:
        raise InputError(f"attribution_index {t!r}: the attribution explains {n} targets (0..{n - 1}).")
    if int(result.d_sae) != d_sae:
        raise InputError(f"The attribution is of a dictionary of {result.d_sae} latents, these features of {d_sae}.")
    foil = result.foils[t] if result.foils[t] else ""
    what = f"{result.target} of {result.targets[t]!r}" + (f" - {foil!r}" if foil else "") + \
        f" at token {int(result.positions[t])}"
    return (result.indices, result.attributions[t]), label or what


def explore_features_of(out: Any, name: str | None = None, **options: Any):
    """``out.explore_features(name=None, sae=None, labels=None, attribution=None, attribution_target="",
    dashboard=None, ...)``: the FeatureExplorer of one dictionary's features (``lm.analyze(text, saes=[sae])``; ``name`` may be left out when
    there is one). Labels: ``labels``, else ``sae.labels``, else those of the SAE the output was analysed with.
    Example: ``out.explore_features(sae=sae)``."""
    from .words import chat_options

    found = getattr(out, "features", None) or {}
    if not found:
        raise InputError("This output has no features: analyze with saes=[sae] (lm.analyze(text, saes=[sae])).")
    if name is None:
        if len(found) > 1:
            raise InputError(f"This output has the features of {len(found)} dictionaries ({', '.join(found)}): "
                             "name one, out.explore_features(name).")
        name = next(iter(found))
    if name not in found:
        raise InputError(f"No features named {name!r}; this output has: {', '.join(found)}.")
    linked = (getattr(out, "_saes", None) or {}).get(name)  # the SAE it was recorded with: its labels by default
    if linked is not None and "sae" not in options and "labels" not in options:
        options["sae"] = linked[0] if isinstance(linked, tuple) else linked
    options.setdefault("raw_tokens", list(out.raw_tokens) if getattr(out, "raw_tokens", None) else None)
    options.setdefault("n_input_tokens", out.n_input_tokens)
    options.setdefault("unit", getattr(out, "unit", "token"))
    return found[name].explore(out.tokens, **{**chat_options(out), **options})


def features_of(found: list[dict[str, Any]]) -> dict[str, SAEFeatures]:
    """{name: SAEFeatures} of a FeatureRecorder's finish()."""
    known = {f.name for f in fields(SAEFeatures)}
    return {item["name"]: SAEFeatures(**{k: v for k, v in item.items() if k in known}) for item in found}


def split_features(features: dict[str, SAEFeatures]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta {name: fields}, arrays {"<name>/<array>": array}) for storage."""
    meta = {name: f.meta() for name, f in features.items()}
    arrays = {f"{name}/{key}": getattr(f, key) for name, f in features.items() for key in ARRAYS}
    return meta, arrays


def join_features(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, SAEFeatures]:
    """The inverse of :func:`split_features`."""
    known = {f.name for f in fields(SAEFeatures)}
    return {name: SAEFeatures(**{k: v for k, v in fields_.items() if k in known},
                              **{key: arrays[f"{name}/{key}"] for key in ARRAYS})
            for name, fields_ in meta.items()}
