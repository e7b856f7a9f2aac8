"""Neuron activations as a neurons x tokens heatmap."""

from __future__ import annotations

import traitlets

from .base import RowSpec, RowsView


class NeuronHeatmap(RowsView):
    """Heatmap of ``activations`` (``(n_neurons, n_tokens)``), diverging scale centred on 0.

    ``NeuronHeatmap(tokens, activations, *, neuron_labels=None, selected_neuron=-1,
    n_input_tokens=None, raw_tokens=None, exclude_first=True, focus_token=-1)``: labels default to ``"#i"``;
    click selects a neuron. Every column is labelled with its token. ``exclude_first`` (default True): the colour
    scale is set by tokens 1..n only, so that the first token (the attention sink, often 10x the others) does not
    wash out the rest; its cells are drawn at the scale's end and the legend names the clipped range.
    ``focus_token``: a column scrolled into view and outlined (-1 = none).

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
