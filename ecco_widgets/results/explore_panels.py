"""The explorer's components, features and context-mixing panels, read from an output (``out.explore()``).

Components (``lm.analyze(..., components=True)``): for token k >= 1, the direct logit attribution of token k where the
model predicted it (position k - 1, target: token k's id, no foil), as ``out.logit_attribution(k - 1, ids[k])``: by
layer for every token (attention and MLP shares, the logit read after each block), by head for the explained tokens
(their strongest heads only). Features (``lm.analyze(..., saes=[...])``): per dictionary, each token's strongest active
latents (``out.features[name].active(k)``), with labels when the dictionary (``sae.labels``) or the caller gives them.
Context mixing (``attribution=["value_zeroing", "alti_logit", "rollout"]``): per method, each explained token's
layers x source tokens matrices, per layer and rolled out (``out.context_mixing(method)``).

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> from ecco_widgets.results.features import SAEFeatures
>>> out = Output(token_ids=np.arange(2), tokens=["a", "b"], raw_tokens=["a", "b"], n_input_tokens=2,
...              ranks=np.ones((1, 1), np.int32))
>>> out.features = {"s": SAEFeatures(name="s", site="x", d_sae=9, indices=np.array([[4, 2], [7, -1]], np.int32),
...                 values=np.array([[3.0, 1.0], [2.0, 0.0]], np.float32), error_norm=np.zeros(2, np.float32),
...                 fvu=0.1, l0=1.5)}
>>> t = feature_traits(out, 1, {"s": {4: "cats"}})
>>> t["feature_indices"].tolist(), t["feature_labels"]
([[[4], [7]]], [{'4': 'cats'}])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, NotAvailableError


def has_components(out: Any) -> bool:
    """Whether ``out`` holds a recorded forward that direct logit attribution reads (token level, fresh)."""
    return getattr(out, "_components", None) is not None and getattr(out, "unit", "token") == "token"


def check_components(out: Any, components: bool | None, head_tokens: Sequence[int] | None) -> list[int] | None:
    """The tokens explained by head (ascending), or None when there is no components panel; errors before any work."""
    if components is not None and not isinstance(components, (bool, np.bool_)):
        raise InputError(f"components must be True, False or None (when the output has them), got {components!r}.")
    if components is False or (components is None and not has_components(out)):
        return None
    if not has_components(out):
        raise NotAvailableError("components=True needs an output analysed with components=True, fresh from the model "
                                "and at token level (a loaded or by-word output has no recorded forward): e.g. "
                                "lm.analyze(text, components=True).explore().")
    n = out.n_tokens
    if head_tokens is None:
        explained = [int(t) for t in (out.targets if out.attributions_raw and out.targets is not None else [])]
        head_tokens = explained or list(range(out.n_input_tokens, n)) or [n - 1]
    elif isinstance(head_tokens, (str, bytes)) or not isinstance(head_tokens, Sequence):
        raise InputError(f"head_tokens must be a list of token positions, got {head_tokens!r}.")
    chosen = sorted({out._position(t) for t in head_tokens} - {0})
    return chosen


def component_traits(out: Any, head_tokens: list[int], top_heads: int = 8) -> dict[str, Any]:
    """The components panel's arrays, from ``out.logit_attributions`` (one batched pass, each next token the target):
    ``component_tokens`` int32 (m,) = 1..n-1; ``component_attn`` / ``component_mlp`` float32 (m, n_layers) and
    ``component_accumulated`` (m, n_layers + 1), ``component_logit`` (m,): token k's row is the attribution at
    position k - 1 by layer (``out.logit_attribution(k - 1, target=ids[k], unit="layer")``);
    ``component_head_tokens`` int32 (h,) with ``component_heads`` int32 (h, top_heads, 2) (layer, head) and
    ``component_head_values`` float32 (h, top_heads): each head token's strongest heads by |value| (unit "head"),
    largest first."""
    n = out.n_tokens
    tokens = np.arange(1, n, dtype=np.int32)
    heads = np.zeros((len(head_tokens), 0, 2), np.int32)
    values = np.zeros((len(head_tokens), 0), np.float32)
    if n < 2:
        return {}
    ids = np.asarray(out.token_ids, np.int64)
    r = out.logit_attributions(positions=(tokens - 1).tolist(), target=ids[tokens].tolist(), unit="layer")
    if head_tokens:
        h = out.logit_attributions(positions=[k - 1 for k in head_tokens], target=ids[head_tokens].tolist(),
                                   unit="head")
        is_head = np.asarray(h.kinds) == "head"
        hv = h.values[:, is_head]  # (h, n_layers * n_heads)
        order = np.argsort(-np.abs(hv), axis=1, kind="stable")[:, :top_heads]
        heads = np.stack([h.layers[is_head][order], h.indices[is_head][order]], -1).astype(np.int32)
        values = np.take_along_axis(hv, order, 1).astype(np.float32)
    return {"component_tokens": tokens, "component_attn": r.attn_by_layer.astype(np.float32),
            "component_mlp": r.mlp_by_layer.astype(np.float32),
            "component_accumulated": r.accumulated.astype(np.float32),
            "component_logit": np.asarray(r.logit, np.float32),
            "component_head_tokens": np.asarray(head_tokens, np.int32), "component_heads": heads,
            "component_head_values": values,
            "component_note": r.at(0).note}


def mixing_traits(out: Any) -> dict[str, Any]:
    """The context-mixing panel's arrays, from ``out.context_mixing(method)`` for every method computed (token level):
    ``mixing_methods``, ``mixing_targets`` int32 (n_targets,), ``mixing_layers`` / ``mixing_rolled`` float32
    (n_methods, n_layers, n_targets, n_tokens): method i's ``.layers`` / ``.rolled``; {} when none was computed."""
    raw = dict(getattr(out, "mixing_raw", None) or {})
    if not raw or getattr(out, "unit", "token") != "token" or out.targets is None:
        return {}
    mixes = [out.context_mixing(m) for m in raw]
    if any(m.layers.shape[-1] != out.n_tokens for m in mixes):
        return {}
    return {"mixing_methods": list(raw), "mixing_targets": np.asarray(out.targets, np.int32),
            "mixing_layers": np.stack([m.layers for m in mixes]).astype(np.float32),
            "mixing_rolled": np.stack([m.rolled for m in mixes]).astype(np.float32)}


