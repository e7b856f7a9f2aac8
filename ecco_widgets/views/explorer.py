"""The explorer: one token row whose selected token drives every panel an output has.

Selecting token ``k`` (hover previews it; click, arrow keys, Home / End select it and write ``selected_token``
back) shows, each panel only when its arrays are given:

- ``saliency``: row ``targets.index(k)`` of ``attributions`` (n_methods, n_targets, n_tokens): what explains token k;
- ``lens``: column ``k`` of ``ranks`` (n_layers, n_tokens - 1): after token k, the rank of token k + 1 per layer
  (and ``target_probs`` / ``kl_to_final`` / ``entropy`` / ``first_layer`` there);
- ``predictions``: ``topk_index[:, k]`` (n_layers, n_tokens, k) into ``topk_vocab``: what each layer predicts after k;
- ``watch``: ``watch_ranks[:, k]`` (n_layers, n_tokens, n_watch): the watched tokens' ranks after token k;
- ``factors``: ``factors[:, j]`` (n_components, n_positions) where ``factor_positions[j] == k``, and the strongest
  neurons ``neuron_ids[k]`` (n_tokens, n_top, 2: layer, neuron) with ``neuron_values[k]`` (n_tokens, n_top);
- ``components``: for token k, the direct logit attribution of token k where it was predicted (attention vs MLP per
  layer, the logit read after each block, the strongest heads), see :mod:`ecco_widgets.views.explorer_panels`;
- ``features``: per sparse dictionary, the strongest active latents at token k (index, label, activation);
- ``mixing``: for an explained token k, how its context was mixed: a layers x source-tokens heat map of
  ``mixing_layers[m, :, r, :k]`` (or ``mixing_rolled``) where ``mixing_targets[r] == k``, per method ``m``;
- ``attention``: the strongest keys ``attention_keys[h, k]`` (n_heads, n_tokens, n_keys; -1 = none) with their
  weights ``attention_values[h, k]``, for the head (or mean) ``head_labels[h]`` of one layer (``attention_label``).

``turns`` (``{"role", "start", "stop"}`` token ranges) mark chat turns in the row, ``special`` (uint8 (n_tokens,))
dims chat-template tokens, ``unit="word"`` with ``pieces`` (one list of pieces per word) names words and lists their
pieces in the tooltip. ``Explorer(out, **options)`` reads an output (``out.explore(**options)``).

Example::

    >>> import numpy as np
    >>> from ecco_widgets.views import Explorer
    >>> v = Explorer(tokens=["The", " cat", " sat"], ranks=[[5, 1], [1, 1]], selected_token=1)
    >>> v.panels, v.selected_token
    (['lens'], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import TokenView, check_choice, check_index, check_labels, check_tokens, check_topk
from .chat_marks import check_special, check_turns
from .explorer_panels import components, features, mixing
from .rank_grid import check_metric_arrays
from .saliency import stack_methods

#: the panels, in the order the view shows them
PANELS = ("saliency", "lens", "predictions", "watch", "factors", "attention", "components", "features", "mixing")
UNITS = ("token", "word")

_READERS: list[Callable[..., dict[str, Any]]] = []


def register_output_reader(reader: Callable[..., dict[str, Any]]) -> None:
    """Set the function ``reader(out, **options) -> traits`` that ``Explorer(out)`` uses (ecco_widgets.results
    registers it: views import nothing of the results)."""
    _READERS[:] = [reader]


def _arr(**kw: Any) -> Any:
    return Array(**kw).tag(sync=True, **array_serialization)


class Explorer(TokenView):
    """Every explorable of one output, linked to the selected token (see the module docstring for the arrays)."""

    _bundle = "explorer"

    unit = traitlets.Unicode("token").tag(sync=True)
    pieces = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    turns = traitlets.List(traitlets.Dict()).tag(sync=True)
    special = _arr(ndim=1)
    selected_token = traitlets.Int(0).tag(sync=True)
    # saliency
    targets = _arr(ndim=1)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    attributions = _arr(ndim=3)
    method = traitlets.Unicode("").tag(sync=True)
    causal = traitlets.Bool(True).tag(sync=True)
    # lens
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ranks = _arr(ndim=2)
    target_probs = _arr(ndim=2)
    kl_to_final = _arr(ndim=2)
    entropy = _arr(ndim=2)
    first_layer = _arr(ndim=1)
    # predictions
    topk_vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    topk_index = _arr(ndim=3)
    topk_probs = _arr(ndim=3)
    # watch
    watch_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    watch_ranks = _arr(ndim=3)
    # factors and neurons
    factor_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    factors = _arr(ndim=2)
    factor_positions = _arr(ndim=1)
    neuron_ids = _arr(ndim=3)
    neuron_values = _arr(ndim=2)
    # attention
    attention_label = traitlets.Unicode("").tag(sync=True)
    head_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    attention_keys = _arr(ndim=3)
    attention_values = _arr(ndim=3)
    # components (direct logit attribution of each token where it was predicted)
    component_tokens = _arr(ndim=1)
    component_attn = _arr(ndim=2)
    component_mlp = _arr(ndim=2)
    component_accumulated = _arr(ndim=2)
    component_logit = _arr(ndim=1)
    component_head_tokens = _arr(ndim=1)
    component_heads = _arr(ndim=3)
    component_head_values = _arr(ndim=2)
    component_note = traitlets.Unicode("").tag(sync=True)
    # features (sparse dictionaries)
    feature_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    feature_indices = _arr(ndim=3)
    feature_values = _arr(ndim=3)
    feature_active = _arr(ndim=2)
    feature_labels = traitlets.List(traitlets.Dict()).tag(sync=True)
    # context mixing (per method, each explained token's row of every layer's mixing matrix, and rolled out)
    mixing_methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    mixing_targets = _arr(ndim=1)
    mixing_layers = _arr(ndim=4)
    mixing_rolled = _arr(ndim=4)

    def __init__(self, out: Any = None, /, **options: Any) -> None:
        if out is not None:
            if not (hasattr(out, "token_ids") and hasattr(out, "ranks")):
                raise ViewValueError(f"Explorer(out) takes the output of lm.analyze / lm.generate / lm.chat (or the "
                                     f"arrays as keywords), got a {type(out).__name__}.")
            if not _READERS:
                raise ViewValueError("Explorer(out) needs ecco_widgets.results (import ecco_widgets first)")
            options = _READERS[0](out, **options)
        super().__init__(**checked(options))

    @property
    def panels(self) -> list[str]:
        """The panels the view shows (those whose arrays were given), in :data:`PANELS` order."""
        return present_panels(self.attributions.size > 0, self.ranks.size > 0, self.topk_index.size > 0,
                              self.watch_ranks.size > 0, self.factors.size + self.neuron_ids.size > 0,
                              self.attention_keys.size > 0, self.component_tokens.size > 0,
                              self.feature_indices.size > 0, self.mixing_layers.size > 0)

    def _repr_summary(self) -> str:
        title = f"title={self.title!r}, " if self.title else ""
        return f"{title}n_{self.unit}s={len(self.tokens)}, panels={self.panels}, selected_token={self.selected_token}"

    @traitlets.validate("selected_token")
    def _valid_selected(self, proposal: Any) -> int:
        return check_index(proposal["value"], len(self.tokens), "selected_token", allow_none=False)

    @traitlets.validate("method")
    def _valid_method(self, proposal: Any) -> str:
        if self.methods and proposal["value"] not in self.methods:
            raise ViewValueError(f"method: unknown method {proposal['value']!r}; available: {list(self.methods)}")
        return proposal["value"]

    def _check(self) -> None:
        checked({name: getattr(self, name) for name in self.view_trait_names()})


def present_panels(*flags: bool) -> list[str]:
    """The names of :data:`PANELS` whose flag is true."""
    return [name for name, on in zip(PANELS, flags) if on]


# --------------------------------------------------------------------------- validation


def _empty(ndim: int, dtype: Any = np.float32) -> np.ndarray:
    return np.zeros((0,) * ndim, dtype)


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, np.ndarray) and value.size == 0)


def checked(o: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the explorer's traits (plain values) and return them normalised; ViewValueError otherwise."""
    o = dict(o)
    known = set(Explorer.class_trait_names()) | {"tokens", "raw_tokens", "n_input_tokens"}
    unknown = sorted(k for k in o if k not in known)
    if unknown:
        raise ViewValueError(f"Explorer: unknown option(s) {unknown}")
    tk = TokenView._token_kwargs(o.pop("tokens", None) or [], o.pop("raw_tokens", None) or None,
                                 o.pop("n_input_tokens", None))
    n = len(tk["tokens"])
    out: dict[str, Any] = {**tk, **_text_traits(o, n)}
    out.update(_saliency(o, n))
    layers = _layers(o, n)
    n_layers = layers.pop("_n_layers")
    out.update(layers)
    out["layer_labels"] = check_labels(o.pop("layer_labels", None) or None, n_layers, "layer_labels", "{}") \
        if n_layers else []
    out.update(_factors(o, n))
    out.update(_attention(o, n))
    out.update(components(o, n))
    out.update(features(o, n))
    out.update(mixing(o, n))
    selected = o.pop("selected_token", 0)
    out["selected_token"] = check_index(selected, n, "selected_token", allow_none=False)
    out.update(o)  # title, theme, ...
    return out


