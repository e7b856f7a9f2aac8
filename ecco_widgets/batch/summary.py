"""Summaries of a batch run across its prompts, per layer and per distance, and their view.

- ``share_rank1`` (n_layers,): the share of prompts whose next token (rows.answer_column: the first generated token,
  or the text's last token) is already rank 1 when that layer is decoded;
- ``first_layer_counts`` (n_layers + 1,): how many prompts first reach rank 1 at each layer (last entry: never);
- ``mean_kl`` (n_layers,): KL(final || layer) in nats, averaged over each prompt's positions, then over prompts;
- ``attribution_by_distance`` {method: (MAX_DISTANCE,)}: the mean share of an explained token's attribution (the
  L2 norm over embedding dimensions, each row normalised to sum 1) that falls on the token d = 1, 2, ... places
  before it; the last entry is the share at MAX_DISTANCE places or more. A mean over every explained token of every
  prompt that has a token that far back (``distance_counts``: how many).

>>> import numpy as np
>>> shares_by_distance(np.array([[1.0, 0.0, 0.0], [0.25, 0.75, 0.0]]), np.array([1, 2]), max_distance=3)
(array([1.75, 0.25, 0.  ]), array([2, 1, 0]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.attribution.aggregate import aggregate_attributions
from .rows import answer_column, first_rank1_layer

#: Distances (tokens back) shown one by one; farther ones share the last bucket.
MAX_DISTANCE = 32


def shares_by_distance(normalised: np.ndarray, targets: np.ndarray, max_distance: int = MAX_DISTANCE
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Sum over rows of the attribution share at distance 1..max_distance (last: that far or farther), and how many
    rows reach each distance. normalised: (n_targets, n_tokens) rows summing to 1; targets: (n_targets,)."""
    sums = np.zeros(max_distance)
    counts = np.zeros(max_distance, dtype=np.int64)
    for row, t in zip(normalised, targets):
        t = int(t)
        if t < 1:
            continue
        shares = row[:t][::-1]  # shares[d - 1] = the token d places back
        near = min(t, max_distance - 1)
        sums[:near] += shares[:near]
        counts[:near] += 1
        if t >= max_distance:
            sums[-1] += shares[max_distance - 1:].sum()
            counts[-1] += 1
    return sums, counts


def summarize(results: Any) -> dict[str, Any]:
    """The summaries of a BatchResults (see the module docstring); arrays are float64 / int64."""
    share = first = kl = None
    n_ok = n_kl = 0
    labels: list[str] = []
    by_distance: dict[str, np.ndarray] = {}
    distance_counts: dict[str, np.ndarray] = {}
    for _, out in results.outputs():
        n_layers = out.ranks.shape[0]
        if share is None:
            share, first, kl = np.zeros(n_layers), np.zeros(n_layers + 1, dtype=np.int64), np.zeros(n_layers)
            labels = list(out.layer_labels) or [str(i) for i in range(n_layers)]
        if out.n_tokens < 2:
            continue
        n_ok += 1
        column = answer_column(out.n_tokens, out.n_input_tokens)
        share += out.ranks[:, column] == 1
        first[first_rank1_layer(out.ranks, column)] += 1  # -1 (never) is the last entry
        if out.kl_to_final is not None and out.kl_to_final.size:
            kl += out.kl_to_final.astype(np.float64).mean(axis=1)
            n_kl += 1
        for method in out.attributions_raw:
            sums, counts = shares_by_distance(aggregate_attributions(out.attributions_raw[method], "l2_normalized"),
                                              out.targets)
            by_distance[method] = by_distance.get(method, 0) + sums
            distance_counts[method] = distance_counts.get(method, 0) + counts
    n_layers = 0 if share is None else len(share)
    return {
        "n_prompts": n_ok, "n_errors": len(results.errors()), "layer_labels": labels,
        "share_rank1": share / max(n_ok, 1) if share is not None else np.zeros(0),
        "first_layer_counts": first if first is not None else np.zeros(1, dtype=np.int64),
        "mean_kl": kl / n_kl if n_kl else np.full(n_layers, np.nan),
        "attribution_by_distance": {m: np.divide(s, distance_counts[m], out=np.zeros_like(s),
                                                 where=distance_counts[m] > 0) for m, s in by_distance.items()},
        "distance_counts": distance_counts, "model": results.manifest.get("model", ""),
    }


def summary_view(results: Any, **view_options):
    """The summaries of ``results`` as a BatchSummary view."""
    from ..views.batch_summary import BatchSummary

    s = summarize(results)
    methods = list(s["attribution_by_distance"])
    view_options.setdefault("title", f"{s['model']}: {s['n_prompts']} prompts")
    return BatchSummary(layer_labels=s["layer_labels"], share_rank1=s["share_rank1"],
                        first_layer_counts=s["first_layer_counts"],
                        mean_kl=s["mean_kl"] if np.isfinite(s["mean_kl"]).all() else None,
                        methods=methods, attribution_by_distance=np.array(
                            [s["attribution_by_distance"][m] for m in methods]).reshape(len(methods), MAX_DISTANCE),
                        n_prompts=s["n_prompts"], n_errors=s["n_errors"], **view_options)