def check_feature_labels(out: Any, feature_labels: Any) -> dict[str, dict[int, str]]:
    """{dictionary name: {latent: label}} from ``feature_labels``: a dict {name: SAE or {latent: label}}, or a list in
    ``out.features`` order (the ``saes=`` passed to analyze); a dictionary's own ``labels`` are read from an SAE."""
    names = list(getattr(out, "features", None) or {})
    if feature_labels is None:
        return {}
    if isinstance(feature_labels, Mapping):
        items = list(feature_labels.items())
        unknown = [k for k, _ in items if k not in names]
        if unknown:
            raise InputError(f"feature_labels names {unknown}, but this output's dictionaries are {names}.")
    elif isinstance(feature_labels, Sequence) and not isinstance(feature_labels, (str, bytes)):
        if len(feature_labels) != len(names):
            raise InputError(f"feature_labels has {len(feature_labels)} entries for {len(names)} dictionaries "
                             f"({names}); pass one per dictionary, in the order of saes=[...].")
        items = list(zip(names, feature_labels))
    else:
        raise InputError("feature_labels must be {name: sae or {latent: label}} or a list in the order of saes=[...], "
                         f"got {type(feature_labels).__name__}.")
    found = {}
    for name, given in items:
        labels = given if isinstance(given, Mapping) else getattr(given, "labels", None)
        if labels is None:
            raise InputError(f"feature_labels[{name!r}] must be an SAE (its .labels) or a dict {{latent: label}}.")
        found[name] = {int(k): str(v) for k, v in labels.items()}
    return found


def feature_traits(out: Any, top_features: int = 8, labels: Mapping[str, Mapping[int, str]] | None = None
                   ) -> dict[str, Any]:
    """The features panel's arrays: ``feature_names`` (the dictionaries), ``feature_indices`` int32 (n_saes,
    n_tokens, k) (-1 = none) and ``feature_values`` float32 (same shape): each token's ``top_features`` strongest
    active latents, as ``out.features[name].active(k)`` (largest first); ``feature_active`` int32 (n_saes, n_tokens),
    how many were active; ``feature_labels``: per dictionary {str(latent): label} for the latents shown."""
    features = dict(getattr(out, "features", None) or {})
    if not features:
        return {}
    n, k = out.n_tokens, top_features
    indices = np.full((len(features), n, k), -1, np.int32)
    values = np.zeros((len(features), n, k), np.float32)
    active = np.zeros((len(features), n), np.int32)
    shown_labels = []
    for s, (name, f) in enumerate(features.items()):
        kept = f.indices >= 0
        active[s] = kept.sum(1)
        width = min(k, f.indices.shape[1])
        # (stored largest first, padded with -1 at the end: the first k are the k strongest)
        indices[s, :, :width] = np.where(kept[:, :width], f.indices[:, :width], -1)
        values[s, :, :width] = np.where(kept[:, :width], f.values[:, :width], 0.0)
        own = (labels or {}).get(name) or {}
        shown = set(indices[s][indices[s] >= 0].tolist())
        shown_labels.append({str(i): own[i] for i in sorted(shown) if i in own})
    return {"feature_names": list(features), "feature_indices": indices, "feature_values": values,
            "feature_active": active, "feature_labels": shown_labels}