def _text_traits(o: dict[str, Any], n: int) -> dict[str, Any]:
    unit = check_choice(o.pop("unit", "token"), UNITS, "unit")
    pieces = o.pop("pieces", None) or []
    if pieces:
        if len(pieces) != n:
            raise ViewValueError(f"pieces: expected one list of pieces per {unit} ({n}), got {len(pieces)}")
        pieces = [check_tokens(p, f"pieces[{i}]") for i, p in enumerate(pieces)]
    turns = check_turns(o.pop("turns", None), n)
    special = check_special(o.pop("special", None), n)
    return {"unit": unit, "pieces": pieces, "turns": turns, "special": special}


def _saliency(o: dict[str, Any], n: int) -> dict[str, Any]:
    attributions, targets = o.pop("attributions", None), o.pop("targets", None)
    methods, method = o.pop("methods", None) or None, o.pop("method", None) or None
    causal = bool(o.pop("causal", True))
    if not _given(attributions):
        return {"targets": _empty(1, np.int32), "methods": [], "attributions": _empty(3), "method": "",
                "causal": causal}
    names, attr = stack_methods(attributions, methods)
    attr = np.array(attr, dtype=np.float32)
    tg = as_int_array([] if targets is None else targets, "targets").reshape(-1).astype(np.int32)
    if tg.size and (tg.min() < 0 or tg.max() >= n or len(set(tg.tolist())) != tg.size):
        raise ViewValueError(f"targets: distinct positions in 0..{n - 1} are required, got {tg.tolist()}")
    if attr.shape[1:] != (tg.size, n):
        raise ViewValueError(f"attributions: expected (n_methods, n_targets={tg.size}, n_tokens={n}), "
                             f"got {tuple(attr.shape)}")
    if causal and tg.size:
        attr[:, np.arange(n)[None, :] >= tg[:, None]] = 0.0
    method = names[0] if method is None else method
    if method not in names:
        raise ViewValueError(f"method: unknown method {method!r}; available: {names}")
    return {"targets": tg, "methods": names, "attributions": attr, "method": method, "causal": causal}


