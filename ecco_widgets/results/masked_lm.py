"""The result of a masked-LM analysis: ranks of the token *at* each position, mask positions, bidirectional saliency.

>>> import numpy as np
>>> out = MaskedLMOutput(token_ids=np.array([2, 5, 3]), tokens=["[CLS]", "cat", "[SEP]"], raw_tokens=["[CLS]",
...     "cat", "[SEP]"], n_input_tokens=3, ranks=np.ones((2, 3), np.int32), mask_positions=np.array([1]))
>>> out.mask_positions.tolist(), out.has_head
([1], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import NotAvailableError
from .output import Output

__all__ = ["MaskedLMOutput"]


@dataclass
class MaskedLMOutput(Output):
    """An Output of a masked LM. Differences from a causal LM's Output:

    ranks, target_probs: (n_layers, n_tokens), one column per position (the token *at* p, not p+1); for a model
    without an MLM head ranks is empty, shape (n_layers, 0). topk_ids / topk_probs: (n_layers, n_tokens, k).
    mask_positions: int (n_masked,) positions replaced by the mask token; input_ids: what the model saw (token_ids
    hold the true tokens). has_head: whether predictions exist. With attribution=...: targets = mask_positions and
    attributions(method) (n_masked, n_tokens) are non-zero on both sides of each masked position (bidirectional).
    Save/load gives back a MaskedLMOutput with every field.
    """

    mask_positions: np.ndarray | None = None
    input_ids: np.ndarray | None = None
    has_head: bool = True

    def _require_head(self, what: str) -> None:
        if not self.has_head:
            raise NotAvailableError(
                f"{what} needs predictions, but {self.model_name} has no masked-LM head (it is an encoder such as "
                "BertModel). Load a model with its MLM head (AutoModelForMaskedLM); hidden states, activations "
                "(run_nmf, top_neurons) and attention are available."
            )

    def layer_topk(self, position: int, k: int = 10) -> list[dict[str, Any]]:
        """Per layer, the top-k predictions for the token *at* ``position``."""
        self._require_head("layer_topk")
        return super().layer_topk(position, k)

    def watch_ranks(self, tokens: Sequence[str | int], position: int = -1) -> np.ndarray:
        """Ranks, at every layer, of chosen tokens as the prediction for the token at ``position``."""
        self._require_head("watch_ranks")
        return super().watch_ranks(tokens, position)

    def rankings(self, **view_options):
        self._require_head("rankings")
        raise NotAvailableError(
            "The RankGrid view shows next-token ranks (column p predicts token p+1); a masked LM predicts the token "
            "at its own position. Read out.ranks (n_layers, n_tokens) directly, or use out.layer_predictions(p) "
            "and out.rankings_watch([...], position=p)."
        )

    def primary_attributions(self, method: str | None = None, aggregate: str = "l2_normalized",
                             style: str = "minimal", **view_options):
        """SaliencyView of the attributions of each masked position: bidirectional (causal=False), so tokens
        before and after a masked position, and the position itself, are coloured."""
        view_options.setdefault("causal", False)
        return super().primary_attributions(method, aggregate, style, **view_options)
