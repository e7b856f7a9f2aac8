"""Neuron activations as a neurons x tokens heatmap."""

from __future__ import annotations

from .base import RowSpec, RowsView


class NeuronHeatmap(RowsView):
    """Heatmap of ``activations`` (``(n_neurons, n_tokens)``), diverging scale centred on 0.

    ``NeuronHeatmap(tokens, activations, *, neuron_labels=None, selected_neuron=-1,
    n_input_tokens=None, raw_tokens=None)``: labels default to ``"#i"``; click selects a neuron.

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
