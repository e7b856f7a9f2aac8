"""Synthetic data for every view (deterministic), optionally with hostile strings everywhere."""

from __future__ import annotations

import numpy as np

from ecco_widgets import views
from ecco_widgets.views import (
    AttentionView,
    FactorExplorer,
    LayerPredictions,
    LensComparison,
    NeuronHeatmap,
    RankGrid,
    RankWatch,
    SaliencyView,
)

TOKENS = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "\n"]
RAW = ["The", "Ġquick", "Ġbrown", "Ġfox", "Ġjumps", "Ġover", "Ġthe", "Ġlazy", "Ġdog", "Ċ"]

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "<b>bold</b>",
    "\"double\" 'single' & &amp; &lt;",
    "\u202eRTL override",
    "zero\u200bwidth\u200c\u200djoin",
    "{{7*7}}",
    "W" * 3000,
]
#: hostile strings short enough that every view shows them whole
HOSTILE_LITERAL = HOSTILE[:7]

#: every view class, in the order of ecco_widgets/views/registry.json
ALL_CLASSES = [getattr(views, entry["class"]) for entry in views.REGISTRY["views"]]


def build(cls, tokens=None, raw=None, labels=None, seed=0, title=""):
    """A view of class ``cls`` with synthetic data.  ``labels`` (a list of strings) replaces
    every other free-text field (layer/factor/neuron/head labels, vocab, method names)."""
    rng = np.random.default_rng(seed)
    toks = list(tokens or TOKENS)
    rw = list(raw or (RAW if tokens is None else toks))
    n = len(toks)
    n_in = max(1, n // 2)

    def lab(k, fmt):
        if labels is None:
            return [fmt.format(i) for i in range(k)]
        return [labels[i % len(labels)] for i in range(k)]

    if cls is SaliencyView:
        targets = list(range(n_in, n))
        names = lab(2, "m{}") if labels is not None else ["integrated_gradients", "grad_x_input"]
        if names[0] == names[1]:
            names[1] = names[1] + "_2"
        attr = {
            names[0]: rng.random((len(targets), n)),
            names[1]: rng.normal(size=(len(targets), n)),
        }
        return SaliencyView(tokens=toks, raw_tokens=rw, targets=targets, attributions=attr,
                            n_input_tokens=n_in, title=title, style="detailed")
    if cls is RankGrid:
        L = 6
        ranks = np.minimum(50000, np.ceil(np.exp(rng.random((L, n - 1)) * 10 * (1 - np.arange(L) / L)[:, None]))).astype(np.int64)
        ranks[-1] = 1
        vocab = lab(5, "v{}") if labels is not None else [" the", " a", ",", " dog", " cat"]
        return RankGrid(tokens=toks, raw_tokens=rw, ranks=ranks, n_input_tokens=n_in,
                        layer_labels=lab(L, "L{}"), topk_vocab=vocab,
                        topk_index=rng.integers(0, len(vocab), size=(L, n - 1, 3)),
                        topk_probs=np.sort(rng.random((L, n - 1, 3)) / 3, axis=-1)[..., ::-1], title=title)
    if cls is RankWatch:
        watch = lab(3, "w{}") if labels is not None else [" is", " are", " was"]
        return RankWatch(tokens=toks, watch_tokens=watch, ranks=rng.integers(1, 3000, size=(6, len(watch))),
                         layer_labels=lab(6, "L{}"), title=title)
    if cls is LayerPredictions:
        vocab = lab(max(6, len(labels)), "v{}") if labels is not None else [" the", " a", ",", " dog", " cat", "."]
        if labels is not None:
            vocab = [f"{v}#{i}" for i, v in enumerate(vocab)]
        p = np.sort(rng.random((6, 4)) / 4, axis=-1)[:, ::-1]
        return LayerPredictions(position=n - 1, context_token=toks[-1], topk_vocab=vocab,
                                topk_index=np.stack([np.roll(np.arange(len(vocab)), -i)[:4] for i in range(6)]),
                                topk_probs=p, layer_labels=lab(6, "L{}"), title=title)
    if cls is FactorExplorer:
        return FactorExplorer(tokens=toks, raw_tokens=rw, factors=rng.random((4, n)) ** 2,
                              factor_labels=lab(4, "Factor {}"), n_input_tokens=n_in, title=title)
    if cls is NeuronHeatmap:
        return NeuronHeatmap(tokens=toks, raw_tokens=rw, activations=rng.normal(size=(12, n)),
                             neuron_labels=lab(12, "L3.N{}"), n_input_tokens=n_in, title=title)
    if cls is AttentionView:
        att = np.tril(rng.random((4, n, n)) ** 3) + np.eye(n) * 0.05
        att /= att.sum(-1, keepdims=True)
        return AttentionView(tokens=toks, raw_tokens=rw, attention=att, head_labels=lab(4, "H{}"),
                             n_input_tokens=n_in, title=title)
    if cls is views.Explorer:
        return explorer(toks, rw, n_in, rng, lab, title, hostile=labels is not None)
    if cls is LensComparison:
        return lens_comparison(toks, rw, n_in, rng, names=lab(2, "lens {}") if labels is not None else None,
                               layer_labels=lab(6, "L{}"), title=title)
    if cls is views.PatchingGrid:
        return patching_grid(toks, rw, rng, lab(6, "L{}"), lab(5, "v{}") if labels is not None else None, title)
    if cls is views.HeadPatchingGrid:
        return patching_heads(toks, rw, rng, lab(6, "L{}"), lab(5, "v{}") if labels is not None else None, title)
    if cls is views.PromptPairView:
        return prompt_pair(toks, rw, n_in, rng, lab(6, "L{}"), title)
    if cls is views.LogitAttributionView:
        return logit_attribution(toks, rw, rng, lab(6, "{}"), lab(7, "v{}") if labels is not None else None, title)
    if cls is views.FeatureExplorer:
        return feature_explorer(toks, rw, n_in, rng, lab(6, "feature {}"), lab(2, "{}")[-1] if labels is not None
                                else "' dog'", title)
    if cls is views.FeatureDashboardView:  # a dataset view: its texts are the tokens (strings) and the labels
        return feature_dashboard(toks, rw, rng, lab(4, "feature {}"), title)
    if cls is views.ContextMixingView:  # 6 layers, the last 3 tokens explained; per layer and rolled out
        targets = np.arange(n - 3, n)
        layers = rng.random((6, 3, n)).astype(np.float32) * (np.arange(n)[None, None] < targets[None, :, None])
        rolled = -np.cumsum(layers, axis=0)
        return views.ContextMixingView(toks, targets, layers, rolled, raw_tokens=rw, n_input_tokens=n_in,
                                       method=lab(1, "alti_logit")[0], layer_labels=lab(6, "{}"), title=title)
    if cls is views.BatchSummary:  # a dataset view: no tokens; its texts are the layer labels and method names
        share = np.sort(rng.random(8))
        return views.BatchSummary(layer_labels=lab(8, "{}"), share_rank1=share, first_layer_counts=rng.integers(
            0, 9, size=9), mean_kl=share[::-1] * 5, methods=lab(1, "ig"), attribution_by_distance=rng.random(
            (1, 32)) / 4, n_prompts=40, n_errors=2, title=title)
    raise AssertionError(cls)


def feature_dashboard(toks, raw, rng, names, title=""):
    """Latents 7, 9, 12, 30 over the tokens: top 3 contexts of 5 tokens (the token in the middle), 8 samples, a
    histogram over 6 bins, 3 promoted and suppressed tokens each; latent 30 never fires."""
    n, f, k, w, s = len(toks), 4, 3, 5, 8
    tokens = rng.integers(0, n, size=(f, k, w))
    tokens[:, :, 0] = -1  # the texts' first token: nothing before it
    values = -np.sort(-rng.random((f, k)) * 3, axis=1)
    docs = np.tile(np.arange(k), (f, 1))
    values[3], docs[3], tokens[3] = 0.0, -1, -1
    acts = rng.random((f, k, w)) * values[:, :, None]
    acts[:, :, 2] = values
    sample = {"values": -np.sort(-rng.random((f, s)), axis=1), "docs": np.tile(np.arange(s), (f, 1)),
              "positions": np.ones((f, s)), "tokens": rng.integers(0, n, size=(f, s, w)), "acts": rng.random((f, s, w))}
    sample["docs"][3] = -1
    hist = rng.integers(0, 9, size=(f, 7))
    hist[3] = 0
    promoted = {"promoted": (rng.integers(0, n, size=(f, 3)), rng.random((f, 3)) + 1),
                "suppressed": (rng.integers(0, n, size=(f, 3)), -rng.random((f, 3)) - 1)}
    return views.FeatureDashboardView(
        feature_ids=[7, 9, 12, 30], labels=names, strings=toks, raw_strings=raw, fire_counts=hist.sum(1), n_tokens=40,
        n_docs=3, top_values=values, top_docs=docs, top_positions=np.full((f, k), 2), top_tokens=tokens,
        top_acts=acts, hist=hist, hist_edges=[0.125, 0.25, 0.5, 1.0, 2.0, 4.0], sample=sample, promoted=promoted,
        promoted_note="W_dec row through the final norm at unit scale and the unembedding", title=title)


def feature_explorer(toks, raw, n_in, rng, names, target="' dog'", title=""):
    """A 40-latent dictionary over the tokens: latent 7 active at every other token and at the last two (the view
    lists token n - 2's features: it is selected, and the keyboard can move right from it), 2 or 3 others each,
    labels ``names`` for latents 7, 0, 1, ...; each token's
    features' attribution to ``target`` (signed)."""
    n, d, k = len(toks), 40, 3
    idx, val = np.full((n, k), -1), np.zeros((n, k))
    for t in range(n):
        others = rng.choice(np.arange(8, d), size=2, replace=False)
        row = [7, *others] if t % 2 == 0 or t >= n - 2 else list(others)
        idx[t, :len(row)], val[t, :len(row)] = row, rng.random(len(row)) * 3 + 0.1
    labels = dict(zip([7, *range(len(names) - 1)], names))
    attr = (idx, np.where(idx >= 0, rng.normal(size=(n, k)), 0.0))
    return views.FeatureExplorer(toks, idx, val, d_sae=d, labels=labels, attribution=attr, attribution_target=target,
                                 dictionary="blocks.6.hook_resid_post", raw_tokens=raw, n_input_tokens=n_in,
                                 selected_token=n - 2, title=title)


def logit_attribution(toks, raw, rng, layer_labels, vocab=None, title=""):
    """6 layers x 4 heads + MLPs explaining the last token's logit difference " dog" - " cat", each head's attention
    from the last position and 3 promoted tokens per component (from ``vocab``)."""
    n, L, H = len(toks), len(layer_labels), 4
    vocab = vocab or [" dog", " cat", " fox", " the", ",", " lazy", " over"]
    att = rng.random((L, H, n)) ** 3
    att /= att.sum(-1, keepdims=True)
    heads, mlp = rng.normal(size=(L, H)) * 0.4, rng.normal(size=L)
    values = -np.sort(-rng.random((L, H + 1, 3)), axis=-1) * 3
    return views.LogitAttributionView(
        heads, mlp, attn_totals=heads.sum(1) + 0.01, mlp_totals=mlp, term_labels=["embed", "final.bias"],
        term_values=[0.3, -0.05], layer_labels=layer_labels, tokens=toks, raw_tokens=raw, position=n - 1,
        target=vocab[0], foil=vocab[1], promoted_vocab=vocab,
        promoted_index=np.stack([rng.permutation(len(vocab))[:3] for _ in range(L * (H + 1))]).reshape(L, H + 1, 3),
        promoted_values=values, attention=att, title=title,
        accumulated=0.25 + np.concatenate([[0.0], np.cumsum(heads.sum(1) + 0.01 + mlp)]))


def prompt_pair(toks, raw, n_in, rng, layer_labels, title=""):
    """Prompt B differs from A at position 2 and has one token more after position 3; IG of the tokens after the
    prompt in both."""
    from ecco_widgets import Output, compare

    toks_b = toks[:2] + [" other"] + toks[2:3] + [" extra"] + toks[3:]
    raw_b = raw[:2] + ["Ġother"] + raw[2:3] + ["Ġextra"] + raw[3:]
    outs = []
    for t, r, ids in ((toks, raw, np.arange(len(toks))), (toks_b, raw_b,
                                                          np.r_[0, 1, 900, 2, 901, np.arange(3, len(toks))])):
        n = len(t)
        targets = np.arange(n_in, n)
        raw_attr = rng.random((len(targets), n, 2)).astype(np.float32)
        for row, target in enumerate(targets):
            raw_attr[row, target:] = 0  # causal: nothing at or after the explained token
        outs.append(Output(token_ids=ids, tokens=t, raw_tokens=r, n_input_tokens=n_in, model_name="m",
                           ranks=rng.integers(1, 3000, size=(len(layer_labels), n - 1)).astype(np.int32),
                           layer_labels=layer_labels, targets=targets, attributions_raw={"ig": raw_attr}))
    return compare(*outs).view(title=title)


def explorer(toks, raw, n_in, rng, lab, title="", hostile=False):
    """An explorer with every panel: two saliency methods for the tokens after the prompt, a 6-layer lens with
    top-3 predictions, two watched tokens, 3 factors with top neurons, attention rows of 2 heads (+ their mean)."""
    n, L = len(toks), 6
    targets = list(range(n_in, n))
    names = lab(2, "m{}") if hostile else ["integrated_gradients", "grad_x_input"]
    if names[0] == names[1]:
        names[1] += "_2"
    ranks = np.ceil(np.exp(rng.random((L, n - 1)) * 8 * (1 - np.arange(L) / L)[:, None])).astype(np.int64)
    vocab = lab(5, "v{}") if hostile else [" the", " a", ",", " dog", " cat"]
    vocab = [f"{v}#{i}" for i, v in enumerate(vocab)] if hostile else vocab
    att = np.tril(rng.random((2, n, n)) ** 3) + np.eye(n) * 0.05
    att /= att.sum(-1, keepdims=True)
    heads = np.concatenate([att.mean(0, keepdims=True), att])
    order = np.argsort(-heads, -1, kind="stable")[..., :4]
    values = np.take_along_axis(heads, order, -1)
    return views.Explorer(
        tokens=toks, raw_tokens=raw, n_input_tokens=n_in, title=title, layer_labels=lab(L, "{}"),
        targets=targets, attributions={names[0]: rng.random((len(targets), n)), names[1]: rng.normal(size=(len(targets), n))},
        ranks=ranks, target_probs=1 / ranks, first_layer=np.full(n - 1, L - 1), topk_vocab=vocab,
        topk_index=rng.integers(0, len(vocab), size=(L, n, 3)), topk_probs=np.sort(rng.random((L, n, 3)) / 3, -1)[..., ::-1],
        watch_tokens=lab(2, "w{}") if hostile else [" is", " are"], watch_ranks=rng.integers(1, 500, size=(L, n, 2)),
        factors=rng.random((3, n)) ** 2, factor_labels=lab(3, "Factor {}"), neuron_ids=rng.integers(0, 6, size=(n, 4, 2)),
        neuron_values=np.sort(rng.random((n, 4)), -1)[:, ::-1], attention_keys=np.where(values > 0, order, -1),
        attention_values=values, head_labels=lab(3, "head {}"), attention_label="layer 5", selected_token=n_in)


def lens_comparison(toks, raw, n_in, rng, names=None, layer_labels=None, title="", n_layers=6):
    """Two lenses whose ranks fall with depth (the second one faster), every metric given."""
    n = len(toks)
    depth = (1 - np.arange(n_layers) / n_layers)[None, :, None] * np.array([1.0, 0.6])[:, None, None]
    ranks = np.ceil(np.exp(rng.random((2, n_layers, n - 1)) * 8 * depth)).astype(np.int64)
    ranks[:, -1] = 1
    probs = np.clip(1 / ranks + rng.random(ranks.shape) * 0.05, 0, 1)
    kl = np.log(ranks) * rng.random(ranks.shape)
    entropy = 0.5 + np.log(ranks) * 0.8
    return LensComparison(toks, names or ["logit", "tuned"], ranks, raw_tokens=raw, n_input_tokens=n_in,
                          layer_labels=layer_labels, target_probs=probs, kl_to_final=kl, entropy=entropy,
                          title=title)


def patching_grid(toks, raw, rng, layer_labels, vocab=None, title=""):
    """A 6-layer patching grid: the corrupted prompt differs at position 2; effects in [-0.3, 1], every top-k."""
    n = len(toks)
    corrupted, corrupted_raw = list(toks), list(raw)
    corrupted[2 % n] = corrupted_raw[2 % n] = toks[2 % n] + "X"
    vocab = vocab or [" Paris", " Rome", " the", ",", " London"]
    effect = np.clip(rng.normal(0.2, 0.4, size=(6, n)), -0.3, 1.0)
    probs = np.sort(rng.random((6, n, 3)) / 3, axis=-1)[..., ::-1]
    return views.PatchingGrid(toks, corrupted, effect, clean_raw_tokens=raw, corrupted_raw_tokens=corrupted_raw,
        layer_labels=layer_labels, attribution_effect=effect * 0.8,
        agreement={"pearson": 0.9, "sign_agreement": 0.75, "signed_cells": 12.0}, topk_vocab=vocab,
        topk_index=rng.integers(0, len(vocab), size=(6, n, 3)), topk_probs=probs,
        reference_topk_index=[[0, 1, 2], [1, 0, 3]], reference_topk_probs=[[0.6, 0.2, 0.1], [0.7, 0.1, 0.05]],
        answer=vocab[0], foil=vocab[1], title=title)


def patching_heads(toks, raw, rng, layer_labels, vocab=None, title=""):
    """A 6-layer x 5-head head-patching grid at the last 3 positions (position 2 differs); every top-k."""
    n = len(toks)
    corrupted, corrupted_raw = list(toks), list(raw)
    corrupted[2 % n] = corrupted_raw[2 % n] = toks[2 % n] + "X"
    vocab = vocab or [" Paris", " Rome", " the", ",", " London"]
    effect = np.clip(rng.normal(0.1, 0.4, size=(6, 5, 3)), -0.3, 1.0)
    probs = np.sort(rng.random((6, 5, 3, 3)) / 3, axis=-1)[..., ::-1]
    return views.HeadPatchingGrid(toks, corrupted, effect, positions=[n - 3, n - 2, n - 1], clean_raw_tokens=raw,
        corrupted_raw_tokens=corrupted_raw, layer_labels=layer_labels, head_labels=(
            layer_labels[:5] if vocab and vocab[0] != " Paris" else None), attribution_effect=effect * 0.8,
        agreement={"pearson": 0.9, "sign_agreement": 0.75, "signed_cells": 12.0}, topk_vocab=vocab,
        topk_index=rng.integers(0, len(vocab), size=(6, 5, 3, 3)), topk_probs=probs,
        reference_topk_index=[[0, 1, 2], [1, 0, 3]], reference_topk_probs=[[0.6, 0.2, 0.1], [0.7, 0.1, 0.05]],
        answer=vocab[0], foil=vocab[1], title=title)

def hostile(cls):
    toks = HOSTILE + ["end"]
    return build(cls, tokens=toks, raw=toks, labels=HOSTILE_LITERAL, title=HOSTILE[0])


def big_rank_grid(n_layers: int = 48, n_tokens: int = 1000, topk: int = 5) -> RankGrid:
    rng = np.random.default_rng(1)
    toks = [f" t{i}" for i in range(n_tokens)]
    depth = (1 - np.arange(n_layers) / n_layers)[:, None]
    ranks = np.ceil(np.exp(rng.random((n_layers, n_tokens - 1)) * 10.8 * depth)).astype(np.int64)
    vocab = [f" w{i}" for i in range(200)]
    return RankGrid(tokens=toks, ranks=ranks, n_input_tokens=n_tokens // 2, topk_vocab=vocab,
                    topk_index=rng.integers(0, 200, size=(n_layers, n_tokens - 1, topk)),
                    topk_probs=(rng.random((n_layers, n_tokens - 1, topk)) / topk).astype(np.float32))
