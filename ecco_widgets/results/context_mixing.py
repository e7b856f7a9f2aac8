"""How the context of each explained token was mixed, layer by layer: the per-layer and rolled-out matrices of a
context-mixing method (value zeroing, ALTI-Logit, rollout), for a "layers x source tokens" view.

``out.context_mixing(method)`` builds a :class:`ContextMixing` from the output's ``mixing_raw[method]`` (float32
(2, n_layers, n_targets, n_tokens), saved and loaded with the output like ``attributions_raw``).

>>> import numpy as np
>>> raw = np.zeros((2, 2, 1, 3), dtype=np.float32)
>>> raw[0, :, 0, :2] = [[0.5, 0.5], [0.2, 0.8]]; raw[1, :, 0, :2] = [[0.5, 0.5], [0.3, 0.7]]
>>> mixing = ContextMixing.of("rollout", raw, tokens=["a", "b", "c"], targets=np.array([2]))
>>> mixing.score.tolist(), mixing.at(2)[1].tolist()
([[0.30000001192092896, 0.699999988079071, 0.0]], [[0.5, 0.5, 0.0], [0.30000001192092896, 0.699999988079071, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

#: What ``rolled`` holds per method, and how the score follows from it.
ROLLED = {
    "value_zeroing": "R_l = S_l R_(l-1): the target row traced to the input tokens through layers 0..l; score = "
                     "the last layer's row",
    "rollout": "R_l = A_l R_(l-1): the target row traced to the input tokens through layers 0..l; score = the last "
               "layer's row",
    "alti_logit": "layer l's logit update traced to the input tokens through ALTI of layers 0..l-1; score = the sum "
                  "over layers",
}


@dataclass
class ContextMixing:
    """method; tokens (n_tokens,); targets int (n_targets,) positions explained; layers float32 (n_layers, n_targets,
    n_tokens): each layer's own matrix at the row predicting each target (value zeroing: normalised 1 - cosine;
    rollout: mean attention + I, normalised; alti_logit: the layer's attention update of the logit per source token
    at that layer); rolled: the same traced to the input tokens (see ROLLED)."""

    method: str
    tokens: list[str]
    targets: np.ndarray
    layers: np.ndarray
    rolled: np.ndarray

    @classmethod
    def of(cls, method: str, raw: np.ndarray, tokens: list[str], targets: np.ndarray) -> "ContextMixing":
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim != 4 or raw.shape[0] != 2 or raw.shape[2] != len(targets):
            raise InputError(f"Context-mixing matrices of {method!r} must be (2, n_layers, n_targets, n_tokens) with "
                             f"{len(targets)} targets; got shape {raw.shape}.")
        return cls(method, list(tokens), np.asarray(targets), raw[0], raw[1])

    @property
    def score(self) -> np.ndarray:
        """float32 (n_targets, n_tokens): the method's score (what out.attributions(method) shows)."""
        return self.rolled.sum(0) if self.method == "alti_logit" else self.rolled[-1]

    def at(self, target: int) -> tuple[np.ndarray, np.ndarray]:
        """(layers, rolled) for the token at position ``target`` (negative from the end): each (n_layers, n_tokens)."""
        position = target % len(self.tokens) if target < 0 else target
        hits = np.nonzero(self.targets == position)[0]
        if not len(hits):
            raise InputError(f"Position {target} was not explained; explained positions: {self.targets.tolist()}.")
        return self.layers[:, hits[0]], self.rolled[:, hits[0]]

    def view(self, position: int | None = None, **kwargs: Any) -> Any:
        """A :class:`~ecco_widgets.views.ContextMixingView` of these matrices, showing the token at ``position``
        (None: the last explained; negative from the end); ``kwargs`` go to the view (``mode="rolled"``, ``title``).

        >>> raw = np.zeros((2, 2, 1, 3), dtype=np.float32)
        >>> ContextMixing.of("rollout", raw, ["a", "b", "c"], np.array([2])).view().selected_token
        -1
        """
        from ..views.context_mixing import ContextMixingView

        selected = -1
        if position is not None:
            self.at(position)  # refuses a position that was not explained
            selected = position % len(self.tokens) if position < 0 else position
        return ContextMixingView(self.tokens, self.targets, self.layers, self.rolled, score=self.score,
                                 method=self.method, selected_token=selected, **kwargs)
