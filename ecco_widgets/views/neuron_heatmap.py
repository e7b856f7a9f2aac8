"""Neuron activations as a neurons x tokens heatmap."""

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


class NeuronHeatmap(TokenView):
    """Heatmap of ``activations`` (``(n_neurons, n_tokens)``), diverging scale centred on 0.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import NeuronHeatmap
        >>> h = NeuronHeatmap(tokens=["a", "b", "c"], activations=np.random.randn(4, 3),
        ...                   neuron_labels=["L0.N1", "L0.N7", "L1.N2", "L1.N9"])
        >>> h.selected_neuron
        -1
    """

    _bundle = "neuron_heatmap"

    activations = Array(ndim=2).tag(sync=True, **array_serialization)
    neuron_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_neuron = traitlets.Int(-1).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        activations: Any,
        *,
        neuron_labels: Sequence[str] | None = None,
        n_input_tokens: int | None = None,
        raw_tokens: Sequence[str] | None = None,
        selected_neuron: int = -1,
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        a = as_float_array(activations, "activations")
        check_shape(a, (None, n), "activations", f"(n_neurons, n_tokens={n})")
        labels = check_labels(neuron_labels, a.shape[0], "neuron_labels", "#{}")
        sel = check_index(selected_neuron, a.shape[0], "selected_neuron")
        super().__init__(**tk, activations=a, neuron_labels=labels, selected_neuron=sel, **kwargs)

    def _check(self) -> None:
        self._check_tokens()
        n = len(self.tokens)
        check_shape(self.activations, (None, n), "activations", f"(n_neurons, n_tokens={n})")
        check_labels(self.neuron_labels, self.activations.shape[0], "neuron_labels", "")
        check_index(self.selected_neuron, self.activations.shape[0], "selected_neuron")
