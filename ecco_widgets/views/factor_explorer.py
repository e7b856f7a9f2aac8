"""Neuron-activation factors (e.g. NMF components) over the tokens."""

from __future__ import annotations

import traitlets

from .base import RowSpec, RowsView


class FactorExplorer(RowsView):
    """A sparkline per factor; hovering one colours the tokens by it, click pins it.

    ``FactorExplorer(tokens, factors, *, factor_labels=None, selected_factor=-1,
    n_input_tokens=None, raw_tokens=None)``: ``factors`` has shape ``(n_components, n_tokens)``;
    labels default to ``"Factor i"``; ``selected_factor`` is -1 (none) or a factor. ``excluded_tokens``: token
    indices left out of the fit (``run_nmf(exclude_first=True)`` puts the first token here); the legend says so and
    the tokens are drawn hatched. With no factor hovered, each token is coloured by its dominant factors (up to 3,
    stacked in proportion); hovering a factor dims the other sparklines and colours the tokens by it.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import FactorExplorer
        >>> f = FactorExplorer(tokens=["a", "b", "c"], factors=np.random.rand(2, 3))
        >>> f.factor_labels
        ['Factor 0', 'Factor 1']
    """

    _bundle = "factor_explorer"
    _rows = RowSpec("factors", "n_components", "factor_labels", "Factor {}", "selected_factor")
    factors, factor_labels, selected_factor = _rows.traits()
    excluded_tokens = traitlets.List(traitlets.Int()).tag(sync=True)
