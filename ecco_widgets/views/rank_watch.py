"""Rank of a few chosen ("watched") tokens at every layer, at one position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_int_array
from .base import EccoView, check_index, check_labels, check_tokens


class RankWatch(EccoView):
    """Ranks of ``watch_tokens`` in each layer's prediction after ``tokens[position]``.

    ``ranks`` has shape ``(n_layers, len(watch_tokens))``; rank 1 = top prediction.

    Example::

        >>> from ecco_widgets.views import RankWatch
        >>> w = RankWatch(tokens=["The", " keys", " to", " the", " cabinet"],
        ...               watch_tokens=[" is", " are"], ranks=[[50, 80], [3, 1]])
        >>> w.position
        4
    """

    _bundle = "rank_watch"

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    position = traitlets.Int(0).tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    watch_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks = Array(ndim=2).tag(sync=True, **array_serialization)

    def __init__(
        self,
        tokens: Sequence[str],
        watch_tokens: Sequence[str],
        ranks: Any,
        *,
        position: int | None = None,
        layer_labels: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        toks = check_tokens(tokens, "tokens")
        watch = check_tokens(watch_tokens, "watch_tokens")
        pos = len(toks) - 1 if position is None else check_index(position, len(toks), "position", allow_none=False)
        r = as_int_array(ranks, "ranks").astype(np.int32)
        if r.ndim == 1 and len(watch) == r.shape[0]:
            r = r[None]
        if r.ndim != 2 or r.shape[1] != len(watch):
            raise ViewValueError(
                f"ranks: expected shape (n_layers, n_watch = {len(watch)}), got {tuple(r.shape)}"
            )
        if r.size and r.min() < 1:
            raise ViewValueError(f"ranks: ranks start at 1 (top prediction), got {r.min()}")
        labels = check_labels(layer_labels, r.shape[0], "layer_labels", "L{}")
        super().__init__(
            tokens=toks, position=pos, layer_labels=labels, watch_tokens=watch, ranks=r, **kwargs
        )

    def _check(self) -> None:
        check_index(self.position, len(self.tokens), "position", allow_none=False)
        if self.ranks.shape[1] != len(self.watch_tokens):
            raise ViewValueError("ranks: one column per watched token is required")
        check_labels(self.layer_labels, self.ranks.shape[0], "layer_labels", "L{}")
