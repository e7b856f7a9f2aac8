"""Logit-lens rank grid: at each layer, the rank of the token that came next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_int_array
from .base import TokenView, check_labels, check_topk


class RankGrid(TokenView):
    """Rank of each next token at every layer (logit lens), one column per position.

    ``ranks[l, p]`` is the rank (1 = top) of ``tokens[p + 1]`` in layer ``l``'s prediction
    at position ``p``; so ``ranks`` has shape ``(n_layers, len(tokens) - 1)``.  The optional
    ``topk_*`` arrays feed the hover tooltip.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import RankGrid
        >>> toks = ["The", " cat", " sat", " on"]
        >>> g = RankGrid(tokens=toks, ranks=np.array([[9, 40, 7], [1, 3, 2]]), n_input_tokens=3)
        >>> g.selected_cell
        []
    """

    _bundle = "rank_grid"

    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks = Array(ndim=2).tag(sync=True, **array_serialization)
    topk_vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    topk_index = Array(ndim=3).tag(sync=True, **array_serialization)
    topk_probs = Array(ndim=3).tag(sync=True, **array_serialization)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)

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
        super().__init__(**tk, ranks=r, layer_labels=labels, **topk, selected_cell=sel, **kwargs)

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
