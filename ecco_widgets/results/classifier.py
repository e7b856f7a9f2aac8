"""The result of a sequence-classifier analysis: label probabilities and which tokens made the model choose a label.

>>> import numpy as np
>>> out = ClassifierOutput(token_ids=np.array([1, 5]), tokens=["[CLS]", "fine"], raw_tokens=["[CLS]", "fine"],
...     n_input_tokens=2, ranks=np.zeros((1, 0), np.int32), label_probs=np.array([0.2, 0.8], np.float32),
...     labels=["neg", "pos"], predicted_label=1, target_label=1)
>>> out.predicted_label_name
'pos'
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .output import Output

__all__ = ["ClassifierOutput"]


@dataclass
class ClassifierOutput(Output):
    """The Output of a sequence classifier. label_probs: float32 (n_labels,) (softmax; sigmoid for multi-label
    models; the raw score for a one-output regression head); labels: their names; predicted_label: argmax;
    target_label: the explained label. targets: [the position the head reads] (0 for [CLS], the last one for
    decoder-only classifiers). attributions(method) (1, n_tokens): every position may be non-zero.
    ranks is empty (n_layers, 0): there is no logit lens here. Save/load gives back a ClassifierOutput.
    """

    label_probs: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    predicted_label: int = -1
    target_label: int = -1

    @property
    def predicted_label_name(self) -> str:
        return self.labels[self.predicted_label]

    @property
    def target_label_name(self) -> str:
        return self.labels[self.target_label]

    def primary_attributions(self, method: str | None = None, aggregate: str = "l2_normalized",
                             style: str = "minimal", **view_options):
        """SaliencyView (causal=False: every token coloured) of the explained label's attributions."""
        view_options.setdefault("causal", False)
        view_options.setdefault("title", f"label {self.target_label_name!r} "
                                         f"(p = {float(self.label_probs[self.target_label]):.3g})")
        return super().primary_attributions(method, aggregate, style, **view_options)
