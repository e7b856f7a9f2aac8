"""Two prompts aligned token by token: differences marked, the rank-grid difference, saliency side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import EccoView, check_index, check_labels, check_tokens


class PromptPairView(EccoView):
    """Prompt A and prompt B on aligned columns.

    ``alignment``: int32 (n_aligned, 2), the token of A and of B in each column (-1: a gap); ``differs``: uint8
    (n_aligned,), 1 where the column's tokens differ. ``ranks_a`` / ``ranks_b``: int32 (n_layers, n_aligned),
    each prompt's rank of its next token in that column (0 = no cell: a gap or a last token); ``rank_diff``:
    float32 (n_layers, n_aligned), log10(rank B) - log10(rank A) (0 where a prompt has no cell). Saliency:
    ``methods``, ``method``, ``targets_a`` / ``targets_b`` int32 (n_targets,) and ``attributions_a`` /
    ``attributions_b`` float32 (n_methods, n_targets, n_tokens); ``selected``: the aligned column whose output
    token is explained (-1 = the last one both explain), synced. Direct logit attribution difference (optional):
    ``dla_heads`` float32 (n_layers, n_heads), ``dla_mlp`` (n_layers,) and ``dla_accumulated`` (n_layers + 1,), each
    prompt A's minus prompt B's for one target (− foil) after aligned column ``dla_column``, described by
    ``dla_label``: a layers x heads (+ MLP) grid on a diverging scale centred on 0.

    Example::

        >>> from ecco_widgets.views import PromptPairView
        >>> v = PromptPairView(tokens_a=["A", " is"], tokens_b=["A", " are"], alignment=[[0, 0], [1, 1]],
        ...                    differs=[0, 1], ranks_a=[[3, 0]], ranks_b=[[5, 0]], rank_diff=[[0.22, 0.0]])
        >>> v.differs.tolist()
        [0, 1]
    """

    _bundle = "prompt_pair"

    tokens_a = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tokens_b = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_tokens_a = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_tokens_b = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_input_tokens_a = traitlets.Int(0).tag(sync=True)
    n_input_tokens_b = traitlets.Int(0).tag(sync=True)
    alignment = Array(ndim=2).tag(sync=True, **array_serialization)
    differs = Array(ndim=1).tag(sync=True, **array_serialization)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks_a = Array(ndim=2).tag(sync=True, **array_serialization)
    ranks_b = Array(ndim=2).tag(sync=True, **array_serialization)
    rank_diff = Array(ndim=2).tag(sync=True, **array_serialization)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    method = traitlets.Unicode("").tag(sync=True)
    targets_a = Array(ndim=1).tag(sync=True, **array_serialization)
    targets_b = Array(ndim=1).tag(sync=True, **array_serialization)
    attributions_a = Array(ndim=3).tag(sync=True, **array_serialization)
    attributions_b = Array(ndim=3).tag(sync=True, **array_serialization)
    selected = traitlets.Int(-1).tag(sync=True)
    dla_heads = Array(ndim=2).tag(sync=True, **array_serialization)
    dla_mlp = Array(ndim=1).tag(sync=True, **array_serialization)
    dla_accumulated = Array(ndim=1).tag(sync=True, **array_serialization)
    dla_column = traitlets.Int(-1).tag(sync=True)
    dla_label = traitlets.Unicode("").tag(sync=True)

    def __init__(self, tokens_a: Sequence[str], tokens_b: Sequence[str], alignment: Any, differs: Any, ranks_a: Any,
                 ranks_b: Any, rank_diff: Any, *, raw_tokens_a: Sequence[str] | None = None,
                 raw_tokens_b: Sequence[str] | None = None, layer_labels: Sequence[str] | None = None,
                 **kwargs: Any) -> None:
        ta, tb = check_tokens(tokens_a, "tokens_a"), check_tokens(tokens_b, "tokens_b")
        kwargs.update(
            tokens_a=ta, tokens_b=tb,
            raw_tokens_a=ta if raw_tokens_a is None else check_tokens(raw_tokens_a, "raw_tokens_a"),
            raw_tokens_b=tb if raw_tokens_b is None else check_tokens(raw_tokens_b, "raw_tokens_b"),
            alignment=as_int_array(alignment, "alignment").astype(np.int32),
            differs=as_int_array(differs, "differs").astype(np.uint8),
            ranks_a=as_int_array(ranks_a, "ranks_a").astype(np.int32),
            ranks_b=as_int_array(ranks_b, "ranks_b").astype(np.int32),
            rank_diff=as_float_array(rank_diff, "rank_diff").astype(np.float32))
        for name in ("dla_heads", "dla_mlp", "dla_accumulated"):
            if kwargs.get(name) is not None:
                kwargs[name] = as_float_array(kwargs[name], name).astype(np.float32)
        n_layers = kwargs["ranks_a"].shape[0] if kwargs["ranks_a"].ndim == 2 else 0
        kwargs["layer_labels"] = check_labels(layer_labels, n_layers, "layer_labels", "{}")
        super().__init__(**kwargs)
        self._check()

    def _check(self) -> None:
        al = self.alignment
        if al.ndim != 2 or al.shape[1] != 2:
            raise ViewValueError(f"alignment: expected shape (n_aligned, 2), got {tuple(al.shape)}")
        for side, tokens in (("a", self.tokens_a), ("b", self.tokens_b)):
            column = al[:, "ab".index(side)]
            if al.size and (column.min() < -1 or column.max() >= len(tokens)):
                raise ViewValueError(f"alignment: column {side} must index tokens_{side} (0..{len(tokens) - 1}) "
                                     "or be -1 (a gap)")
            if len(getattr(self, f"raw_tokens_{side}")) != len(tokens):
                raise ViewValueError(f"raw_tokens_{side}: one per token of tokens_{side}")
        n = al.shape[0]
        if self.differs.shape != (n,):
            raise ViewValueError(f"differs: expected shape ({n},), got {tuple(self.differs.shape)}")
        for name in ("ranks_a", "ranks_b", "rank_diff"):
            if getattr(self, name).shape != self.ranks_a.shape or self.ranks_a.shape[-1] != n:
                raise ViewValueError(f"{name}: expected shape (n_layers, n_aligned={n}), got "
                                     f"{tuple(getattr(self, name).shape)}")
        check_labels(self.layer_labels, self.ranks_a.shape[0], "layer_labels", "{}")
        for side, tokens in (("a", self.tokens_a), ("b", self.tokens_b)):
            attr, targets = getattr(self, f"attributions_{side}"), getattr(self, f"targets_{side}")
            if attr.size and attr.shape != (len(self.methods), len(targets), len(tokens)):
                raise ViewValueError(f"attributions_{side}: expected shape (n_methods={len(self.methods)}, "
                                     f"n_targets={len(targets)}, n_tokens={len(tokens)}), got {tuple(attr.shape)}")
        if self.methods and self.method not in self.methods:
            raise ViewValueError(f"method: {self.method!r} is not one of {', '.join(self.methods)}")
        check_index(self.selected, n, "selected")
        heads = self.dla_heads
        if heads.size:
            if heads.ndim != 2 or self.dla_mlp.shape != heads.shape[:1] or \
                    self.dla_accumulated.shape != (heads.shape[0] + 1,):
                raise ViewValueError(f"dla_heads (n_layers, n_heads), dla_mlp (n_layers,) and dla_accumulated "
                                     f"(n_layers + 1,) go together; got {tuple(heads.shape)}, "
                                     f"{tuple(self.dla_mlp.shape)}, {tuple(self.dla_accumulated.shape)}")
            if not all(np.isfinite(a).all() for a in (heads, self.dla_mlp, self.dla_accumulated)):
                raise ViewValueError("dla_heads / dla_mlp / dla_accumulated: values must be finite")
            check_index(self.dla_column, n, "dla_column", allow_none=False)
