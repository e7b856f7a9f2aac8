"""Analyses on captured model internals: logit lens, attribution, activation factors, representation similarity.

>>> from ecco_widgets.analysis import cka
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(50, 4))
>>> round(cka(x, 2 * x), 6)
1.0
"""

from .similarity import CCAResult, cca, cka, pwcca, svcca

__all__ = ["CCAResult", "cca", "cka", "pwcca", "svcca"]
