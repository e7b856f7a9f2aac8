"""The attribution methods: one function each, in one registry (``METHODS``), run by the engine on any model kind.

What ``raw[method]`` (float32, (n_targets, n_columns, d_model)) holds:

* ``"ig"``: integrated gradients, (x - 0) * mean over the path of the gradient (Gauss-Legendre, ``n_steps``
  points, the nodes of captum's ``IntegratedGradients`` and Ecco). Rows sum to f(x) - f(0) up to ``deltas["ig"]``.
  Measured (benchmarks/bench_attribution.py): exact to < 0.01% at 16+ steps on GPT-2-like models. On RMSNorm models
  with the zero baseline (SmolLM2) completeness is not reached at practical step counts: at alpha -> 0 every
  hidden state goes to exactly 0, where RMSNorm's x * rsqrt(mean(x^2) + eps) turns from unit scale to a gain of
  ~1/sqrt(eps), so f(alpha * x) changes over many decades of alpha close to 0 (smoothly: float32 and float64 agree)
  and no grid in alpha resolves it. A ``CompletenessWarning`` is issued when a row misses by more than
  ``COMPLETENESS_TOLERANCE`` (1%) of f(x) - f(0); read ``Output.convergence_delta`` before trusting a row.
* ``"grad_x_input"``: gradient * input, as captum's ``InputXGradient``.
* ``"saliency"``: |gradient| per embedding dimension, as captum's ``Saliency`` (so aggregate "l2" is the gradient
  norm and "sum" its L1 norm).
* ``"occlusion"``: drop f(x) - f(x with that token's embedding set to the baseline), spread evenly as drop / d_model
  over the dimensions, so that aggregate "sum" gives the drop itself. (captum's ``Occlusion`` with a window of one
  token puts the whole drop on every dimension: d_model times ours.)

* ``"sig"``: sequential IG (each token moved alone, the others at their input; :func:`sequential_integrated_gradients`).
* ``"dig"``: discretized IG (Sanyal & Ren 2021, :mod:`.discretized`): the path from the baseline runs through
  monotonised embeddings of neighbouring words; ``n_steps`` gradient evaluations in all. Measured
  (benchmarks/bench_paths.py --dig): on GPT-2-like models its rows converge from 16 evaluations with 4 nodes per
  segment, but straight-line IG is already exact there; on SmolLM2 it misses completeness more than IG at equal
  evaluations, so it is an option, not the default.

Context mixing (:mod:`ecco_widgets.analysis.components.mixing`), read from the model's internals, not gradients:

* ``"value_zeroing"``, ``"alti_logit"``, ``"rollout"``: the method's per-token score s_j spread as s_j / d_model
  over the dimensions (as occlusion's drop), so aggregate "sum" gives the score itself and "l2_normalized" its
  share. Their per-layer matrices are kept in ``AttributionResult.mixing`` (``out.context_mixing(method)``). Only a
  function with ``internals()`` (causal LMs) offers them; other kinds refuse them in ``check_methods``.

Adding a method: write ``def my_method(job, n_steps) -> (raw, delta or None)`` using the job's ``values``,
``path_gradients``, ``gradient``, ``occlusion_drops`` and ``to_numpy``, and add one line to ``METHODS``.

>>> sorted(METHODS)
['alti_logit', 'dig', 'grad_x_input', 'ig', 'occlusion', 'rollout', 'saliency', 'sig', 'value_zeroing']
>>> [round(a, 4) for a in gauss_legendre(2)[0]], [round(w, 4) for w in gauss_legendre(2)[1]]
([0.2113, 0.7887], [0.5, 0.5])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...errors import InputError
from .engine import AttributionJob

IG_METHOD = "gausslegendre"
#: The methods whose rows have a completeness error (out.convergence_delta).
PATH_METHODS = ("ig", "sig", "dig")
#: The methods read from a causal LM's internals (ExplainedFunction.internals()), not from gradients.
MIXING_METHODS = ("value_zeroing", "alti_logit", "rollout")
DEFAULT_N_STEPS = 50


def gauss_legendre(n_steps: int) -> tuple[list[float], list[float]]:
    """Nodes (alphas in [0, 1]) and weights (summing to 1) of n-point Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()


