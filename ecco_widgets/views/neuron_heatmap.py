"""Neuron activations as a neurons x tokens heatmap."""

from __future__ import annotations

import math
from typing import Any

import traitlets

from ..errors import InputError
from .base import RowSpec, RowsView


class NeuronHeatmap(RowsView):
    """Heatmap of ``activations`` (``(n_neurons, n_tokens)``), diverging scale centred on 0.

    ``NeuronHeatmap(tokens, activations, *, neuron_labels=None, selected_neuron=-1,
    n_input_tokens=None, raw_tokens=None, exclude_first=True, focus_token=-1, clip_percentile=None)``: labels
    default to ``"#i"``;
    click selects a neuron. Every column is labelled with its token. ``exclude_first`` (default True): the colour
    scale is set by tokens 1..n only, so that the first token (the attention sink, often 10x the others) does not
    wash out the rest; its cells are drawn at the scale's end and the legend names the clipped range.
    ``focus_token``: a column scrolled into view and outlined (-1 = none). ``clip_percentile`` (50..100, default
    None = the largest value): the scale's limit is that percentile of |activation| over the scale's columns
    (``numpy.percentile(..., method="inverted_cdf")``), so that a few outliers anywhere do not wash out the rest;
    the cells beyond are drawn at the ends and the legend says how many.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import NeuronHeatmap
        >>> h = NeuronHeatmap(tokens=["a", "b", "c"], activations=np.random.randn(4, 3),
        ...                   neuron_labels=["L0.N1", "L0.N7", "L1.N2", "L1.N9"])
        >>> h.selected_neuron
        -1
    """

    _bundle = "neuron_heatmap"
    _rows = RowSpec("activations", "n_neurons", "neuron_labels", "#{}", "selected_neuron")
    activations, neuron_labels, selected_neuron = _rows.traits()
    exclude_first = traitlets.Bool(True).tag(sync=True)
    focus_token = traitlets.Int(-1).tag(sync=True)
    clip_percentile = traitlets.Float(None, allow_none=True).tag(sync=True)

    @traitlets.validate("clip_percentile")
    def _valid_clip(self, proposal: Any) -> float | None:
        p = proposal["value"]
        if p is not None and not (math.isfinite(p) and 50 <= p <= 100):
            raise InputError(f"clip_percentile must be a percentile from 50 to 100 (e.g. 99), or None for the "
                             f"largest value; got {p!r}.")
        return p
