"""Feature attribution of explained tokens (``out.feature_attribution(sae)``): per target, the effect of every latent
active before it (activation x gradient with the dictionary spliced in, its error held constant), the error term's
share and the decoder bias's; the math is :mod:`ecco_widgets.analysis.features.attribution`. Saved and loaded as
its own result (``ew.load``).

>>> import numpy as np
>>> r = FeatureAttribution(name="blocks.1.hook_mlp_out", site="h.1.mlp output", d_sae=8, target="logit",
...     positions=np.array([2]), target_ids=np.array([7]), foil_ids=np.array([-1]), targets=[" x"], foils=[""],
...     tokens=["a", " b", " x"], indices=np.array([[3, -1], [5, 3], [-1, -1]], np.int32),
...     activations=np.array([[1.0, 0], [2.0, 0.5], [0, 0]], np.float32),
...     attributions=np.array([[[0.5, 0], [-1.0, 0.25], [0, 0]]], np.float32),
...     error=np.array([[0.1, 0.2, 0]], np.float32), rest=np.array([[0.0, 0.05, 0]], np.float32),
...     values=np.array([3.0], np.float32))
>>> [(f["feature"], f["position"], f["attribution"]) for f in r.top(0, k=2)]
[(5, 1, -1.0), (3, 0, 0.5)]
>>> r.by_feature(0)
{3: 0.75, 5: -1.0}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, NotAvailableError
from .storage import save_result


@dataclass
class FeatureAttribution:
    """Feature attribution of T targets to one dictionary's latents over n tokens.

    positions int64 (T,): the explained tokens (each predicted at position - 1); target_ids / foil_ids int64 (T,)
    (-1: no foil), targets / foils their text; target: "logit", "prob" or "logprob" (minus the foil's).
    indices int32 (n, k): the latents active at each token (-1 padding), activations float32 (n, k) their values;
    attributions float32 (T, n, k): activation x gradient of each target; error float32 (T, n): the error term's
    share per token; rest float32 (T, n): the decoder bias's (and a skip connection's); values float32 (T,): each
    target's explained value. ``total(t)`` = s . grad f_t summed over tokens (s: the site's value).
    """

    name: str
    site: str
    d_sae: int
    target: str
    positions: np.ndarray
    target_ids: np.ndarray
    foil_ids: np.ndarray
    targets: list[str]
    foils: list[str]
    tokens: list[str]
    indices: np.ndarray
    activations: np.ndarray
    attributions: np.ndarray
    error: np.ndarray
    rest: np.ndarray
    values: np.ndarray
    site_out: str = ""
    model_name: str = ""
    dtype: str = "float32"
    _out: Any = field(default=None, repr=False, compare=False)

    @property
    def n_targets(self) -> int:
        return int(len(self.positions))

    def _target(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not -self.n_targets <= t < self.n_targets:
            raise InputError(f"target index {t!r} is out of range: {self.n_targets} targets (0..{self.n_targets - 1}); "
                             f"their positions are {self.positions.tolist()}.")
        return int(t) % self.n_targets

    def total(self, t: int = 0) -> float:
        """Every latent's, the error's and the rest's share of target t, summed (float64)."""
        t = self._target(t)
        return float(self.attributions[t].sum(dtype=np.float64) + self.error[t].sum(dtype=np.float64)
                     + self.rest[t].sum(dtype=np.float64))

    def top(self, t: int = 0, k: int = 10) -> list[dict[str, Any]]:
        """The k (latent, token) entries of target t with the largest |attribution|: [{"feature", "position",
        "token", "activation", "attribution"}], largest first."""
        t = self._target(t)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        rows, cols = np.nonzero(self.indices >= 0)
        values = self.attributions[t, rows, cols]
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        return [{"feature": int(self.indices[rows[i], cols[i]]), "position": int(rows[i]),
                 "token": self.tokens[rows[i]] if rows[i] < len(self.tokens) else "",
                 "activation": float(self.activations[rows[i], cols[i]]), "attribution": float(values[i])}
                for i in order]

    def by_feature(self, t: int = 0) -> dict[int, float]:
        """{latent: its attribution to target t summed over the tokens where it is active}, by latent."""
        t = self._target(t)
        live = self.indices >= 0
        sums = np.zeros(self.d_sae, dtype=np.float64)
        np.add.at(sums, self.indices[live], self.attributions[t][live])
        seen = np.unique(self.indices[live])
        return {int(j): float(sums[j]) for j in seen}

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand); [] when all is well."""
        T, problems = len(self.positions), []
        n = self.indices.shape[0] if self.indices.ndim == 2 else -1
        if self.indices.shape != self.activations.shape or self.indices.ndim != 2:
            problems.append(f"indices {self.indices.shape} and activations {self.activations.shape}")
        if self.attributions.shape != (T, *self.indices.shape):
            problems.append(f"attributions {self.attributions.shape} for {T} targets and indices {self.indices.shape}")
        for name in ("error", "rest"):
            if getattr(self, name).shape != (T, n):
                problems.append(f"{name} {getattr(self, name).shape} for {T} targets and {n} tokens")
        for name in ("target_ids", "foil_ids", "values"):
            if len(getattr(self, name)) != T:
                problems.append(f"{name} of length {len(getattr(self, name))} for {T} targets")
        if self.indices.size and (self.indices.min() < -1 or self.indices.max() >= self.d_sae):
            problems.append(f"latents outside 0..{self.d_sae - 1}")
        return problems

    def save(self, path: str | Path) -> Path:
        """Write it to one .npz file; ``ew.load`` reads it back as a FeatureAttribution."""
        return save_result(self, path)

    def __repr__(self) -> str:
        return (f"FeatureAttribution({self.name!r}, {self.n_targets} targets at {self.positions.tolist()[:8]}, "
                f"target={self.target!r}, {int((self.indices >= 0).sum())} active latents)")


def _token(out: Any, token: Any, what: str) -> int:
    if isinstance(token, (bool, np.bool_)) or not isinstance(token, (str, int, np.integer)):
        raise InputError(f"{what} must be one token: a string that is exactly one token (e.g. ' Paris') or a token "
                         f"id, got {token!r}.")
    return int(out._encode_watch(token))


def feature_attribution_of(out: Any, sae: Any, positions: Any = None, target: str = "logit",
                           foil: Any = None) -> FeatureAttribution:
    """Attribute explained tokens to the active latents of ``sae`` (an ew.SAE, an (SAE, site) pair, or the name of a
    dictionary this output was analysed with, ``saes=[...]``; an SAE it was analysed with keeps the site given
    there): one forward and one batched backward on the model.

    positions: the explained tokens (default: the generated ones, else the last); target: "logit" (default), "prob"
    or "logprob"; foil: a token (one-token string or id) whose value is subtracted from every target's.
    Example: ``lm.generate("The cat", max_new_tokens=3, saes=[sae]).feature_attribution(sae).top(0)``
    """
    from ..analysis.features.attribution import attribute_features, placements
    from ..analysis.attribution.targets import TARGETS

    if type(out).__name__ != "Output":
        raise NotAvailableError(f"Feature attribution explains a causal LM's next tokens; this is a {type(out).__name__}.")
    lm = getattr(out._encode_watch, "__self__", None)
    if lm is None or not hasattr(lm, "spec"):
        raise NotAvailableError("This output is not attached to its model (a loaded output): out.attach(lm) first.")
    if getattr(out, "unit", "token") != "token":
        raise NotAvailableError("Feature attribution works on tokens: call it on the token-level output.")
    if not isinstance(target, str) or target not in TARGETS:
        raise InputError(f"target must be one of {', '.join(map(repr, TARGETS))}, got {target!r}.")
    linked = getattr(out, "_saes", None) or {}
    same = [pair for pair in linked.values() if pair[0] is sae]  # an SAE the output was analysed with: its site
    sae = same[0] if len(same) == 1 else sae
    if isinstance(sae, str):
        if sae not in linked:
            raise InputError(f"No dictionary named {sae!r} on this output (it has {sorted(linked) or 'none'}); pass the "
                             "ew.SAE itself.")
        sae = linked[sae]
    n = out.n_tokens
    if positions is None:
        positions = list(range(out.n_input_tokens, n)) or [n - 1]
    positions = lm._target_positions(positions, n, out.n_input_tokens)
    foil_id = None if foil is None else _token(out, foil, "foil")
    place = placements(lm.spec, sae, "Feature attribution")[0]
    input_ids = torch.tensor([[int(i) for i in out.token_ids]], device=lm.device)
    foils = None if foil_id is None else np.full(len(positions), foil_id, dtype=np.int64)
    with lm.lock:
        found = attribute_features(lm.spec, place, input_ids, positions, target, foils)
    target_ids = np.asarray(out.token_ids)[positions].astype(np.int64)
    names = lm.vocab_text(np.concatenate([target_ids, [foil_id] if foil_id is not None else []]).astype(np.int64)) \
        if hasattr(lm, "vocab_text") else {}
    dtype = str(next(lm.model.parameters()).dtype).replace("torch.", "")
    return FeatureAttribution(
        name=place.name, site=place.read.describe(), site_out=place.write.describe() if place.transcoder else "",
        d_sae=place.sae.d_sae, target=target, positions=positions, target_ids=target_ids,
        foil_ids=np.full(len(positions), -1 if foil_id is None else foil_id, dtype=np.int64),
        targets=[names.get(int(i), str(int(i))) for i in target_ids],
        foils=["" if foil_id is None else names.get(foil_id, str(foil_id))] * len(positions),
        tokens=list(out.tokens), model_name=out.model_name, dtype=dtype, _out=out, **found)