def riemann_trapezoid(n_steps: int) -> tuple[list[float], list[float]]:
    """The trapezoid rule on n equally spaced alphas from 0 to 1 (captum's "riemann_trapezoid"; n >= 2)."""
    if n_steps < 2:
        return [1.0], [1.0]
    weights = [1.0 / (n_steps - 1)] * n_steps
    weights[0] = weights[-1] = 0.5 / (n_steps - 1)
    return np.linspace(0.0, 1.0, n_steps).tolist(), weights


#: Quadrature rules for integrated gradients, by captum's names; IG_METHOD is the one used.
QUADRATURES = {"gausslegendre": gauss_legendre, "riemann_trapezoid": riemann_trapezoid}


def _with_completeness(job: AttributionJob, method: str, attributions: list[torch.Tensor]):
    """(raw, deltas) of a path method whose rows should sum to f(x) - f(start); keeps job.<method>_change."""
    ends = job.values([torch.cat([item.embeddings, item.start]) for item in job.inputs])  # f(x), f(start): (2, T)
    job.bar.update(1)
    change = ends[0] - ends[1]
    setattr(job, f"{method}_change", change.cpu().numpy())
    deltas = sum(a.sum(dim=(1, 2)) for a in attributions) - change
    return job.to_numpy(attributions), deltas.cpu().numpy().astype(np.float32)


