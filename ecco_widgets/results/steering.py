"""The plain and the steered continuation of one prompt (``lm.generate(prompt, steer={sae: {feature: value}})``),
aligned token by token; ``.view()`` shows them side by side with the differing tokens marked (a PromptPairView:
A = plain, B = steered). Saved and loaded as its own result (``ew.load``).

>>> import numpy as np
>>> r = SteeringResult(model_name="m", token_ids_plain=np.array([1, 2, 3]), token_ids_steered=np.array([1, 2, 4]),
...     tokens_plain=["A", " b", " c"], tokens_steered=["A", " b", " d"], raw_tokens_plain=["A", "Ġb", "Ġc"],
...     raw_tokens_steered=["A", "Ġb", "Ġd"], n_input_tokens=2, ranks_plain=np.array([[3, 1]], np.int32),
...     ranks_steered=np.array([[3, 2]], np.int32),
...     steer=[{"dictionary": "d", "site": "h.0 output", "feature": 5, "mode": "clamp", "value": 4.0}])
>>> r.plain_text, r.steered_text, r.differs.tolist()
(' c', ' d', [False, False, True])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotAvailableError
from .prompt_pair import PromptPair, align
from .storage import save_result


@dataclass
class SteeringResult:
    """Two greedy continuations of one prompt by one model: without (``*_plain``) and with the steering.

    token_ids_* int64 (n_tokens,), tokens_* / raw_tokens_*: the prompt then the continuation; n_input_tokens: the
    prompt's length; ranks_* int32 (n_layers, n_tokens - 1): each analysis' lens ranks (the steered one analysed
    with the steering on). steer: [{"dictionary", "site", "feature", "mode" ("clamp" / "add"), "value"}].
    ``plain`` / ``steered``: the two full Outputs in the session that made them (None once loaded).
    """

    model_name: str
    token_ids_plain: np.ndarray
    token_ids_steered: np.ndarray
    tokens_plain: list[str]
    tokens_steered: list[str]
    raw_tokens_plain: list[str]
    raw_tokens_steered: list[str]
    n_input_tokens: int
    ranks_plain: np.ndarray
    ranks_steered: np.ndarray
    steer: list[dict[str, Any]] = field(default_factory=list)
    layer_labels: list[str] = field(default_factory=list)
    _outputs: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, plain: Any, steered: Any, steer: list[dict[str, Any]]) -> "SteeringResult":
        """From the two analysed Outputs (the same prompt)."""
        result = cls(model_name=plain.model_name, token_ids_plain=np.asarray(plain.token_ids, np.int64).copy(),
                     token_ids_steered=np.asarray(steered.token_ids, np.int64).copy(),
                     tokens_plain=list(plain.tokens), tokens_steered=list(steered.tokens),
                     raw_tokens_plain=list(plain.raw_tokens), raw_tokens_steered=list(steered.raw_tokens),
                     n_input_tokens=int(plain.n_input_tokens), ranks_plain=np.asarray(plain.ranks, np.int32).copy(),
                     ranks_steered=np.asarray(steered.ranks, np.int32).copy(), steer=list(steer),
                     layer_labels=list(plain.layer_labels))
        result._outputs = (plain, steered)
        return result

    @property
    def plain(self) -> Any:
        return None if self._outputs is None else self._outputs[0]

    @property
    def steered(self) -> Any:
        return None if self._outputs is None else self._outputs[1]

    @property
    def plain_text(self) -> str:
        """The plain continuation (after the prompt)."""
        return "".join(self.tokens_plain[self.n_input_tokens:])

    @property
    def steered_text(self) -> str:
        """The steered continuation (after the prompt)."""
        return "".join(self.tokens_steered[self.n_input_tokens:])

    def pair(self) -> PromptPair:
        """The two continuations as a PromptPair (A = plain, B = steered), aligned position by position (by difflib
        when one stopped early)."""
        keys = [[int(i) for i in ids] for ids in (self.token_ids_plain, self.token_ids_steered)]
        return PromptPair(
            model_name=self.model_name, tokens_a=list(self.tokens_plain), tokens_b=list(self.tokens_steered),
            raw_tokens_a=list(self.raw_tokens_plain), raw_tokens_b=list(self.raw_tokens_steered),
            token_ids_a=self.token_ids_plain, token_ids_b=self.token_ids_steered, alignment=align(*keys),
            ranks_a=self.ranks_plain, ranks_b=self.ranks_steered, n_input_tokens_a=self.n_input_tokens,
            n_input_tokens_b=self.n_input_tokens, layer_labels=list(self.layer_labels))

    @property
    def differs(self) -> np.ndarray:
        """bool (n_aligned,): the aligned tokens differ (or one side has none)."""
        return self.pair().differs

    def view(self, **view_options: Any):
        """PromptPairView: the plain (A) and steered (B) tokens aligned, differences marked, and the rank-grid
        difference."""
        return self.pair().view(**view_options)

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand); [] when all is well."""
        problems = []
        for side in ("plain", "steered"):
            n = len(getattr(self, f"token_ids_{side}"))
            if len(getattr(self, f"tokens_{side}")) != n or len(getattr(self, f"raw_tokens_{side}")) != n:
                problems.append(f"{side}: tokens disagree with its {n} token ids")
            if getattr(self, f"ranks_{side}").ndim != 2 or getattr(self, f"ranks_{side}").shape[-1] not in (0, n - 1):
                problems.append(f"{side}: ranks {getattr(self, f'ranks_{side}').shape} for {n} tokens")
            if not 0 <= self.n_input_tokens <= n:
                problems.append(f"n_input_tokens={self.n_input_tokens} for {n} {side} tokens")
        return problems

    def save(self, path: str | Path) -> Path:
        """Write it to one .npz file; ``ew.load`` reads it back as a SteeringResult (without the two Outputs)."""
        return save_result(self, path)

    def require_outputs(self) -> tuple[Any, Any]:
        """(plain, steered) Outputs; NotAvailableError on a loaded result."""
        if self._outputs is None:
            raise NotAvailableError("A loaded SteeringResult keeps the tokens and ranks, not the full Outputs: run "
                                    "lm.generate(prompt, steer=...) again for them.")
        return self._outputs

    def __repr__(self) -> str:
        changed = ", ".join(f"{d['mode']} {d['dictionary']}[{d['feature']}] {d['value']:g}" for d in self.steer)
        return f"SteeringResult({changed or 'no steering'}: {self.plain_text!r} -> {self.steered_text!r})"
