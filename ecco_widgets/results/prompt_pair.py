"""Two prompts side by side (``ew.compare(out_a, out_b)``): aligned tokens, the rank-grid difference, saliency.

Prompts of the same length are aligned position by position; others by difflib over their token ids (over the
pieces of each word at word level), with gaps (-1) where one prompt has tokens the other has not.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> a = Output(token_ids=np.array([1, 2, 3]), tokens=["The", " key", " is"], raw_tokens=["The", "Ġkey", "Ġis"],
...            n_input_tokens=3, ranks=np.array([[4, 1]], np.int32), model_name="m")
>>> b = Output(token_ids=np.array([1, 5, 6, 3]), tokens=["The", " ke", "ys", " is"],
...            raw_tokens=["The", "Ġke", "ys", "Ġis"], n_input_tokens=4, ranks=np.array([[4, 2, 10]], np.int32),
...            model_name="m")
>>> pair = compare(a, b)
>>> pair.alignment.tolist(), pair.differs.tolist()
([[0, 0], [1, 1], [-1, 2], [2, 3]], [False, True, True, False])
>>> pair.rank_difference().round(3)  # log10(rank B / rank A); NaN: no cell in one of them
array([[0.   , 0.301,   nan,   nan]], dtype=float32)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, NotAvailableError
from .storage import save_result


@dataclass
class PromptPair:
    """Two analyses of one model aligned token by token.

    tokens_* / raw_tokens_* / token_ids_* / n_input_tokens_*: each prompt's tokens (words at unit "word").
    alignment: int64 (n_aligned, 2), [i_a, i_b] per aligned column, -1 where that prompt has no token (a gap).
    ranks_a / ranks_b: int32 (n_layers, n_tokens - 1), each prompt's rank grid (rank of token p+1 at position p).
    methods, aggregate: the attribution methods both outputs have and how they were reduced; targets_*: int64
    (n_targets,); attributions_*: float32 (n_methods, n_targets, n_tokens) (empty without attributions).
    """

    model_name: str
    tokens_a: list[str]
    tokens_b: list[str]
    raw_tokens_a: list[str]
    raw_tokens_b: list[str]
    token_ids_a: np.ndarray
    token_ids_b: np.ndarray
    alignment: np.ndarray
    ranks_a: np.ndarray
    ranks_b: np.ndarray
    n_input_tokens_a: int = 0
    n_input_tokens_b: int = 0
    layer_labels: list[str] = field(default_factory=list)
    unit: str = "token"
    methods: list[str] = field(default_factory=list)
    aggregate: str = "l2_normalized"
    targets_a: np.ndarray | None = None
    targets_b: np.ndarray | None = None
    attributions_a: np.ndarray | None = None
    attributions_b: np.ndarray | None = None
    _out_a: Any = field(default=None, repr=False, compare=False)  # the outputs (their recorded components, if any)
    _out_b: Any = field(default=None, repr=False, compare=False)

    @property
    def n_layers(self) -> int:
        return int(self.ranks_a.shape[0])

    @property
    def differs(self) -> np.ndarray:
        """bool (n_aligned,): the aligned tokens differ (different text, or a gap on one side)."""
        a, b = self.alignment[:, 0], self.alignment[:, 1]
        gap = (a < 0) | (b < 0)
        keys_a, keys_b = _keys(self.token_ids_a, self.raw_tokens_a, self.unit), _keys(self.token_ids_b,
                                                                                     self.raw_tokens_b, self.unit)
        return np.array([g or keys_a[i] != keys_b[j] for g, i, j in zip(gap, a, b)], dtype=bool)

    def aligned_ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """int32 (n_layers, n_aligned) each: the rank grids on the aligned columns, 0 where a prompt has no cell
        (a gap, or its last token, which predicts past the text)."""
        out = []
        for ranks, column in ((self.ranks_a, self.alignment[:, 0]), (self.ranks_b, self.alignment[:, 1])):
            has = (column >= 0) & (column < ranks.shape[1])
            grid = np.zeros((ranks.shape[0], len(column)), dtype=np.int32)
            grid[:, has] = ranks[:, column[has]]
            out.append(grid)
        return out[0], out[1]

    def rank_difference(self) -> np.ndarray:
        """float32 (n_layers, n_aligned): log10(rank in B) - log10(rank in A) of each column's next token (> 0: B
        ranks it lower); NaN where one prompt has no cell."""
        a, b = self.aligned_ranks()
        both = (a > 0) & (b > 0)
        diff = np.full(a.shape, np.nan, dtype=np.float32)
        diff[both] = np.log10(b[both].astype(np.float64) / a[both])
        return diff

    def view(self, method: str | None = None, components: bool | None = None, target: Any = None, foil: Any = None,
             column: int = -1, **view_options):
        """PromptPairView: both token rows aligned (differences marked), the rank-grid difference and saliency of
        a selected output token side by side; with ``components`` (None: when both outputs were analysed with
        ``components=True``) the direct logit attribution difference A − B of ``target`` (− ``foil``; None: A's top
        prediction) after aligned ``column`` as a layers x heads (+ MLP) grid
        (:meth:`logit_attribution_difference`)."""
        from ..views import PromptPairView

        if method is not None and method not in self.methods:
            raise InputError(f"method {method!r} is not in this pair (both outputs have: {self.methods or 'none'}).")
        if components is not None and not isinstance(components, (bool, np.bool_)):
            raise InputError(f"components must be True, False or None, got {components!r}.")
        have = all(getattr(o, "_components", None) is not None for o in (self._out_a, self._out_b))
        if components is None:
            components = have
        if components:
            d = self.logit_attribution_difference(column, target, foil, unit="head")
            grid = d.head_grid()
            at = (self.alignment[:, 0] == d.a.position) & (self.alignment[:, 1] == d.b.position)
            col = int(np.flatnonzero(at)[0])
            foil_text = f" \u2212 {d.a.foil!r}" if d.a.foil else ""
            view_options = {"dla_heads": grid["head_values"], "dla_mlp": grid["mlp_values"],
                            "dla_accumulated": d.accumulated, "dla_column": col,
                            "dla_label": f"{d.a.target!r}{foil_text} after column {col}: A {d.a.logit:.4g}, B "
                                         f"{d.b.logit:.4g}, A \u2212 B {d.logit:.4g}", **view_options}
        ranks_a, ranks_b = self.aligned_ranks()
        diff = np.nan_to_num(self.rank_difference(), nan=0.0)
        empty = np.zeros((0, 0, 0), np.float32)
        return PromptPairView(
            tokens_a=self.tokens_a, tokens_b=self.tokens_b, raw_tokens_a=self.raw_tokens_a,
            raw_tokens_b=self.raw_tokens_b, n_input_tokens_a=self.n_input_tokens_a,
            n_input_tokens_b=self.n_input_tokens_b, alignment=self.alignment.astype(np.int32),
            differs=self.differs.astype(np.uint8), layer_labels=self.layer_labels, ranks_a=ranks_a, ranks_b=ranks_b,
            rank_diff=diff, methods=self.methods, method=method or (self.methods[0] if self.methods else ""),
            targets_a=_or_empty(self.targets_a), targets_b=_or_empty(self.targets_b),
            attributions_a=empty if self.attributions_a is None else self.attributions_a,
            attributions_b=empty if self.attributions_b is None else self.attributions_b,
            unit=self.unit, **view_options)

    def logit_attribution_difference(self, column: int = -1, target: Any = None, foil: Any = None,
                                     unit: str = "head") -> Any:
        """Direct logit attribution of ``target`` (− ``foil``) after the tokens of aligned ``column`` (-1: the last
        column both prompts have a token in) on A and on B, and A − B per component (both outputs analysed with
        ``components=True``): a LogitAttributionDifference; ``.view()`` draws its layers x heads grid.

        Example: ``ew.compare(clean, corrupt).logit_attribution_difference(target=" are", foil=" is").view()``
        """
        from .dla_difference import logit_attribution_difference

        both = np.flatnonzero((self.alignment[:, 0] >= 0) & (self.alignment[:, 1] >= 0))
        n = len(self.alignment)
        if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or not -n <= column < n:
            raise InputError(f"column {column!r} is out of range: the pair has {n} aligned columns (0..{n - 1}).")
        column = int(both[-1]) if column == -1 and both.size else int(column) % n
        pos_a, pos_b = (int(v) for v in self.alignment[column])
        if pos_a < 0 or pos_b < 0:
            raise InputError(f"column {column} is a gap in prompt {'A' if pos_a < 0 else 'B'}: pick a column both "
                             "prompts have a token in.")
        if self._out_a is None or self._out_b is None:
            raise NotAvailableError("This pair holds no outputs (it was loaded from a file): ew.compare(out_a, out_b) "
                                    "again with outputs analysed with components=True.")
        return logit_attribution_difference(self._out_a, self._out_b, (pos_a, pos_b), target, foil, unit)

    def save(self, path: str | Path) -> Path:
        """Write the pair to one .npz file; ``ew.load(path)`` gives it back."""
        return save_result(self, path)

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand can break that); [] when all is well."""
        problems = []
        for side in "ab":
            n = len(getattr(self, f"token_ids_{side}"))
            if len(getattr(self, f"tokens_{side}")) != n or getattr(self, f"ranks_{side}").shape[-1] not in (0, n - 1):
                problems.append(f"prompt {side.upper()}: tokens or ranks disagree with its {n} token ids")
            column = self.alignment[:, "ab".index(side)] if self.alignment.ndim == 2 else np.zeros(0)
            if self.alignment.ndim != 2 or column.max(initial=-1) >= n or sorted(set(column[column >= 0])) != \
                    list(range(n)):
                problems.append(f"alignment does not cover prompt {side.upper()}'s {n} tokens once each")
        return problems

    def __repr__(self) -> str:
        return (f"PromptPair({len(self.tokens_a)} vs {len(self.tokens_b)} {self.unit}s, "
                f"{int(self.differs.sum())} aligned columns differ, layers={self.n_layers})")


