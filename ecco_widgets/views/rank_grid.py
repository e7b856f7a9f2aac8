"""Logit-lens rank grid: at each layer, the rank of the token that came next (and, optionally, its
probability, the KL divergence to the final layer and the entropy, chosen with a switcher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import TokenView, check_choice, check_labels, check_topk, topk_traits

#: what a grid can be coloured by, and the argument that holds each metric's values
METRICS = ("rank", "prob", "kl", "entropy")
METRIC_ARGS = {"rank": "ranks", "prob": "target_probs", "kl": "kl_to_final", "entropy": "entropy"}
#: float error allowed below 0 (KL, entropy) and above 1 (probabilities); such values are clipped
TOLERANCE = 1e-4


def check_metric_arrays(shape: tuple[int, ...], meaning: str, **arrays: Any) -> dict[str, np.ndarray]:
    """Validate the optional float metrics ``target_probs`` / ``kl_to_final`` / ``entropy``.

    Each is ``None`` (absent: an empty float32 array is returned) or finite floats of ``shape``;
    probabilities lie in [0, 1], KL and entropy (nats) are >= 0 (float error up to ``TOLERANCE`` is clipped).

    >>> out = check_metric_arrays((1, 2), "(n_layers, n_positions)", target_probs=[[0.5, 1.0]], entropy=None)
    >>> out["target_probs"].dtype.name, out["entropy"].shape
    ('float32', (0, 0))
    """
    out = {}
    for name, value in arrays.items():
        if value is None:
            out[name] = np.zeros((0,) * len(shape), np.float32)
            continue
        with np.errstate(over="ignore"):  # float64 beyond float32's range: inf, reported below
            arr = as_float_array(value, name).astype(np.float32)
        if arr.shape != tuple(shape):
            raise ViewValueError(f"{name}: expected shape {tuple(shape)} {meaning}, like ranks; got {tuple(arr.shape)}")
        if not np.isfinite(arr).all():
            raise ViewValueError(f"{name}: contains NaN or infinite values (or values too large for float32)")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if name == "target_probs" and (lo < -TOLERANCE or hi > 1 + TOLERANCE):
            raise ViewValueError(f"target_probs: probabilities must be in [0, 1], got range [{lo:g}, {hi:g}]")
        if name != "target_probs" and lo < -TOLERANCE:
            raise ViewValueError(f"{name}: values are in nats and must be >= 0, got a minimum of {lo:g}")
        out[name] = np.clip(arr, 0.0, 1.0 if name == "target_probs" else None)
    return out


def check_metric(metric: Any, given: dict[str, np.ndarray]) -> str:
    """``metric`` if it is one of :data:`METRICS` and its array was given (``given``: argument -> array).

    >>> check_metric("rank", {})
    'rank'
    """
    check_choice(metric, METRICS, "metric")
    arg = METRIC_ARGS[metric]
    if arg != "ranks" and not given.get(arg, np.zeros(0)).size:
        raise ViewValueError(f"metric: {metric!r} needs {arg}=..., which was not given")
    return metric


class RankGrid(TokenView):
    """Rank of each next token at every layer (logit lens), one column per position.

    ``ranks[l, p]`` is the rank (1 = top) of ``tokens[p + 1]`` in layer ``l``'s prediction
    at position ``p``; so ``ranks`` has shape ``(n_layers, len(tokens) - 1)``.  The optional
    ``topk_*`` arrays feed the hover tooltip.  ``target_probs``, ``kl_to_final`` and ``entropy``
    (floats shaped like ``ranks``; KL(p_final || p_layer) and entropy in nats) add metrics to colour by:
    ``metric`` is one of ``"rank"``, ``"prob"``, ``"kl"``, ``"entropy"`` (switched in the browser too).
    ``first_layer[p]`` is the first layer from which ``tokens[p + 1]`` stays in the top ``first_layer_k``
    (-1 = never), drawn as a row under the grid.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import RankGrid
        >>> toks = ["The", " cat", " sat", " on"]
        >>> g = RankGrid(tokens=toks, ranks=np.array([[9, 40, 7], [1, 3, 2]]), n_input_tokens=3)
        >>> g.selected_cell
        []
        >>> g = RankGrid(toks, [[9, 40, 7], [1, 3, 2]], target_probs=[[0.01, 0, 0.02], [0.6, 0.2, 0.3]],
        ...              metric="prob", first_layer=[1, -1, -1])
        >>> g.metric, g.target_probs.dtype.name
        ('prob', 'float32')
    """

    _bundle = "rank_grid"

    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks = Array(ndim=2).tag(sync=True, **array_serialization)
    topk_vocab, topk_index, topk_probs = topk_traits(3)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)
    target_probs = Array(ndim=2).tag(sync=True, **array_serialization)
    kl_to_final = Array(ndim=2).tag(sync=True, **array_serialization)
    entropy = Array(ndim=2).tag(sync=True, **array_serialization)
    metric = traitlets.Unicode("rank").tag(sync=True)
    first_layer = Array(ndim=1).tag(sync=True, **array_serialization)
    first_layer_k = traitlets.Int(1).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        ranks: Any,
        *,
        n_input_tokens: int | None = None,
        raw_tokens: Sequence[str] | None = None,
        layer_labels: Sequence[str] | None = None,
        topk_vocab: Sequence[str] | None = None,
        topk_index: Any = None,
        topk_probs: Any = None,
        selected_cell: Sequence[int] = (),
        target_probs: Any = None,
        kl_to_final: Any = None,
        entropy: Any = None,
        metric: str = "rank",
        first_layer: Any = None,
        first_layer_k: int = 1,
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        if n < 2:
            raise ViewValueError("tokens: a rank grid needs at least 2 tokens")
        r = as_int_array(ranks, "ranks").astype(np.int32)
        if r.ndim != 2 or r.shape[1] != n - 1:
            raise ViewValueError(
                f"ranks: expected shape (n_layers, n_tokens - 1 = {n - 1}), got {tuple(r.shape)} "
                f"(ranks[l, p] is the rank of tokens[p + 1] predicted at position p)"
            )
        if r.size and r.min() < 1:
            raise ViewValueError(f"ranks: ranks start at 1 (top prediction), got {r.min()}")
        labels = check_labels(layer_labels, r.shape[0], "layer_labels", "L{}")
        topk = check_topk(topk_vocab, topk_index, topk_probs, r.shape)
        sel = self._valid_cell(list(selected_cell), r.shape)
        extra = check_metric_arrays(r.shape, "(n_layers, n_tokens - 1)", target_probs=target_probs,
                                    kl_to_final=kl_to_final, entropy=entropy)
        check_metric(metric, extra)
        k = self._valid_k(first_layer_k)
        first = self._valid_first_layer(first_layer, r.shape)
        super().__init__(**tk, ranks=r, layer_labels=labels, **topk, selected_cell=sel, **extra, metric=metric,
                         first_layer=first, first_layer_k=k, **kwargs)

    @traitlets.validate("metric")
    def _check_metric_trait(self, proposal: Any) -> str:
        return check_metric(proposal["value"], {n: getattr(self, n) for n in METRIC_ARGS.values()})

    @staticmethod
    def _valid_k(k: Any) -> int:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ViewValueError(f"first_layer_k: expected an int >= 1 (the top k), got {k!r}")
        return int(k)

    @staticmethod
    def _valid_first_layer(value: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``first_layer``: ints in -1..n_layers-1, one per position (``None``: empty)."""
        if value is None:
            return np.zeros(0, np.int32)
        f = as_int_array(value, "first_layer").astype(np.int32)
        if f.shape != (shape[1],):
            raise ViewValueError(f"first_layer: expected shape (n_tokens - 1 = {shape[1]},), one layer per "
                                 f"position, got {tuple(f.shape)}")
        if f.size and (f.min() < -1 or f.max() >= shape[0]):
            raise ViewValueError(f"first_layer: layers must be in -1 (never) .. {shape[0] - 1}, got range "
                                 f"[{f.min()}, {f.max()}]")
        return f

    @staticmethod
    def _valid_cell(cell: list[Any], shape: tuple[int, ...]) -> list[int]:
        if not cell:
            return []
        if len(cell) != 2 or not all(isinstance(c, (int, np.integer)) for c in cell):
            raise ViewValueError(f"selected_cell: expected [] or [layer, position], got {cell!r}")
        l, p = (int(c) for c in cell)
        if not (0 <= l < shape[0] and 0 <= p < shape[1]):
            raise ViewValueError(
                f"selected_cell: [{l}, {p}] is outside the grid ({shape[0]} layers x {shape[1]} positions)"
            )
        return [l, p]

    @property
    def n_layers(self) -> int:
        return int(self.ranks.shape[0])

    def _check(self) -> None:
        self._check_tokens()
        n = len(self.tokens)
        if self.ranks.shape[1] != n - 1:
            raise ViewValueError(
                f"ranks: expected {n - 1} positions for {n} tokens, got {self.ranks.shape[1]}"
            )
        check_labels(self.layer_labels, self.ranks.shape[0], "layer_labels", "L{}")
        if self.topk_index.size:
            check_topk(self.topk_vocab, self.topk_index, self.topk_probs, self.ranks.shape)
        self._valid_cell(list(self.selected_cell), self.ranks.shape)
        given = {n: getattr(self, n) for n in ("target_probs", "kl_to_final", "entropy")}
        check_metric_arrays(self.ranks.shape, "(n_layers, n_tokens - 1)",
                            **{n: (a if a.size else None) for n, a in given.items()})
        check_metric(self.metric, given)
        self._valid_k(self.first_layer_k)
        if self.first_layer.size:
            self._valid_first_layer(self.first_layer, self.ranks.shape)
