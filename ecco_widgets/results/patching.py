"""The result of activation patching: how much of the clean answer comes back when one point of the clean run is
restored in the corrupted run, for every layer and position.

>>> import numpy as np
>>> r = PatchingResult(clean_ids=np.array([1, 2]), corrupted_ids=np.array([1, 3]), clean_tokens=["A", " b"],
...     corrupted_tokens=["A", " c"], clean_raw_tokens=["A", "Ġb"], corrupted_raw_tokens=["A", "Ġc"],
...     answer=" x", foil=" y", answer_id=7, foil_id=8, points="resid", method="exact",
...     effect=np.array([[0.0, 1.0]], np.float32), clean_logit_diff=2.0, corrupted_logit_diff=-1.0)
>>> r.n_layers, r.n_positions, r.differing_positions
(1, 2, [1])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, NotAvailableError
from .storage import save_result


@dataclass
class PatchingResult:
    """Activation patching of one prompt pair.

    clean_ids / corrupted_ids: int (n_positions,), the same length; *_tokens / *_raw_tokens: their display text and
    raw pieces. answer / foil (and their ids): the logit difference answer - foil is read after the last position.
    points: "resid" (block l's output), "attn" (what block l's attention adds to the residual stream), "mlp" (what
    its MLP adds) or "head" (one attention head's output; effect, logit_diff and attribution_effect are then
    (n_layers, n_heads, n_positions) and topk_* (n_layers, n_heads, n_positions, k), with ``positions`` always set:
    ``[n - 1]``, the last one, unless others were asked). effect: float32 (n_layers, n_positions), (LD_patched -
    LD_corrupted) / (LD_clean - LD_corrupted) when point (l, p) of the clean run is restored in the corrupted run: 0 = corrupted, 1 = clean
    (method "attribution": the gradient estimate). logit_diff: float32 (n_layers, n_positions), the patched runs'
    LD. attribution_effect: float32 (n_layers, n_positions), the estimate (methods "attribution" and "both").
    topk_ids int32 / topk_probs float32 (n_layers, n_positions, k): the patched runs' top-k at the answer position;
    clean_topk_* / corrupted_topk_* (k,): the unpatched runs'. agreement: {"pearson", "sign_agreement"} of the
    estimate against the exact effects (method "both").
    """

    clean_ids: np.ndarray
    corrupted_ids: np.ndarray
    clean_tokens: list[str]
    corrupted_tokens: list[str]
    clean_raw_tokens: list[str]
    corrupted_raw_tokens: list[str]
    answer: str
    foil: str
    answer_id: int
    foil_id: int
    points: str
    method: str
    effect: np.ndarray
    clean_logit_diff: float
    corrupted_logit_diff: float
    logit_diff: np.ndarray | None = None
    attribution_effect: np.ndarray | None = None
    topk_ids: np.ndarray | None = None
    topk_probs: np.ndarray | None = None
    clean_topk_ids: np.ndarray | None = None
    clean_topk_probs: np.ndarray | None = None
    corrupted_topk_ids: np.ndarray | None = None
    corrupted_topk_probs: np.ndarray | None = None
    vocab_text: dict[int, str] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    layer_labels: list[str] = field(default_factory=list)
    model_name: str = ""
    #: the patched token positions, one column each (None: every position of the pair)
    positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.layer_labels:
            self.layer_labels = [str(i) for i in range(self.n_layers)]

    @property
    def n_layers(self) -> int:
        return int(self.effect.shape[0])

    @property
    def n_positions(self) -> int:
        """Columns of the effect: the patched positions."""
        return int(self.effect.shape[-1])

    @property
    def n_heads(self) -> int | None:
        """Heads per layer of a points="head" result, else None."""
        return int(self.effect.shape[1]) if self.points == "head" else None

    @property
    def differing_positions(self) -> list[int]:
        """Positions where the clean and corrupted tokens differ."""
        return [int(p) for p in np.nonzero(np.asarray(self.clean_ids) != np.asarray(self.corrupted_ids))[0]]

    def cell_topk(self, layer: int, position: int, head: int | None = None) -> list[tuple[str, float]]:
        """The patched run's top-k at the answer position when (layer, position) was restored (and, for points="head",
        that layer's ``head``): [(token, p), ...]."""
        if self.topk_ids is None or not self.topk_ids.size:
            raise NotAvailableError("This result has no patched runs (method='attribution'); run "
                                    "ew.patching(..., method='exact' or 'both') for their top-k.")
        n = len(self.clean_ids)
        if not (-self.n_layers <= layer < self.n_layers and -n <= position < n):
            raise InputError(f"({layer}, {position}) is outside the grid ({self.n_layers} layers x {n} positions).")
        heads = self.n_heads
        if (heads is None) != (head is None) or (heads is not None and not -heads <= head < heads):  # type: ignore
            raise InputError(f"head={head!r}: " + ("pass no head for points=" + repr(self.points) if heads is None
                             else f"a points='head' cell needs a head from 0 to {heads - 1}."))
        if self.positions is not None:  # a token position of the pair: its column
            patched = [int(p) for p in self.positions]
            if int(position) % n not in patched:
                raise InputError(f"Position {position} was not patched; this result has positions {patched}.")
            position = patched.index(int(position) % n)
        cell = (layer, position) if head is None else (layer, head, position)
        ids, probs = self.topk_ids[cell], self.topk_probs[cell]
        return [(self.vocab_text.get(int(i), str(int(i))), float(p)) for i, p in zip(ids, probs)]

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand can break that); [] when all is well."""
        n, problems = len(self.clean_ids), []
        if len(self.corrupted_ids) != n or len(self.clean_tokens) != n or len(self.corrupted_tokens) != n:
            problems.append(f"{n} clean and {len(self.corrupted_ids)} corrupted token ids, {len(self.clean_tokens)}"
                            f" / {len(self.corrupted_tokens)} tokens")
        columns = n if self.positions is None else len(self.positions)
        if self.positions is not None and (not len(self.positions) or np.min(self.positions) < 0
                                           or np.max(self.positions) >= n):
            problems.append(f"positions {np.asarray(self.positions).tolist()[:6]} outside the {n} tokens")
        ndim = 3 if self.points == "head" else 2
        if self.effect.ndim != ndim or self.effect.shape[-1] != columns:
            problems.append(f"effect of shape {self.effect.shape} for {columns} positions")
        for name in ("logit_diff", "attribution_effect"):
            value = getattr(self, name)
            if value is not None and value.shape != self.effect.shape:
                problems.append(f"{name} of shape {value.shape}, effect {self.effect.shape}")
        if self.topk_ids is not None and self.topk_ids.size and self.topk_ids.shape[:-1] != self.effect.shape:
            problems.append(f"topk_ids of shape {self.topk_ids.shape} for effect {self.effect.shape}")
        return problems

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (.npz); ``ew.load(path)`` reads it back as a PatchingResult."""
        return save_result(self, path)

    def grid(self, **view_options: Any):
        """The PatchingGrid view: layers x positions, diverging scale centred on 0, the prompt pair on top; click a
        cell for the patched run's top-k at the answer position. Options (title, theme, shown, ...) go to the view.
        A points="head" result gives a HeadPatchingGrid: layers x heads at the last patched position, a selector for
        the others (``selected_position=j``: column j of ``positions``)."""
        from ..views import HeadPatchingGrid, PatchingGrid

        def words(ids: np.ndarray | None) -> list[str]:
            return [self.vocab_text.get(int(i), str(int(i))) for i in ([] if ids is None else np.ravel(ids))]

        vocab_ids = sorted({int(i) for a in (self.topk_ids, self.clean_topk_ids, self.corrupted_topk_ids)
                            if a is not None for i in np.ravel(a)})
        index = {v: j for j, v in enumerate(vocab_ids)}
        remap = np.vectorize(lambda i: index[int(i)], otypes=[np.int32])
        topk = {}
        if self.topk_ids is not None and self.topk_ids.size:
            topk = {"topk_vocab": words(np.array(vocab_ids)), "topk_index": remap(self.topk_ids),
                    "topk_probs": self.topk_probs}
            if self.clean_topk_ids is not None and self.corrupted_topk_ids is not None:
                topk["reference_topk_index"] = remap(np.stack([self.clean_topk_ids, self.corrupted_topk_ids]))
                topk["reference_topk_probs"] = np.stack([self.clean_topk_probs, self.corrupted_topk_probs])
        exact = self.method != "attribution"
        view_options.setdefault("title", f"activation patching ({self.points}): {self.answer!r} vs {self.foil!r}")
        if self.points == "head":
            return HeadPatchingGrid(
                self.clean_tokens, self.corrupted_tokens, self.effect, positions=[int(p) for p in self.positions],
                clean_raw_tokens=self.clean_raw_tokens, corrupted_raw_tokens=self.corrupted_raw_tokens,
                effect_method="exact" if exact else "attribution",
                attribution_effect=self.attribution_effect if exact else None, agreement=dict(self.agreement),
                layer_labels=self.layer_labels, answer=self.answer, foil=self.foil,
                clean_logit_diff=self.clean_logit_diff, corrupted_logit_diff=self.corrupted_logit_diff,
                **topk, **view_options)
        cols = range(len(self.clean_tokens)) if self.positions is None else [int(p) for p in self.positions]
        return PatchingGrid(
            clean_tokens=[self.clean_tokens[p] for p in cols], corrupted_tokens=[self.corrupted_tokens[p] for p in cols],
            clean_raw_tokens=[self.clean_raw_tokens[p] for p in cols],
            corrupted_raw_tokens=[self.corrupted_raw_tokens[p] for p in cols],
            effect=self.effect, effect_method="exact" if exact else "attribution",
            attribution_effect=self.attribution_effect if exact else None, agreement=dict(self.agreement),
            layer_labels=self.layer_labels, answer=self.answer, foil=self.foil, points=self.points,
            clean_logit_diff=self.clean_logit_diff, corrupted_logit_diff=self.corrupted_logit_diff,
            **topk, **view_options)
