"""Ecco's ``NMF`` object: the factors of ``output.run_nmf(...)`` and ``nmf.explore()``, over a native NMFResult.

>>> import numpy as np
>>> from ecco_widgets.results import NMFResult
>>> native = NMFResult(factors=np.ones((2, 3), np.float32), components=np.ones((2, 4), np.float32),
...                    reconstruction_error=0.0, layers=[0], positions=np.arange(3), tokens=list("abc"),
...                    neuron_index=np.zeros((4, 2), np.int64))
>>> NMF(native).components.shape
(2, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NMF:
    """Ecco's NMF result: ``components`` (n_components, n_tokens), the factor values at each token (Ecco's
    ``fit_transform(...).T``), ``n_components``, ``explore()``; ``native`` is this project's NMFResult (the neuron
    weights of each factor are ``native.components``)."""

    def __init__(self, native: Any) -> None:
        self.native = native

    def __repr__(self) -> str:
        return f"ecco.NMF({self.native!r})"

    @property
    def components(self) -> np.ndarray:
        return self.native.factors.copy()

    @property
    def n_components(self) -> int:
        return self.native.n_components

    def explore(self, input_sequence: int = 0, **view_options):
        """FactorExplorer: a sparkline per factor over the tokens; hovering colours the tokens by it."""
        if input_sequence != 0:
            from ..errors import InputError

            raise InputError("Each output here holds one sequence: input_sequence must be 0.")
        return self.native.explore(**view_options)