def _ints(value: Any, name: str, shape: tuple[int | None, ...], meaning: str, lo: int | None = None,
          hi: int | None = None) -> np.ndarray:
    arr = as_int_array(value, name).astype(np.int32)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise ViewValueError(f"{name}: expected shape {meaning}, got {tuple(arr.shape)}")
    if arr.size and ((lo is not None and arr.min() < lo) or (hi is not None and arr.max() > hi)):
        raise ViewValueError(f"{name}: values must be in {lo}..{hi}, got [{arr.min()}, {arr.max()}]")
    return arr


def _layers(o: dict[str, Any], n: int) -> dict[str, Any]:
    """lens, predictions and watch: arrays with a leading layer axis, the same number of layers in each."""
    out: dict[str, Any] = {}
    n_layers = None

    def layers_of(arr: np.ndarray, name: str) -> None:
        nonlocal n_layers
        if n_layers is not None and arr.shape[0] != n_layers:
            raise ViewValueError(f"{name}: {arr.shape[0]} layers, but another panel's array has {n_layers}")
        n_layers = arr.shape[0]

    ranks = o.pop("ranks", None)
    metrics = {k: o.pop(k, None) for k in ("target_probs", "kl_to_final", "entropy")}
    first = o.pop("first_layer", None)
    if _given(ranks):
        r = _ints(ranks, "ranks", (None, n - 1), f"(n_layers, n_tokens - 1 = {n - 1})", lo=1)
        layers_of(r, "ranks")
        out["ranks"] = r
        out.update(check_metric_arrays(r.shape, "(n_layers, n_tokens - 1)",
                                       **{k: v if _given(v) else None for k, v in metrics.items()}))
        out["first_layer"] = (_ints(first, "first_layer", (n - 1,), f"(n_tokens - 1 = {n - 1},)", lo=-1,
                                    hi=r.shape[0] - 1) if _given(first) else _empty(1, np.int32))
    else:
        out.update(ranks=_empty(2, np.int32), first_layer=_empty(1, np.int32),
                   **{k: _empty(2) for k in metrics})
    vocab, index, probs = o.pop("topk_vocab", None), o.pop("topk_index", None), o.pop("topk_probs", None)
    if _given(index):
        idx = as_int_array(index, "topk_index")
        if idx.ndim != 3 or idx.shape[1] != n:
            raise ViewValueError(f"topk_index: expected shape (n_layers, n_tokens={n}, k), got {tuple(idx.shape)}")
        layers_of(idx, "topk_index")
        out.update(check_topk(vocab, idx, probs, idx.shape[:2]))
    else:
        out.update(check_topk(None, None, None, (0, 0)))
    watch, wranks = o.pop("watch_tokens", None) or [], o.pop("watch_ranks", None)
    if _given(wranks):
        names = check_tokens(watch, "watch_tokens")
        w = _ints(wranks, "watch_ranks", (None, n, len(names)), f"(n_layers, n_tokens={n}, n_watch={len(names)})", lo=1)
        layers_of(w, "watch_ranks")
        out.update(watch_tokens=names, watch_ranks=w)
    else:
        out.update(watch_tokens=[], watch_ranks=_empty(3, np.int32))
    out["_n_layers"] = n_layers or 0
    return out


