"""Sparse dictionaries (SAEs and transcoders) read from their producers' files, encoded and decoded as their
producers compute them: SAELens, sparsify, Gemma Scope 1 and 2; their sites on a model (sites.py) and the
features of a text, recorded in the one hooked forward (record.py).

>>> import torch
>>> from ecco_widgets.analysis.features import SAE
>>> sae = SAE(W_enc=torch.eye(3), W_dec=torch.eye(3), b_enc=torch.zeros(3), b_dec=torch.zeros(3))
>>> sae.decode(sae.encode(torch.tensor([[1.0, 2.0, -3.0]]))).tolist()
[[1.0, 2.0, 0.0]]
"""

from .record import FeatureRecorder
from .sae import SAE, fvu
from .sites import Site, resolve, sites_of

__all__ = ["SAE", "FeatureRecorder", "Site", "fvu", "resolve", "sites_of"]
