"""The direct logit attribution of one target (− foil) on two prompts, and its difference A − B, component by
component (``ew.compare(out_a, out_b).logit_attribution_difference(column, target, foil)``): which heads and MLPs
write the answer on the clean prompt and not on the corrupted one.

>>> import numpy as np
>>> from ecco_widgets.results.logit_attribution import LogitAttribution
>>> def r(values):
...     return LogitAttribution(position=1, target_id=7, target=" x", foil_id=-1, foil="", unit="layer",
...         labels=["embed", "0.attn", "0.mlp"], kinds=["embed", "attn", "mlp"], layers=np.array([-1, 0, 0], np.int32),
...         indices=np.array([-1, -1, -1], np.int32), values=np.array(values, np.float32), logit=float(sum(values)),
...         attn_by_layer=np.array(values[1:2], np.float32), mlp_by_layer=np.array(values[2:], np.float32),
...         embed=values[0])
>>> d = LogitAttributionDifference(r([0.5, 2.0, -1.0]), r([0.5, 0.25, -1.0]))
>>> d.values.tolist(), d.logit, d.top(1)[0]["label"]
([0.0, 1.75, 0.0], 1.75, '0.attn')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, NotAvailableError
from .logit_attribution import LogitAttribution


@dataclass
class LogitAttributionDifference:
    """``a`` and ``b``: the two :class:`LogitAttribution` (same target, foil and unit; prompt A's and B's positions).
    Every array is A's minus B's: values float32 (n_components,) with ``labels`` / ``kinds`` / ``layers`` /
    ``indices`` as in A; attn_by_layer / mlp_by_layer / by_layer (n_layers,), accumulated (n_layers + 1,), logit."""

    a: LogitAttribution
    b: LogitAttribution

    def __post_init__(self) -> None:
        if (self.a.target_id, self.a.foil_id, self.a.unit) != (self.b.target_id, self.b.foil_id, self.b.unit) or \
                list(self.a.labels) != list(self.b.labels):
            raise InputError("The two attributions differ in target, foil, unit or components: compute both with the "
                             "same target, foil and unit on one model.")

    labels = property(lambda self: self.a.labels)
    kinds = property(lambda self: self.a.kinds)
    layers = property(lambda self: self.a.layers)
    indices = property(lambda self: self.a.indices)
    unit = property(lambda self: self.a.unit)
    n_layers = property(lambda self: self.a.n_layers)

    @property
    def values(self) -> np.ndarray:
        return (self.a.values.astype(np.float64) - self.b.values).astype(np.float32)

    @property
    def logit(self) -> float:
        return float(self.a.logit - self.b.logit)

    @property
    def attn_by_layer(self) -> np.ndarray:
        return (self.a.attn_by_layer.astype(np.float64) - self.b.attn_by_layer).astype(np.float32)

    @property
    def mlp_by_layer(self) -> np.ndarray:
        return (self.a.mlp_by_layer.astype(np.float64) - self.b.mlp_by_layer).astype(np.float32)

    @property
    def by_layer(self) -> np.ndarray:
        return (self.a.by_layer.astype(np.float64) - self.b.by_layer).astype(np.float32)

    @property
    def accumulated(self) -> np.ndarray:
        return (self.a.accumulated.astype(np.float64) - self.b.accumulated).astype(np.float32)

    def top(self, k: int = 10) -> list[dict[str, Any]]:
        """The k components whose share differs most (|A − B|): [{"label", "kind", "layer", "index", "value"}]."""
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        values = self.values
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        return [{"label": self.labels[i], "kind": self.kinds[i], "layer": int(self.layers[i]),
                 "index": int(self.indices[i]), "value": float(values[i])} for i in order]

    def head_grid(self) -> dict[str, np.ndarray]:
        """The layers x heads layout of the difference (a head-unit result): head_values float32 (n_layers, n_heads),
        mlp_values (n_layers,), attn_totals / mlp_totals (n_layers,), accumulated (n_layers + 1,), term_labels and
        term_values (the embedding and bias terms), each A − B."""
        from .logit_attribution_view import head_arrays

        if self.unit != "head":
            raise NotAvailableError(f"The grid lays out heads; this difference is by {self.unit}: compute it with "
                                    "unit='head'.")
        ga, gb = head_arrays(self.a), head_arrays(self.b)
        return {k: (ga[k] if k == "term_labels" else (np.asarray(ga[k], np.float64) - gb[k]).astype(np.float32))
                for k in ga}

    def view(self, **view_options: Any):
        """LogitAttributionView of the difference: the layers x heads grid (+ MLPs), the per-layer bars and the curve,
        each A − B on a diverging scale centred on 0 (prompt A's text under it)."""
        from ..views import LogitAttributionView

        out = self.a._out
        text = {} if out is None else {"tokens": list(out.tokens), "raw_tokens": list(out.raw_tokens),
                                       "position": self.a.position}
        foil = f" − {self.a.foil}" if self.a.foil else ""
        options = {"title": f"Direct logit attribution, prompt A − prompt B: {self.a.target!r}{foil} "
                            f"(A at position {self.a.position}, B at {self.b.position})",
                   "target": self.a.target, "foil": self.a.foil, "logit": self.logit,
                   "error": abs(float(np.sum(self.values, dtype=np.float64)) - self.logit),
                   "note": "Each value is prompt A's minus prompt B's (> 0: the component writes more for the target "
                           "on A)." + (f" {self.a.note}" if self.a.note else ""), **text}
        return LogitAttributionView(**{**self.head_grid(), **options, **view_options})

    def __repr__(self) -> str:
        return (f"LogitAttributionDifference(target={self.a.target!r}, foil={self.a.foil!r}, unit={self.unit!r}, "
                f"positions A {self.a.position} / B {self.b.position}, logit difference A − B {self.logit:.4g})")


def logit_attribution_difference(out_a: Any, out_b: Any, position: int | tuple[int, int] = -1, target: Any = None,
                                 foil: Any = None, unit: str = "head") -> LogitAttributionDifference:
    """Direct logit attribution of ``target`` (− ``foil``) at ``position`` on both outputs (analysed with
    ``components=True``), and A − B per component. position: one position for both, or (position in A, in B).
    target None: A's top prediction there (the same token is then attributed on B).

    Example: ``logit_attribution_difference(lm.analyze(clean, components=True), lm.analyze(corrupt,
    components=True), -1, " are", " is")``
    """
    if isinstance(position, tuple):
        if len(position) != 2:
            raise InputError(f"position must be one position or a pair (in A, in B), got {position!r}.")
        pos_a, pos_b = position
    else:
        pos_a = pos_b = position
    for name, out in (("out_a", out_a), ("out_b", out_b)):
        if getattr(out, "_components", None) is None:
            raise NotAvailableError(f"{name} holds no recorded components: analyze both prompts with components=True "
                                    "(fresh from the model, token level).")
    prints = [getattr(out, "model_fingerprint", "") for out in (out_a, out_b)]
    if all(prints) and prints[0] != prints[1]:
        raise InputError("The two outputs come from different models; compare two analyses of one model.")
    pos_a, pos_b = out_a._position(pos_a), out_b._position(pos_b)
    a = out_a.logit_attribution(pos_a, target=target, foil=foil, unit=unit)
    b = out_b.logit_attribution(pos_b, target=a.target_id, foil=None if a.foil_id < 0 else a.foil_id, unit=unit)
    return LogitAttributionDifference(a, b)