def _factors(o: dict[str, Any], n: int) -> dict[str, Any]:
    factors, positions = o.pop("factors", None), o.pop("factor_positions", None)
    labels = o.pop("factor_labels", None) or None
    ids, values = o.pop("neuron_ids", None), o.pop("neuron_values", None)
    out: dict[str, Any] = {"factors": _empty(2), "factor_positions": _empty(1, np.int32), "factor_labels": []}
    if _given(factors):
        f = as_float_array(factors, "factors").astype(np.float32)
        pos = (np.arange(f.shape[1] if f.ndim == 2 else 0) if positions is None else
               _ints(positions, "factor_positions", (None,), "(n_positions,)", lo=0, hi=n - 1))
        if f.ndim != 2 or f.shape[1] != len(pos):
            raise ViewValueError(f"factors: expected (n_components, n_positions={len(pos)}), got {tuple(f.shape)}")
        if len(pos) > 1 and (np.diff(pos) <= 0).any():
            raise ViewValueError("factor_positions: token positions must be ascending, each once")
        out.update(factors=f, factor_positions=pos.astype(np.int32),
                   factor_labels=check_labels(labels, f.shape[0], "factor_labels", "Factor {}"))
    if _given(ids):
        i = _ints(ids, "neuron_ids", (n, None, 2), f"(n_tokens={n}, n_top, 2): (layer, neuron)", lo=0)
        v = as_float_array(values, "neuron_values").astype(np.float32) if _given(values) else None
        if v is None or v.shape != i.shape[:2]:
            raise ViewValueError(f"neuron_values: expected shape {i.shape[:2]} (one value per neuron id)")
        out.update(neuron_ids=i, neuron_values=v)
    else:
        out.update(neuron_ids=_empty(3, np.int32), neuron_values=_empty(2))
    return out


def _attention(o: dict[str, Any], n: int) -> dict[str, Any]:
    keys, values = o.pop("attention_keys", None), o.pop("attention_values", None)
    labels, label = o.pop("head_labels", None) or None, str(o.pop("attention_label", "") or "")
    if not _given(keys):
        return {"attention_keys": _empty(3, np.int32), "attention_values": _empty(3), "head_labels": [],
                "attention_label": label}
    k = _ints(keys, "attention_keys", (None, n, None), f"(n_heads, n_tokens={n}, n_keys)", lo=-1, hi=n - 1)
    v = as_float_array(values, "attention_values").astype(np.float32) if _given(values) else None
    if v is None or v.shape != k.shape:
        raise ViewValueError(f"attention_values: expected shape {k.shape}, like attention_keys")
    if v.size and (v.min() < -1e-4 or v.max() > 1 + 1e-4):
        raise ViewValueError("attention_values: attention weights are in [0, 1]")
    return {"attention_keys": k, "attention_values": np.clip(v, 0, 1),
            "head_labels": check_labels(labels, k.shape[0], "head_labels", "head {}"), "attention_label": label}
