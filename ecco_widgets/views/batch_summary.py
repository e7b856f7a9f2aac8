"""Summaries of a batch run across its prompts: rank-1 share, first rank-1 layer, mean KL per layer, attribution by
distance (see :mod:`ecco_widgets.batch.summary` for the definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import EccoView, check_labels, check_tokens


class BatchSummary(EccoView):
    """Four small charts over a dataset of prompts.

    share_rank1 (n_layers,) in [0, 1]; first_layer_counts (n_layers + 1,) (last: never rank 1); mean_kl (n_layers,)
    or None; attribution_by_distance (n_methods, n_distances), one row per name in ``methods`` (the last distance
    is "that far or farther").

    Example::

        >>> from ecco_widgets.views import BatchSummary
        >>> v = BatchSummary(layer_labels=["0", "1"], share_rank1=[0.25, 1.0], first_layer_counts=[1, 3, 0],
        ...                  n_prompts=4)
        >>> v.first_layer_counts.tolist()
        [1, 3, 0]
    """

    _bundle = "batch_summary"

    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    share_rank1 = Array(ndim=1).tag(sync=True, **array_serialization)
    first_layer_counts = Array(ndim=1).tag(sync=True, **array_serialization)
    mean_kl = Array(ndim=1, allow_none=True).tag(sync=True, **array_serialization)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    attribution_by_distance = Array(ndim=2, allow_none=True).tag(sync=True, **array_serialization)
    n_prompts = traitlets.Int(0).tag(sync=True)
    n_errors = traitlets.Int(0).tag(sync=True)

    def __init__(self, layer_labels: Sequence[str], share_rank1: Any, first_layer_counts: Any, *,
                 mean_kl: Any = None, methods: Sequence[str] = (), attribution_by_distance: Any = None,
                 n_prompts: int = 0, n_errors: int = 0, **kwargs: Any) -> None:
        share = as_float_array(share_rank1, "share_rank1").astype(np.float32)
        labels = check_labels(list(layer_labels), share.shape[0], "layer_labels", "{}")
        counts = as_int_array(first_layer_counts, "first_layer_counts").astype(np.int32)
        kl = None if mean_kl is None else as_float_array(mean_kl, "mean_kl").astype(np.float32)
        names = check_tokens(methods, "methods", allow_empty=True)
        by_distance = None
        if names:
            by_distance = as_float_array(attribution_by_distance, "attribution_by_distance").astype(np.float32)
        super().__init__(layer_labels=labels, share_rank1=share, first_layer_counts=counts, mean_kl=kl,
                         methods=names, attribution_by_distance=by_distance, n_prompts=int(n_prompts),
                         n_errors=int(n_errors), **kwargs)
        self._check()

    def _check(self) -> None:
        n = self.share_rank1.shape[0]
        if self.share_rank1.size and (self.share_rank1.min() < 0 or self.share_rank1.max() > 1):
            raise ViewValueError("share_rank1: shares lie in [0, 1]")
        if self.first_layer_counts.shape[0] != n + 1:
            raise ViewValueError(f"first_layer_counts: expected n_layers + 1 = {n + 1} entries (the last: never), "
                                 f"got {self.first_layer_counts.shape[0]}")
        if self.mean_kl is not None and self.mean_kl.shape[0] != n:
            raise ViewValueError(f"mean_kl: expected {n} entries (one per layer), got {self.mean_kl.shape[0]}")
        if self.methods and (self.attribution_by_distance is None
                             or self.attribution_by_distance.shape[0] != len(self.methods)):
            raise ViewValueError("attribution_by_distance: one row per method is required")
