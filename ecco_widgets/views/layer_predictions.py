"""Each layer's top-k next-token predictions at one position (logit lens)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import ViewValueError
from .base import EccoView, check_labels, check_topk, topk_traits


class LayerPredictions(EccoView):
    """Per layer, the top-k tokens predicted after ``context_token``: one compact line per layer of chips (token,
    probability bar, percentage).

    ``topk_index`` (int, indices into ``topk_vocab``) and ``topk_probs`` have shape
    ``(n_layers, k)``. ``layers``: the layers shown (indices, negative from the end; default all); a select in
    the view thins them further (every 2nd, every 4th, the last 8) without leaving the browser.

    Example::

        >>> from ecco_widgets.views import LayerPredictions
        >>> lp = LayerPredictions(position=3, context_token=" the",
        ...                       topk_vocab=[" cat", " dog"], topk_index=[[0, 1], [1, 0]],
        ...                       topk_probs=[[0.5, 0.2], [0.7, 0.1]])
        >>> lp.layer_labels
        ['L0', 'L1']
        >>> LayerPredictions(topk_vocab=[" cat"], topk_index=[[0], [0]], topk_probs=[[0.5], [0.7]], layers=[-1]).layers
        [1]
    """

    _bundle = "layer_predictions"

    position = traitlets.Int(0).tag(sync=True)
    context_token = traitlets.Unicode("").tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    topk_vocab, topk_index, topk_probs = topk_traits(2)
    layers = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(
        self,
        topk_vocab: Sequence[str],
        topk_index: Any,
        topk_probs: Any,
        *,
        position: int = 0,
        context_token: str = "",
        layer_labels: Sequence[str] | None = None,
        layers: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ViewValueError(f"position: expected an int >= 0, got {position!r}")
        if not isinstance(context_token, str):
            raise ViewValueError(f"context_token: expected str, got {type(context_token).__name__}")
        idx_shape = np.shape(topk_index)
        if len(idx_shape) != 2:
            raise ViewValueError(f"topk_index: expected shape (n_layers, k), got {tuple(idx_shape)}")
        topk = check_topk(topk_vocab, topk_index, topk_probs, (idx_shape[0],))
        labels = check_labels(layer_labels, idx_shape[0], "layer_labels", "L{}")
        shown = check_layers(layers, idx_shape[0])
        super().__init__(position=position, context_token=context_token, layer_labels=labels, layers=shown, **topk,
                         **kwargs)

    def _check(self) -> None:
        check_topk(self.topk_vocab, self.topk_index, self.topk_probs, (self.topk_index.shape[0],))
        check_labels(self.layer_labels, self.topk_index.shape[0], "layer_labels", "L{}")


def check_layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    """The layers to show, ascending, each once, negatives from the end; [] (all) for None.

    >>> check_layers([-1, 0, 0], 4)
    [0, 3]
    """
    if layers is None:
        return []
    chosen = list(layers)
    bad = [x for x in chosen
           if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not -n_layers <= x < n_layers]
    if bad or not chosen:
        raise ViewValueError(f"layers: expected layer indices in -{n_layers}..{n_layers - 1} (one or more), "
                             f"got {layers!r}")
    return sorted({int(x) % n_layers for x in chosen})
