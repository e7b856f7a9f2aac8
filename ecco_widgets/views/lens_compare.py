"""Several lenses (logit lens, tuned lens, ...) side by side: one rank grid per lens on the same token axis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_int_array
from .base import TokenView, check_labels, check_tokens
from .rank_grid import METRIC_ARGS, RankGrid, check_metric, check_metric_arrays

_MEANING = "(n_lenses, n_layers, n_tokens - 1)"


class LensComparison(TokenView):
    """One grid per lens, stacked with the same columns, one colour scale and linked hover.

    ``ranks[i, l, p]`` is the rank (1 = top) of ``tokens[p + 1]`` under lens ``lens_names[i]`` at
    layer ``l`` and position ``p``.  ``target_probs``, ``kl_to_final`` (KL(p_final || p_layer), nats)
    and ``entropy`` (nats) are optional floats of the same shape; ``metric`` picks what colours the cells.
    Next to each grid a summary per layer: ``summary_top1`` (share of positions where the next token is
    the lens's top prediction) and ``summary_mean_kl`` (mean KL to the final layer, when given).

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import LensComparison
        >>> ranks = np.array([[[5, 1], [1, 1]], [[1, 2], [1, 1]]])  # 2 lenses, 2 layers, 2 positions
        >>> v = LensComparison(["a", "b", "c"], ["logit", "tuned"], ranks)
        >>> v.summary_top1.tolist()
        [[0.5, 1.0], [0.5, 1.0]]
    """

    _bundle = "lens_compare"

    lens_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks = Array(ndim=3).tag(sync=True, **array_serialization)
    target_probs = Array(ndim=3).tag(sync=True, **array_serialization)
    kl_to_final = Array(ndim=3).tag(sync=True, **array_serialization)
    entropy = Array(ndim=3).tag(sync=True, **array_serialization)
    metric = traitlets.Unicode("rank").tag(sync=True)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)
    summary_mean_kl = Array(ndim=2).tag(sync=True, **array_serialization)
    summary_top1 = Array(ndim=2).tag(sync=True, **array_serialization)

    def __init__(
        self,
        tokens: Sequence[str],
        lens_names: Sequence[str],
        ranks: Any,
        *,
        raw_tokens: Sequence[str] | None = None,
        n_input_tokens: int | None = None,
        layer_labels: Sequence[str] | None = None,
        target_probs: Any = None,
        kl_to_final: Any = None,
        entropy: Any = None,
        metric: str = "rank",
        selected_cell: Sequence[int] = (),
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        r = self._valid_ranks(ranks, len(tk["tokens"]))
        names = self._valid_names(lens_names, r.shape[0])
        labels = check_labels(layer_labels, r.shape[1], "layer_labels", "L{}")
        extra = check_metric_arrays(r.shape, _MEANING, target_probs=target_probs, kl_to_final=kl_to_final,
                                    entropy=entropy)
        check_metric(metric, extra)
        sel = RankGrid._valid_cell(list(selected_cell), r.shape[1:])
        super().__init__(**tk, lens_names=names, ranks=r, layer_labels=labels, **extra, metric=metric,
                         selected_cell=sel, **summaries(r, extra["kl_to_final"]), **kwargs)

    @staticmethod
    def _valid_ranks(ranks: Any, n: int) -> np.ndarray:
        if n < 2:
            raise ViewValueError("tokens: a lens comparison needs at least 2 tokens")
        r = as_int_array(ranks, "ranks").astype(np.int32)
        if r.ndim != 3 or r.shape[0] < 1 or r.shape[2] != n - 1:
            raise ViewValueError(
                f"ranks: expected shape (n_lenses, n_layers, n_tokens - 1 = {n - 1}), got {tuple(r.shape)} "
                f"(ranks[i, l, p] is the rank of tokens[p + 1] under lens i at layer l, position p)"
            )
        if r.size and r.min() < 1:
            raise ViewValueError(f"ranks: ranks start at 1 (top prediction), got {r.min()}")
        return r

    @staticmethod
    def _valid_names(names: Any, n_lenses: int) -> list[str]:
        out = check_tokens(names, "lens_names")
        if len(out) != n_lenses:
            raise ViewValueError(f"lens_names: {len(out)} names for {n_lenses} lenses (ranks.shape[0])")
        if len(set(out)) != len(out):
            raise ViewValueError(f"lens_names: names must be distinct, got {out}")
        return out

    @traitlets.validate("metric")
    def _check_metric_trait(self, proposal: Any) -> str:
        return check_metric(proposal["value"], {n: getattr(self, n) for n in METRIC_ARGS.values()})

    @traitlets.observe("ranks", "kl_to_final")
    def _summarize(self, change: Any) -> None:
        kl = self.kl_to_final if self.kl_to_final.shape == self.ranks.shape else np.zeros((0, 0, 0), np.float32)
        with self.hold_trait_notifications():
            for name, value in summaries(self.ranks, kl).items():
                setattr(self, name, value)

    @property
    def n_lenses(self) -> int:
        return int(self.ranks.shape[0])

    def _check(self) -> None:
        self._check_tokens()
        self._valid_ranks(self.ranks, len(self.tokens))
        self._valid_names(self.lens_names, self.ranks.shape[0])
        check_labels(self.layer_labels, self.ranks.shape[1], "layer_labels", "L{}")
        given = {n: getattr(self, n) for n in ("target_probs", "kl_to_final", "entropy")}
        check_metric_arrays(self.ranks.shape, _MEANING, **{n: (a if a.size else None) for n, a in given.items()})
        check_metric(self.metric, given)
        RankGrid._valid_cell(list(self.selected_cell), self.ranks.shape[1:])


def summaries(ranks: np.ndarray, kl_to_final: np.ndarray) -> dict[str, np.ndarray]:
    """Per lens and layer: the share of rank-1 positions and the mean KL to the final layer.

    ``summary_mean_kl`` is empty, shape (0, 0), when ``kl_to_final`` is.

    >>> s = summaries(np.array([[[1, 3, 1, 1]]]), np.array([[[0.5, 1.0, 0.0, 0.5]]]))
    >>> s["summary_top1"].tolist(), s["summary_mean_kl"].tolist()
    ([[0.75]], [[0.5]])
    """
    top1 = (ranks == 1).mean(axis=2).astype(np.float32)
    if not kl_to_final.size:
        return {"summary_top1": top1, "summary_mean_kl": np.zeros((0, 0), np.float32)}
    mean_kl = kl_to_final.astype(np.float64).mean(axis=2).astype(np.float32)
    return {"summary_top1": top1, "summary_mean_kl": mean_kl}
