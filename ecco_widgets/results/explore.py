"""The explorer's arrays, read from an output: every panel it has, as plain arrays for :class:`~ecco_widgets.views.Explorer`.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> out = Output(token_ids=np.arange(4), tokens=list("abcd"), raw_tokens=list("abcd"), n_input_tokens=2,
...              ranks=np.array([[3, 1, 2], [1, 1, 1]], np.int32))
>>> traits = explorer_traits(out)
>>> traits["ranks"].shape, traits["selected_token"]
((2, 3), 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError, NotAvailableError
from ..progress import progress_bar
from ..views.explorer import UNITS, register_output_reader
from .explore_panels import check_components, check_feature_labels, component_traits, feature_traits, mixing_traits

_AGGREGATES = ("sum", "l2", "l2_normalized")


def _positive(value: Any, name: str, meaning: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer ({meaning}), got {value!r}.")
    return int(value)


def explorer_traits(out: Any, *, unit: str = "token", watch: Sequence[str | int] | None = None, nmf: Any = None,
                    attention_layer: int | None = None, topk: int = 5, top_neurons: int = 8, top_keys: int = 8,
                    method: str | None = None, aggregate: str = "l2_normalized", selected_token: int | None = None,
                    progress: bool | None = None, components: bool | None = None,
                    head_tokens: Sequence[int] | None = None, top_heads: int = 8, top_features: int = 8,
                    feature_labels: Any = None, **view_options: Any) -> dict[str, Any]:
    """The Explorer's traits for ``out``; every option is checked before any heavy work.

    unit: "token", or "word" (the panels of ``out.by_word()``; the tooltip lists each word's pieces).
    watch: tokens (single-token strings such as " is", or ids) whose rank is shown at every layer after the selected
    token: one decode per position and layer (as the lens pass itself); needs the hidden states (a fresh output).
    nmf: an NMFResult of this output, or a number of factors to run ``out.run_nmf(nmf)``; None: no factor values.
    attention_layer: the layer whose attention rows are shown (default: the last; needs ``attention=True``).
    topk: predictions per layer; top_neurons: neurons listed per token; top_keys: keys listed per attention row.
    method / aggregate: the saliency method shown first and how attributions are reduced over the embedding
    ("l2_normalized", as ``out.primary_attributions``). selected_token: the token shown first (negative counts from
    the end; default: the first explained token, else the last prompt token).
    components: the components panel (direct logit attribution of each token where it was predicted; None: when the
    output was analysed with ``components=True``); head_tokens: the tokens whose strongest heads (``top_heads``) are
    listed (default: the explained tokens, else the generated ones, else the last). top_features: latents listed per
    token and dictionary (``saes=[...]``); feature_labels: {name: sae or {latent: label}}, or a list of SAEs in
    ``saes=`` order (their ``labels``).
    Arrays: see :mod:`ecco_widgets.views.explorer`.
    """
    if unit not in UNITS:
        raise InputError(f"unit must be 'token' or 'word', got {unit!r}.")
    if unit == "word":
        if not callable(getattr(out, "by_word", None)):
            raise NotAvailableError("unit='word' needs Output.by_word(), which this version does not have.")
        out = out.by_word()
    topk = _positive(topk, "topk", "predictions per layer")
    top_neurons = _positive(top_neurons, "top_neurons", "neurons listed per token")
    top_keys = _positive(top_keys, "top_keys", "keys listed per attention row")
    top_heads = _positive(top_heads, "top_heads", "heads listed per token")
    top_features = _positive(top_features, "top_features", "features listed per token")
    labels = check_feature_labels(out, feature_labels)
    if aggregate not in _AGGREGATES:
        raise InputError(f"aggregate must be one of {', '.join(_AGGREGATES)}, got {aggregate!r}.")
    if method is not None and method not in out.attributions_raw:
        computed = ", ".join(out.attributions_raw) or "none"
        raise InputError(f"method {method!r} was not computed (computed: {computed}).")
    watch_ids = _check_watch(out, watch)
    if out.topk_ids is not None and topk > out.topk_ids.shape[-1]:
        raise InputError(f"Only the top {out.topk_ids.shape[-1]} predictions were kept; pass topk <= "
                         f"{out.topk_ids.shape[-1]} or analyze with lens_topk={topk}.")
    layer = _check_attention_layer(out, attention_layer)
    selected = None if selected_token is None else out._position(selected_token)
    head_tokens = check_components(out, components, head_tokens)
    nmf = _check_nmf(out, nmf)  # (last: a number of factors is the only check that may run work, the NMF)

    traits: dict[str, Any] = {"tokens": out.tokens, "raw_tokens": out.raw_tokens,
                              "n_input_tokens": out.n_input_tokens, "unit": unit}
    if unit == "word":
        traits["pieces"] = [list(p) for p in getattr(out, "pieces", None) or []]
    traits["turns"] = [dict(t) for t in getattr(out, "turns", None) or []]
    mask = getattr(out, "special_mask", None)
    if mask is not None:
        traits["special"] = np.asarray(mask, bool)
    if out.attributions_raw:
        traits.update(attributions={m: out.attributions(m, aggregate) for m in out.attributions_raw},
                      targets=out.targets, method=method or next(iter(out.attributions_raw)),
                      causal=bool(out.attribution_settings.get("causal", True)))
    traits.update(_lens(out, topk))
    if watch_ids:
        traits.update(watch_tokens=[w if isinstance(w, str) else out.vocab_text.get(int(w), str(w)) for w in watch],
                      watch_ranks=_watch_everywhere(out, list(watch), progress))
    if nmf is not None:
        traits.update(factors=nmf.factors, factor_positions=np.asarray(nmf.positions),
                      factor_labels=[f"Factor {i}" for i in range(nmf.n_components)])
    if out.activations is not None:
        traits.update(zip(("neuron_ids", "neuron_values"), strongest_neurons(out, top_neurons)))
    if layer is not None:
        traits.update(attention_rows(out.attention_weights[layer], top_keys), attention_label=f"layer {layer}")
    if head_tokens is not None:
        traits.update(component_traits(out, head_tokens, top_heads))
    traits.update(feature_traits(out, top_features, labels))
    traits.update(mixing_traits(out))
    if selected is None:
        targets = [] if out.targets is None or not out.attributions_raw else list(out.targets)
        selected = int(targets[0]) if targets else max(0, out.n_input_tokens - 1)
    traits["selected_token"] = selected
    return {**traits, **view_options}


def _check_watch(out: Any, watch: Sequence[str | int] | None) -> list[int]:
    if watch is None:
        return []
    if isinstance(watch, (str, bytes)) or not isinstance(watch, Sequence) or not watch:
        raise InputError(f"watch must be a list of tokens, e.g. watch=[' is', ' are'], got {watch!r}.")
    if out.hidden_states is None or out._decode is None or out._encode_watch is None:
        raise NotAvailableError("watch= needs the model's final norm and unembedding and the hidden states: explore "
                                "an output fresh from lm.analyze/lm.generate, or call out.attach(lm) after ew.load.")
    return [out._encode_watch(t) for t in watch]  # InputError for a string that is not one token


def _check_attention_layer(out: Any, layer: int | None) -> int | None:
    weights = out.attention_weights
    if weights is None:
        if layer is not None:
            raise NotAvailableError("attention_layer= needs attention weights: analyze with attention=True.")
        return None
    n = weights.shape[0]
    if layer is None:
        return n - 1
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
        raise InputError(f"attention_layer {layer!r} does not exist: attention was captured at {n} layers "
                         f"(0..{n - 1}, or negative from the end).")
    return int(layer) % n


def _check_nmf(out: Any, nmf: Any) -> Any:
    if nmf is None:
        return None
    if isinstance(nmf, (int, np.integer)) and not isinstance(nmf, bool):
        if out.activations is None:
            raise NotAvailableError("nmf= needs MLP activations: analyze with activations=True.")
        return out.run_nmf(n_components=_positive(nmf, "nmf", "a number of factors"))
    positions = getattr(nmf, "positions", None)
    if getattr(nmf, "factors", None) is None or positions is None:
        raise InputError(f"nmf must be an NMFResult (out.run_nmf(...)) or a number of factors, got "
                         f"{type(nmf).__name__}.")
    positions = np.asarray(positions)
    if positions.size and (positions.max() >= out.n_tokens or
                           list(nmf.tokens) != [out.tokens[int(p)] for p in positions]):
        raise InputError("This NMF result was computed on another output (its tokens differ): run out.run_nmf() "
                         "on the output you explore (for unit='word', on out.by_word()).")
    return nmf


def _lens(out: Any, topk: int) -> dict[str, Any]:
    from .view_arrays import compact_vocab

    traits: dict[str, Any] = {"layer_labels": out.layer_labels}
    if out.n_tokens > 1:
        traits.update(ranks=out.ranks, target_probs=out.target_probs, kl_to_final=out.kl_to_final,
                      entropy=out.entropy, first_layer=out.first_layer_at_rank(1))
    if out.topk_ids is not None and out.topk_probs is not None:
        vocab, index = compact_vocab(out.topk_ids[:, :, :topk], out.vocab_text)
        traits.update(topk_vocab=vocab, topk_index=index, topk_probs=out.topk_probs[:, :, :topk])
    return traits


def _watch_everywhere(out: Any, watch: list[str | int], progress: bool | None) -> np.ndarray:
    """int32 (n_layers, n_tokens, n_watch): out.watch_ranks at every position. Through the logit lens the positions
    are decoded in chunks (one matrix product for many positions and layers, about 60 MB of logits at a time);
    through a tuned lens (one translator per layer) one position at a time."""
    n_layers, n = out.n_layers, out.n_tokens
    ranks = np.zeros((n_layers, n, len(watch)), np.int32)
    if out.lens != "logit":
        with progress_bar(n, "watched ranks", progress, "position") as bar:
            for p in range(n):
                ranks[:, p] = out.watch_ranks(watch, p)
                bar.update(1)
        return ranks
    import torch

    from ..analysis.lens import watch_ranks

    ids = [out._encode_watch(t) for t in watch]
    vocab = int(out._decode(torch.from_numpy(out.hidden_states[1:2, 0]).float()).shape[-1])
    step = max(1, int(6e7 // (vocab * (4 + len(ids)) * n_layers)))
    with progress_bar(n, "watched ranks", progress, "position") as bar:
        for p in range(0, n, step):
            hidden = torch.from_numpy(np.ascontiguousarray(out.hidden_states[1:, p: p + step])).float()
            chunk = watch_ranks(out._decode, hidden.reshape(-1, hidden.shape[-1]), ids)
            ranks[:, p: p + step] = chunk.reshape(n_layers, hidden.shape[1], len(ids))
            bar.update(hidden.shape[1])
    return ranks


def strongest_neurons(out: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token the k largest raw activations over every captured layer (numeric layer order, ties by (layer,
    neuron)), as :meth:`Output.top_neurons`: int32 (n_tokens, k, 2) of (model layer, neuron) and float32 (n_tokens, k).

    >>> import numpy as np
    >>> from ecco_widgets.results import Output
    >>> acts = np.array([[[0.0, 3.0], [1.0, 0.0]]], np.float32)  # 1 layer, 2 tokens, 2 neurons
    >>> out = Output(token_ids=np.arange(2), tokens=["a", "b"], raw_tokens=["a", "b"], n_input_tokens=2,
    ...              ranks=np.ones((1, 1), np.int32), activations=acts, activation_layers=[4])
    >>> ids, values = strongest_neurons(out, 1)
    >>> ids[:, 0].tolist(), values[:, 0].tolist()
    ([[4, 1], [4, 0]], [3.0, 1.0])
    """
    acts = out.activations
    layers = list(out.activation_layers) or list(range(acts.shape[0]))
    rows = sorted(range(acts.shape[0]), key=layers.__getitem__)
    n_tokens, width = acts.shape[1], acts.shape[2]
    k = min(k, len(rows) * width)
    ids = np.zeros((n_tokens, k, 2), np.int32)
    values = np.zeros((n_tokens, k), np.float32)
    for t in range(n_tokens):
        v = np.concatenate([acts[r, t].astype(np.float32) for r in rows])
        threshold = np.partition(v, len(v) - k)[len(v) - k]  # the k-th largest value
        above = np.flatnonzero(v > threshold)
        chosen = np.concatenate([above, np.flatnonzero(v == threshold)[: k - len(above)]])
        order = chosen[np.lexsort((chosen, -v[chosen]))]  # largest first, ties by column
        ids[t, :, 0] = [layers[rows[i // width]] for i in order]
        ids[t, :, 1] = order % width
        values[t] = v[order]
    return ids, values


def attention_rows(weights: np.ndarray, k: int) -> dict[str, Any]:
    """The k strongest keys of every query of one layer's attention (n_heads, q, k), for the mean over heads (row 0)
    and each head: attention_keys int32 (n_heads + 1, n_tokens, k) (-1 where the weight is 0) and attention_values.

    >>> rows = attention_rows(np.array([[[1.0, 0.0], [0.25, 0.75]]], np.float32), 2)
    >>> rows["attention_keys"][1].tolist(), rows["head_labels"]
    ([[0, -1], [1, 0]], ['mean of 1 heads', 'head 0'])
    """
    heads = np.asarray(weights, np.float32)
    stacked = np.concatenate([heads.mean(0, keepdims=True), heads])
    k = min(k, stacked.shape[-1])
    order = np.argsort(-stacked, axis=-1, kind="stable")[..., :k]
    values = np.take_along_axis(stacked, order, -1)
    keys = np.where(values > 0, order, -1).astype(np.int32)
    return {"attention_keys": keys, "attention_values": np.where(values > 0, values, 0).astype(np.float32),
            "head_labels": [f"mean of {heads.shape[0]} heads"] + [f"head {h}" for h in range(heads.shape[0])]}


register_output_reader(explorer_traits)