def _or_empty(targets: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, np.int32) if targets is None else np.asarray(targets, dtype=np.int32)


def _keys(ids: np.ndarray, raw: Sequence[str], unit: str) -> list:
    """What alignment compares: token ids, or at word level each word's pieces."""
    return list(raw) if unit == "word" else [int(i) for i in ids]


def align(keys_a: Sequence, keys_b: Sequence) -> np.ndarray:
    """int64 (n_aligned, 2): position by position for equal lengths, else difflib's opcodes (replaced runs paired
    in order, the rest of the longer one against gaps, -1)."""
    if len(keys_a) == len(keys_b):
        return np.stack([np.arange(len(keys_a))] * 2, axis=1).astype(np.int64).reshape(-1, 2)
    pairs: list[tuple[int, int]] = []
    matcher = difflib.SequenceMatcher(None, list(keys_a), list(keys_b), autojunk=False)
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        n = max(i2 - i1, j2 - j1)
        pairs += [(i1 + k if i1 + k < i2 else -1, j1 + k if j1 + k < j2 else -1) for k in range(n)]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def compare(out_a: Any, out_b: Any, aggregate: str = "l2_normalized") -> PromptPair:
    """``ew.compare(out_a, out_b)``: two outputs of one model (e.g. a clean and a corrupted prompt, " is" / " are")
    aligned token by token. Both must be at the same unit (``out.by_word()`` both for words).

    Example: ``ew.compare(lm.analyze("The key to the cabinets is"), lm.analyze("The keys to the cabinet are")).view()``
    """
    for name, out in (("out_a", out_a), ("out_b", out_b)):
        if not all(hasattr(out, f) for f in ("token_ids", "ranks", "raw_tokens", "attributions_raw")):
            raise InputError(f"{name} must be an output of lm.analyze / lm.generate / lm.chat, got "
                             f"{type(out).__name__}.")
    if out_a.model_name and out_b.model_name and out_a.model_name != out_b.model_name:
        raise InputError(f"The two outputs come from different models ({out_a.model_name!r} and "
                         f"{out_b.model_name!r}); compare two analyses of one model.")
    if out_a.layer_labels != out_b.layer_labels or out_a.lens != out_b.lens:
        raise InputError(f"The two outputs were decoded differently (layers {len(out_a.layer_labels)} / "
                         f"{len(out_b.layer_labels)}, lens {out_a.lens!r} / {out_b.lens!r}); analyse both prompts "
                         "with the same model and options.")
    prints = [getattr(out, "model_fingerprint", "") for out in (out_a, out_b)]
    if all(prints) and prints[0] != prints[1]:
        raise InputError(f"The two outputs come from different models (both {out_a.model_name or 'unnamed'}, but with "
                         "other weights, config or dtype); compare two analyses of one model.")
    if out_a.unit != out_b.unit:
        raise InputError(f"One output is at unit {out_a.unit!r}, the other at {out_b.unit!r}: pass both as tokens, or "
                         "both through .by_word().")
    if out_a.unit == "token":
        seen: dict[int, str] = dict(zip(out_a.token_ids.tolist(), out_a.raw_tokens))
        clash = [(i, seen[i], r) for i, r in zip(out_b.token_ids.tolist(), out_b.raw_tokens) if seen.get(i, r) != r]
        if clash:
            i, ra, rb = clash[0]
            raise InputError(f"The two outputs come from different tokenizers (token id {i} is {ra!r} in one and "
                             f"{rb!r} in the other); compare two analyses of one model and tokenizer.")
        ids_of: dict[str, int] = dict(zip(out_a.raw_tokens, out_a.token_ids.tolist()))
        moved = [(r, ids_of[r], i) for i, r in zip(out_b.token_ids.tolist(), out_b.raw_tokens) if ids_of.get(r, i) != i]
        if moved:
            r, ia, ib = moved[0]
            raise InputError(f"The two outputs come from different tokenizers ({r!r} is token id {ia} in one and {ib} "
                             "in the other); compare two analyses of one model and tokenizer.")
    methods = [m for m in out_a.attributions_raw if m in out_b.attributions_raw]
    if (out_a.attributions_raw or out_b.attributions_raw) and not methods:
        raise NotAvailableError(f"The outputs share no attribution method (A: {list(out_a.attributions_raw)}, B: "
                                f"{list(out_b.attributions_raw)}); pass the same attribution=(...) to both.")

    def stacked(out: Any) -> np.ndarray | None:
        return np.stack([out.attributions(m, aggregate) for m in methods]).astype(np.float32) if methods else None

    return PromptPair(
        model_name=out_a.model_name or out_b.model_name, tokens_a=list(out_a.tokens), tokens_b=list(out_b.tokens),
        raw_tokens_a=list(out_a.raw_tokens), raw_tokens_b=list(out_b.raw_tokens),
        token_ids_a=np.asarray(out_a.token_ids).copy(), token_ids_b=np.asarray(out_b.token_ids).copy(),
        alignment=align(_keys(out_a.token_ids, out_a.raw_tokens, out_a.unit),
                        _keys(out_b.token_ids, out_b.raw_tokens, out_b.unit)),
        ranks_a=np.asarray(out_a.ranks, np.int32).copy(), ranks_b=np.asarray(out_b.ranks, np.int32).copy(),
        n_input_tokens_a=int(out_a.n_input_tokens), n_input_tokens_b=int(out_b.n_input_tokens),
        layer_labels=list(out_a.layer_labels), unit=out_a.unit, methods=methods, aggregate=aggregate,
        targets_a=None if not methods else np.asarray(out_a.targets, np.int64).copy(),
        targets_b=None if not methods else np.asarray(out_b.targets, np.int64).copy(),
        attributions_a=stacked(out_a), attributions_b=stacked(out_b), _out_a=out_a, _out_b=out_b)
