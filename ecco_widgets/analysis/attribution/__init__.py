"""Input saliency: how much each input token's embedding contributed to each explained value.

One engine (:mod:`.engine`) serves every model kind: a kind says how its inputs are embedded and how the explained
scalar f is read (an :class:`ExplainedFunction`), and :func:`attribute` runs the methods of the registry
(:mod:`.methods`) on it. Targets ("prob", "logit", "logprob", contrastive foils) are in :mod:`.targets`, argument
checks in :mod:`.checks`, IG's completeness check in :mod:`.completeness`, display aggregation in :mod:`.aggregate`.

>>> import torch
>>> class Square:   # f = sum of x^2 over the one token; grad x input = 2 x^2
...     n_layers, inputs = 1, [EmbeddedInput(torch.tensor([[[1.0, 2.0]]]), n_columns=1)]
...     def hidden(self, xs): return xs[0]
...     def head(self, h): return (h ** 2).sum(-1)
>>> res = attribute(Square(), torch.nn.Linear(1, 1), ["grad_x_input", "ig"], n_steps=8, progress=False)
>>> res.raw["grad_x_input"].tolist(), round(float(res.deltas["ig"][0]), 6)
([[[2.0, 8.0]]], 0.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ...progress import progress_bar
from .aggregate import AGGREGATES, aggregate_attributions
from .checks import check_methods, check_n_steps, check_positions, check_target
from .completeness import check_completeness, relative_completeness_error
from .engine import AttributionJob, AttributionResult, EmbeddedInput, ExplainedFunction, frozen_model
from . import methods as methods_module
from .methods import DEFAULT_N_STEPS, IG_METHOD, METHODS, MIXING_METHODS, PATH_METHODS, QUADRATURES, Method
from .targets import TARGETS, decoded_scalar, scalar_of_logits

__all__ = [
    "AGGREGATES", "DEFAULT_N_STEPS", "IG_METHOD", "METHODS", "MIXING_METHODS", "PATH_METHODS", "QUADRATURES", "TARGETS", "AttributionJob", "AttributionResult",
    "EmbeddedInput", "ExplainedFunction", "Method", "aggregate_attributions", "attribute", "check_completeness",
    "check_methods", "check_n_steps", "check_positions", "check_target", "decoded_scalar", "frozen_model",
    "relative_completeness_error", "scalar_of_logits",
]


def attribute(function: ExplainedFunction, model: torch.nn.Module, methods: Sequence[str], n_steps: int | None = None,
              progress: bool | None = None, settings: dict[str, Any] | None = None,
              positions: np.ndarray | None = None) -> AttributionResult:
    """Run each of ``methods`` on ``function`` (``model`` is frozen and in eval mode for the call, then restored).

    Returns raw {method: float32 (n_targets, n_columns, d_model)}, IG deltas, and settings: the methods, the
    baseline, the meaning of each raw array, n_steps and completeness for IG, updated with ``settings``.
    progress: True / False, or None to show a bar (stderr) only once the call has run for a few seconds.
    positions: where the explained tokens sit (named in the completeness warning).
    """
    methods = check_methods(methods, internals=hasattr(function, "internals"))
    n_steps = check_n_steps(n_steps)
    with progress_bar(None, "attribution", progress, "pass") as bar, frozen_model(model):
        job = AttributionJob(function, bar)
        causal = [i.causal_from for i in function.inputs if i.causal_from is not None]
        if causal:  # the number of targets is known before the first pass
            bar.total = job.work_units(methods, n_steps, int(causal[0].shape[0]))
        raw: dict[str, np.ndarray] = {}
        deltas: dict[str, np.ndarray] = {}
        for method in methods:
            values, delta = METHODS[method].run(job, n_steps)
            raw[method] = values
            if delta is not None:
                deltas[method] = delta
    described: dict[str, Any] = {
        "methods": list(methods),
        "baseline": "zero",
        "raw": {m: METHODS[m].meaning for m in methods},
        "checkpointed": job.checkpointed,
    }
    if set(PATH_METHODS) & set(methods):
        described["n_steps"] = n_steps
        described["ig_method"] = methods_module.IG_METHOD
    described.update(getattr(job, "dig_settings", {}))
    for method in PATH_METHODS:
        if method in methods:
            described.update(check_completeness(deltas[method], getattr(job, f"{method}_change"), positions,
                                                method))
    described.update(settings or {})
    return AttributionResult(raw=raw, deltas=deltas, settings=described, mixing=job.mixing)
