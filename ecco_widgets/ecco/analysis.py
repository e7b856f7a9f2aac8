"""Ecco's ``ecco.analysis``: ``cka``, ``cca``, ``svcca``, ``pwcca`` on Ecco's layout, (neurons, token positions).

Each is this project's function (:mod:`ecco_widgets.analysis.similarity`, which takes (samples, features)) on the
transposed arrays. Differences from Ecco's copy of Google's svcca code: CCA is exact (no epsilon regulariser),
and PWCCA weighs each canonical correlation by its variate's projection on the *centred* neurons.

>>> import numpy as np
>>> acts = np.random.default_rng(0).normal(size=(8, 200))   # 8 neurons, 200 tokens
>>> round(cka(acts, 2 * acts), 6), round(float(cca(acts, acts[::-1])), 6)
(1.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from ..analysis import similarity

__all__ = ["cca", "cka", "pwcca", "svcca"]


def _samples(acts, name: str) -> np.ndarray:
    detach = getattr(acts, "detach", None)
    array = np.asarray(detach().cpu().numpy() if detach is not None else acts)
    if array.ndim != 2:
        from ..errors import InputError

        raise InputError(f"{name} must be a 2-D array (neurons, token positions), got shape {array.shape}.")
    return array.T


def cca(acts1, acts2) -> float:
    """Mean canonical correlation of two (neurons, positions) activation matrices (needs positions > neurons)."""
    return similarity.cca(_samples(acts1, "acts1"), _samples(acts2, "acts2"))


def svcca(acts1, acts2, dims: int = 20) -> float:
    """SVCCA: each side reduced to its top ``dims`` singular directions (Ecco's default 20), then mean CCA."""
    return similarity.svcca(_samples(acts1, "acts1"), _samples(acts2, "acts2"), keep=int(dims))


def pwcca(acts1, acts2, epsilon: float = 1e-10) -> float:
    """Projection-weighted CCA, weights from the side with fewer dimensions (as Google's code chooses).

    ``epsilon`` is accepted for Ecco's signature; the CCA here is exact."""
    del epsilon
    return similarity.pwcca(_samples(acts1, "acts1"), _samples(acts2, "acts2"))


def cka(acts1, acts2) -> float:
    """Linear centred kernel alignment of two (neurons, positions) activation matrices."""
    return similarity.cka(_samples(acts1, "acts1"), _samples(acts2, "acts2"))
