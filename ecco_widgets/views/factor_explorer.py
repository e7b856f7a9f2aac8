"""Neuron-activation factors (e.g. NMF components) over the tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from ._base import (
    Array,
    TokenView,
    array_serialization,
    as_float_array,
    check_index,
    check_labels,
    check_shape,
)


class FactorExplorer(TokenView):
    """A sparkline per factor; hovering one colours the tokens by it, click pins it.

    ``factors`` has shape ``(n_components, n_tokens)``.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import FactorExplorer
        >>> f = FactorExplorer(tokens=["a", "b", "c"], factors=np.random.rand(2, 3))
        >>> f.factor_labels
        ['Factor 0', 'Factor 1']
    """

    _bundle = "factor_explorer"

    factors = Array(ndim=2).tag(sync=True, **array_serialization)
    factor_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_factor = traitlets.Int(-1).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        factors: Any,
        *,
        factor_labels: Sequence[str] | None = None,
        n_input_tokens: int | None = None,
        raw_tokens: Sequence[str] | None = None,
        selected_factor: int = -1,
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        f = as_float_array(factors, "factors")
        check_shape(f, (None, n), "factors", f"(n_components, n_tokens={n})")
        labels = check_labels(factor_labels, f.shape[0], "factor_labels", "Factor {}")
        sel = check_index(selected_factor, f.shape[0], "selected_factor")
        super().__init__(**tk, factors=f, factor_labels=labels, selected_factor=sel, **kwargs)

    def _check(self) -> None:
        self._check_tokens()
        n = len(self.tokens)
        check_shape(self.factors, (None, n), "factors", f"(n_components, n_tokens={n})")
        check_labels(self.factor_labels, self.factors.shape[0], "factor_labels", "")
        check_index(self.selected_factor, self.factors.shape[0], "selected_factor")