def integrated_gradients(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    alphas, weights = QUADRATURES[IG_METHOD](n_steps)
    paths = job.path_gradients(alphas, weights)
    attributions = [path * item.delta[0].float() for path, item in zip(paths, job.inputs)]  # (x - start) * grad
    return _with_completeness(job, "ig", attributions)


def grad_x_input(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, None]:
    return job.to_numpy([g * item.embeddings[0].float() for g, item in zip(job.gradient(), job.inputs)]), None


def saliency(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, None]:
    return job.to_numpy([g.abs() for g in job.gradient()]), None


def occlusion(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, None]:
    spread = [(d / job.d_model)[:, :, None].expand(-1, -1, job.d_model) for d in job.occlusion_drops()]
    return job.to_numpy(spread), None


def sequential_integrated_gradients(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequential IG (Enguehard 2023): each token's embedding moves alone from its start to its input while every
    other token stays at its input, so the residual stream never collapses. Token j gets (x_j - start_j) * the
    path-averaged gradient at j; its sum equals f(x) - f(x with token j at its start) (per-token completeness)."""
    alphas, weights = QUADRATURES[IG_METHOD](n_steps)
    drops = job.occlusion_drops(to_start=True)  # f(x) - f(x with token j at its start): (T, L_i) per input
    totals = [torch.zeros(d.shape[0], i.length, job.d_model, dtype=torch.float32, device=job.device)
              for d, i in zip(drops, job.inputs)]
    for which, item in enumerate(job.inputs):
        moving = torch.nonzero(item.delta[0].abs().sum(-1) > 0)[:, 0].tolist()
        if item.causal_from is not None:  # a token at or after every target explains nothing
            moving = [j for j in moving if j < int(item.causal_from.max())]
        for token in moving:
            grads = job.path_gradients(alphas, weights, only=(which, token))[which]  # (T, L, d)
            totals[which][:, token] = grads[:, token] * item.delta[0, token].float()
    change = sum(d.sum(dim=1) for d in drops)
    job.sig_change = change.cpu().numpy()
    deltas = sum(t.sum(dim=(1, 2)) for t in totals) - change
    return job.to_numpy(totals), deltas.cpu().numpy().astype(np.float32)


def discretized_integrated_gradients(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Discretized IG (Sanyal & Ren 2021, :mod:`.discretized`): each token's path runs from its baseline through
    monotonised embeddings of neighbouring words; the polyline is integrated with about DIG_DEFAULTS["nodes"]
    Gauss-Legendre points per segment, exactly n_steps gradient evaluations in all (:func:`.segment_nodes`). Rows
    sum to f(x) - f(start) up to deltas["dig"]."""
    from .discretized import DIG_DEFAULTS, monotonic_paths, polyline_rule, segment_nodes

    vocabularies = getattr(job.function, "vocabularies", None)
    if vocabularies is None:
        raise InputError("This model kind gives no token vocabulary, which discretized IG walks through; use 'ig'.")
    nodes = segment_nodes(n_steps, int(DIG_DEFAULTS["nodes"]))
    n_anchors = len(nodes) - 1
    points, steps = [], []
    for item, vocab in zip(job.inputs, vocabularies()):
        path = monotonic_paths(item.embeddings[0], item.start[0], vocab, n_anchors, int(DIG_DEFAULTS["neighbours"]),
                               str(DIG_DEFAULTS["strategy"]))
        p, q = polyline_rule(path, nodes)
        points.append(p)
        steps.append(q)
    job.dig_settings = {"dig_anchors": n_anchors, "dig_nodes_per_segment": nodes,
                        "dig_neighbours": int(DIG_DEFAULTS["neighbours"]), "dig_strategy": DIG_DEFAULTS["strategy"],
                        "dig_evaluations": int(points[0].shape[0])}
    return _with_completeness(job, "dig", job.line_integral(points, steps))


def _context_mixing(name: str) -> Callable[[AttributionJob, int], "tuple[np.ndarray, None]"]:
    """The engine's run of a context-mixing measure: its score spread as score / d_model per dimension; its
    per-layer and rolled-out matrices kept in job.mixing[name] as float32 (2, n_layers, n_targets, n_columns)."""

    def run(job: AttributionJob, n_steps: int) -> tuple[np.ndarray, None]:
        from ..components import mixing

        offer = getattr(job.function, "internals", None)
        if offer is None:
            raise InputError(f"{name!r} reads a causal language model's attention and value vectors, which this "
                             "model kind does not offer; use a gradient method (ig, grad_x_input, occlusion).")
        internals = offer()
        measure = {"value_zeroing": mixing.value_zeroing, "alti_logit": mixing.alti_logit,
                   "rollout": mixing.attention_rollout}[name]
        result = measure(internals)
        job.bar.update(1)
        matrices = np.zeros((2, *result.layers.shape[:2], internals.n_columns), dtype=np.float32)
        matrices[0, :, :, :internals.length] = result.layers.float().cpu().numpy()
        matrices[1, :, :, :internals.length] = result.rolled.float().cpu().numpy()
        job.mixing[name] = matrices
        spread = (result.score.float() / job.d_model)[:, :, None].expand(-1, -1, job.d_model)
        return job.to_numpy([spread]), None

    return run


@dataclass(frozen=True)
class Method:
    """An attribution method: its function and what its raw values mean (kept in attribution_settings)."""

    run: Callable[[AttributionJob, int], "tuple[np.ndarray, np.ndarray | None]"]
    meaning: str


METHODS: dict[str, Method] = {
    "ig": Method(integrated_gradients, "integrated gradients on the token embeddings: (x - baseline) * "
                                       "path-averaged gradient (0 at kept positions)"),
    "grad_x_input": Method(grad_x_input, "gradient * input (token embeddings)"),
    "saliency": Method(saliency, "|gradient| per embedding dimension"),
    "occlusion": Method(occlusion, "drop f(x) - f(x with the token's embedding set to the baseline), spread as "
                                   "drop / d_model per dimension"),
    "sig": Method(sequential_integrated_gradients, "sequential integrated gradients: each token moved alone from "
                                                   "its baseline to its input, (x_j - baseline_j) * path-averaged "
                                                   "gradient at j"),
    "dig": Method(discretized_integrated_gradients, "discretized integrated gradients: the line integral of the "
                                                    "gradient along a monotone path from the baseline through "
                                                    "neighbouring words' embeddings (0 at kept positions)"),
    "value_zeroing": Method(_context_mixing("value_zeroing"),
                            "value zeroing (Mohebbi et al. 2023): 1 - cosine of each block's output with token j's "
                            "value vectors zeroed in it, rows normalised, rolled out across layers; the target row's "
                            "score s_j (sums to 1) spread as s_j / d_model per dimension"),
    "alti_logit": Method(_context_mixing("alti_logit"),
                         "ALTI-Logit (Ferrando et al. 2023): each layer's attention update of the target's logit "
                         "(minus its foil's; pre-cap, final norm frozen) per source token, traced to the input "
                         "tokens through ALTI's rolled-out mixing of the layers below, summed over layers; the "
                         "score s_j (logit units, signed) spread as s_j / d_model per dimension"),
    "rollout": Method(_context_mixing("rollout"),
                      "attention rollout (Abnar & Zuidema 2020): head-averaged attention plus identity, rows "
                      "normalised, multiplied across layers; the target row's score s_j (sums to 1) spread as "
                      "s_j / d_model per dimension"),
}
