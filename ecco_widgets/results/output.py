"""The result of one causal-LM analysis (the base of every result kind): plain numpy arrays and token text.

>>> import numpy as np
>>> out = Output(token_ids=np.array([5, 6, 7]), tokens=["A", " b", " c"], raw_tokens=["A", "Ġb", "Ġc"],
...              n_input_tokens=2, ranks=np.array([[3, 1], [1, 1]], dtype=np.int32))
>>> out.n_tokens, out.n_layers, out.output_tokens
(3, 2, [' c'])
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..analysis.attribution import aggregate_attributions, relative_completeness_error
from ..analysis.lens import watch_ranks
from ..errors import InputError, NotAvailableError
from .factors import NMFResult, neuron_heatmap, nmf_of, top_neurons
from .features import explore_features_of
from .logit_attribution import logit_attribution_of
from .logit_attributions import logit_attributions_of
from .feature_attribution import feature_attribution_of
from .storage import save_result
from .words import add_units, by_word, chat_options, sum_pieces, words_of
from .view_arrays import attention_heads, compact_vocab


@dataclass
class Output:
    """Everything computed for one token sequence (prompt first, then generated tokens).

    token_ids: int (n_tokens,); tokens / raw_tokens: display text and raw pieces, one per token.
    ranks: int32 (n_layers, n_tokens - 1): ranks[l, p] = 1-based rank of token p+1 when the output of block l at
    position p is decoded through the final norm and the unembedding. topk_ids / topk_probs:
    (n_layers, n_tokens, k) per layer and position (the last position predicts past the text).
    target_probs: float32 (n_layers, n_tokens - 1); entropy / kl_to_final: float32 (n_layers, n_tokens - 1), in nats,
    the entropy of each layer's decoded distribution and KL(p_final || p_layer), from the same pass. hidden_states: float32 (n_layers + 1, n_tokens, d_model),
    row 0 = embeddings (may be None). activations: (n_layers_kept, n_tokens, n_neurons) with activation_layers
    naming the layers. attributions_raw: {method: float32 (n_targets, n_tokens, d_model)} with targets: int
    (n_targets,). attention: float32 (n_layers, n_heads, n_tokens, n_tokens). lens: "logit", or "tuned" /
    "tuned:<folder>" when the rows were decoded through a tuned lens. lens_points: "blocks" (a row per block output),
    or "sublayers" (two rows per block, after its attention and after its MLP, labelled "3.attn", "3.mlp"; then
    n_layers counts rows and hidden_states has 2 * n_blocks + 1 rows). turns: [{"role", "start", "stop"}] chat
    turns (``lm.chat``); special_mask: bool (n_tokens,), chat-template special tokens. unit: "token", or "word"
    (``out.by_word()``; pieces / piece_starts (n_words + 1,): each word's raw pieces and token range); view methods
    take ``unit="word"``: a word's lens cell is its last piece's, its attribution the sum over its pieces.
    """

    token_ids: np.ndarray
    tokens: list[str]
    raw_tokens: list[str]
    n_input_tokens: int
    ranks: np.ndarray
    topk_ids: np.ndarray | None = None
    topk_probs: np.ndarray | None = None
    target_probs: np.ndarray | None = None
    entropy: np.ndarray | None = None
    kl_to_final: np.ndarray | None = None
    vocab_text: dict[int, str] = field(default_factory=dict)
    hidden_states: np.ndarray | None = None
    activations: np.ndarray | None = None
    activation_layers: list[int] = field(default_factory=list)
    targets: np.ndarray | None = None
    attributions_raw: dict[str, np.ndarray] = field(default_factory=dict)
    convergence_deltas: dict[str, np.ndarray] = field(default_factory=dict)
    attribution_settings: dict[str, Any] = field(default_factory=dict)
    mixing_raw: dict[str, np.ndarray] = field(default_factory=dict)  # context mixing: (2, layers, targets, tokens)
    attention_weights: np.ndarray | None = None
    model_name: str = ""
    model_fingerprint: str = ""  # config, dtype and weights (models/fingerprint.py): "" in files saved before it
    layer_labels: list[str] = field(default_factory=list)
    lens: str = "logit"
    lens_points: str = "blocks"
    turns: list[dict[str, Any]] = field(default_factory=list)
    special_mask: np.ndarray | None = None
    unit: str = "token"
    pieces: list[list[str]] = field(default_factory=list)
    piece_starts: np.ndarray | None = None
    features: dict[str, Any] = field(default_factory=dict)  # saes=[...]: {name: results.features.SAEFeatures}
    _decode: Callable | None = field(default=None, repr=False, compare=False)
    _encode_watch: Callable | None = field(default=None, repr=False, compare=False)
    _components: Any = field(default=None, repr=False, compare=False)  # components=True: the recorded forward

    def __post_init__(self) -> None:
        if not self.layer_labels:
            self.layer_labels = [str(i) for i in range(self.n_layers)]

    # ----- sizes and positions -----
    @property
    def n_tokens(self) -> int:
        return int(len(self.token_ids))

    @property
    def n_layers(self) -> int:
        return int(self.ranks.shape[0])

    @property
    def output_tokens(self) -> list[str]:
        """Display text of the tokens after the prompt."""
        return self.tokens[self.n_input_tokens:]

    def _position(self, position: int, n_positions: int | None = None) -> int:
        n = self.n_tokens if n_positions is None else n_positions
        if not isinstance(position, (int, np.integer)) or not -n <= position < n:
            raise InputError(f"position {position!r} is out of range: this output has {n} positions (0..{n - 1}, "
                             "or negative from the end).")
        return int(position) % n

    words = words_of  # out.words(): [{"text", "start", "stop", "pieces"}], contiguous token ranges
    logit_attribution = logit_attribution_of  # out.logit_attribution(position, target, foil, unit): components=True
    explore_features = explore_features_of  # out.explore_features(name, sae=, attribution=): a FeatureExplorer
    logit_attributions = logit_attributions_of  # every position (or a list) by layer or head, one batched pass
    feature_attribution = feature_attribution_of  # out.feature_attribution(sae, positions, target, foil)

    def by_word(self) -> "Output":
        """This output with words as tokens (unit == "word"; see :mod:`ecco_widgets.results.words`)."""
        return by_word(self, plain=type(self) is Output)

    # ----- logit lens -----
    def layer_topk(self, position: int, k: int = 10) -> list[dict[str, Any]]:
        """Per layer, the top-k next-token predictions at ``position``.

        Returns a list (one per layer) of {"layer", "token_ids", "tokens", "probs"}."""
        if self.topk_ids is None or self.topk_probs is None:
            raise NotAvailableError("This output has no top-k predictions; analyze with lens_topk > 0.")
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k (topk) must be a positive integer, got {k!r}.")
        stored = self.topk_ids.shape[-1]
        if k > stored:
            raise InputError(f"Only the top {stored} predictions were kept; analyze with lens_topk={k} for more.")
        p = self._position(position)
        rows = []
        for layer in range(self.n_layers):
            ids = [int(i) for i in self.topk_ids[layer, p, :k]]
            rows.append({
                "layer": layer,
                "token_ids": ids,
                "tokens": [self.vocab_text.get(i, str(i)) for i in ids],
                "probs": [float(x) for x in self.topk_probs[layer, p, :k]],
            })
        return rows

    def watch_ranks(self, tokens: Sequence[str | int], position: int = -1) -> np.ndarray:
        """Ranks, at every layer, of chosen tokens as the prediction at ``position``.

        tokens: strings that are single tokens (e.g. " is", " are") or token ids. Returns int32 (n_layers, n_watch).
        """
        if self.hidden_states is None or self._decode is None or self._encode_watch is None:
            raise NotAvailableError(
                "watch_ranks needs the model's final norm and unembedding and the hidden states: call it on an "
                "output fresh from lm.analyze/lm.generate (keep_hidden_states=True), or out.attach(lm) after ew.load."
            )
        ids = [self._encode_watch(t) for t in tokens]
        p = self._position(position)
        import torch

        hidden = torch.from_numpy(self.hidden_states[1:, p]).float()
        return watch_ranks(self._decode, hidden, ids)

    def attach(self, lm, lens: Any = None) -> "Output":
        """Reconnect a loaded output to its model (and the tuned lens it was decoded through), for watch_ranks.
        Returns self."""
        if self.lens != "logit" and lens is None:
            raise InputError(f"This output was decoded through a tuned lens ({self.lens}); pass it: "
                             "out.attach(lm, lens=ew.TunedLens.load(folder)).")
        self._decode = lm.spec.decode if lens is None else _through(lens, lm.spec.decode, self.lens_points)
        self._encode_watch = lm.single_token_id
        return self

    def first_layer_at_rank(self, k: int = 1) -> np.ndarray:
        """int32 (n_tokens - 1,): per position, the first layer (row) from which the next token stays within the
        top ``k`` in every later layer: when the model "found the word". -1 where even the last layer ranks it
        below k."""
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer (a rank: 1 = the top prediction), got {k!r}.")
        within = self.ranks <= k  # (n_layers, n_positions)
        stays = np.flip(np.logical_and.accumulate(np.flip(within, 0), axis=0), 0)  # within k from here on
        first = np.argmax(stays, axis=0).astype(np.int32)
        first[~stays.any(axis=0)] = -1
        return first

    # ----- views -----
    def explore(self, **options):
        """Explorer: one token row driving every panel this output has (saliency, lens, layer predictions, watched
        tokens, factors, attention); options in :func:`ecco_widgets.results.explore.explorer_traits`.
        Example: ``out.explore(watch=[" is", " are"], nmf=8, unit="word")``"""
        from ..views import Explorer

        return Explorer(self, **options)

    def rankings(self, metric: str = "rank", first_layer_k: int | None = 1, **view_options):
        """RankGrid: layers x tokens, each cell the rank of the next token at that layer.

        metric: what the cells show first, "rank", "prob" (of the next token), "kl" (to the last layer, nats) or
        "entropy" (nats); the view switches between them without Python. first_layer_k: mark per position the
        first layer from which the next token stays in the top k (None: no marker row).
        """
        from ..views import RankGrid

        if self.n_tokens < 2:
            raise NotAvailableError(f"{self.tokens!r} is one token: there is no next token to rank, so there is no "
                                    "rank grid. out.layer_predictions(position=0) shows what each layer expects next.")
        metrics = {"prob": self.target_probs, "kl": self.kl_to_final, "entropy": self.entropy}
        if metric not in ("rank", *metrics):
            raise InputError(f"metric must be one of 'rank', 'prob', 'kl', 'entropy', got {metric!r}.")
        if metric != "rank" and metrics[metric] is None:
            raise InputError(f"This output has no {metric!r} values (it was computed without lens metrics, or saved "
                             "by an older version); show metric='rank', or analyze again.")
        topk = self.topk_ids[:, :-1] if self.topk_ids is not None else None
        vocab, index = compact_vocab(topk, self.vocab_text)
        marker = {} if first_layer_k is None else {"first_layer": self.first_layer_at_rank(first_layer_k),
                                                   "first_layer_k": first_layer_k}
        return RankGrid(
            tokens=self.tokens, raw_tokens=self.raw_tokens, n_input_tokens=self.n_input_tokens, ranks=self.ranks,
            layer_labels=self.layer_labels, topk_vocab=vocab, topk_index=index,
            topk_probs=self.topk_probs[:, :-1] if self.topk_probs is not None else None,
            target_probs=self.target_probs, kl_to_final=self.kl_to_final, entropy=self.entropy, metric=metric,
            **marker, **{**chat_options(self), **view_options},
        )

    def rankings_watch(self, watch: Sequence[str | int], position: int = -1, **view_options):
        """RankWatch: ranks of the watched tokens at every layer, at ``position``."""
        from ..views import RankWatch

        ranks = self.watch_ranks(watch, position)
        p = self._position(position)
        labels = [w if isinstance(w, str) else self.vocab_text.get(int(w), str(w)) for w in watch]
        return RankWatch(tokens=self.tokens[: p + 1], position=p, watch_tokens=labels, ranks=ranks,
                         layer_labels=self.layer_labels, **view_options)

    def layer_predictions(self, position: int = -1, topk: int = 5, **view_options):
        """LayerPredictions: per layer, the top-k tokens at ``position`` with probability bars."""
        from ..views import LayerPredictions

        p = self._position(position)
        rows = self.layer_topk(p, topk)
        ids = np.array([r["token_ids"] for r in rows])
        vocab, index = compact_vocab(ids, self.vocab_text)
        probs = np.array([r["probs"] for r in rows], dtype=np.float32)
        return LayerPredictions(position=p, context_token=self.tokens[p], topk_vocab=vocab, topk_index=index,
                                topk_probs=probs, layer_labels=self.layer_labels, **view_options)

    # ----- attribution -----
    def _require_attribution(self, method: str) -> np.ndarray:
        if method not in self.attributions_raw:
            computed = ", ".join(self.attributions_raw) or "none"
            raise NotAvailableError(
                f"No {method!r} attributions in this output (computed: {computed}). "
                f"Pass attribution=({method!r},) to lm.generate or lm.analyze."
            )
        return self.attributions_raw[method]

    def attributions(self, method: str = "ig", aggregate: str = "sum") -> np.ndarray:
        """float (n_targets, n_tokens): row i explains token targets[i]; positions >= targets[i] are 0.

        aggregate: "sum" (signed, over embedding dims), "l2", or "l2_normalized" (rows sum to 1, Ecco's display).
        At word level each piece is aggregated, then a word's value is the sum over its pieces."""
        return sum_pieces(aggregate_attributions(self._require_attribution(method), aggregate), self.piece_starts)

    def context_mixing(self, method: str = "value_zeroing") -> "ContextMixing":
        """The per-layer and rolled-out matrices of a context-mixing method (value_zeroing, alti_logit, rollout), for
        a layers x source tokens view: see :class:`ecco_widgets.results.context_mixing.ContextMixing`."""
        from .context_mixing import ContextMixing

        if method not in self.mixing_raw:
            computed = ", ".join(self.mixing_raw) or "none"
            raise NotAvailableError(f"No context mixing by {method!r} in this output (computed: {computed}). Pass "
                                    f"attribution=({method!r},) to lm.analyze or lm.generate.")
        if self.unit == "word":
            raise NotAvailableError("Context mixing is kept per token: call context_mixing on the token-level output.")
        return ContextMixing.of(method, self.mixing_raw[method], self.tokens, self.targets)

    def convergence_delta(self, method: str = "ig", relative: bool = False) -> np.ndarray:
        """Completeness error per target: sum of attributions - (f(input) - f(baseline)).

        relative=True: |error| / |f(input) - f(baseline)| (0.01 = 1%; IG warns above that when it runs)."""
        self._require_attribution(method)
        if method not in self.convergence_deltas:
            raise NotAvailableError(f"{method!r} has no convergence delta (integrated gradients and its sequential "
                                    "and discretized forms have one).")
        deltas = self.convergence_deltas[method]
        if not relative:
            return deltas
        change = self.attribution_settings.get(f"{method}_change")
        if change is None or len(change) != len(deltas):
            raise NotAvailableError("This output does not record f(input) - f(baseline) (saved by an older version); "
                                    "use relative=False, or compute the attributions again.")
        return relative_completeness_error(deltas, change).astype(np.float32)

    def primary_attributions(self, method: str | None = None, aggregate: str = "l2_normalized",
                             style: str = "minimal", **view_options):
        """SaliencyView of the computed attributions; every computed method is offered in its switcher."""
        from ..views import SaliencyView

        if not self.attributions_raw:
            raise NotAvailableError("No attributions were computed; pass attribution=('ig',) to generate or analyze.")
        methods = list(self.attributions_raw)
        chosen = method or methods[0]
        self._require_attribution(chosen)
        values = {m: self.attributions(m, aggregate) for m in methods}
        # bidirectional encoders (masked LMs, classifiers) record causal=False; it survives save/load this way
        view_options.setdefault("causal", bool(self.attribution_settings.get("causal", True)))
        view_options.setdefault("completeness_error", self._relative_completeness())
        view_options.setdefault("baselines", self._baseline_descriptions(methods))
        return SaliencyView(**self._saliency_tokens(), attributions=values, method=chosen, style=style,
                            **{**chat_options(self), **view_options})

    def _baseline_descriptions(self, methods: list[str]) -> dict[str, str]:
        """For IG and occlusion: the baseline and the kept positions recorded in attribution_settings."""
        baseline = self.attribution_settings.get("baseline")
        if not baseline:
            return {}
        kept = self.attribution_settings.get("kept_positions") or []
        text = str(baseline) + (f", positions {', '.join(map(str, kept))} kept" if kept else "")
        return {m: text for m in methods if m in ("ig", "sig", "dig", "occlusion")}

    def _saliency_tokens(self) -> dict[str, Any]:
        """The token row of the saliency view and where the explained tokens sit in it."""
        return {"tokens": self.tokens, "raw_tokens": self.raw_tokens, "n_input_tokens": self.n_input_tokens,
                "targets": self.targets}

    def _relative_completeness(self) -> dict[str, np.ndarray]:
        """{method: relative completeness error per target} for the methods that have one (IG), where recorded."""
        errors = {}
        for method in self.convergence_deltas:
            try:
                errors[method] = self.convergence_delta(method, relative=True)
            except NotAvailableError:  # saved by an older version: f(x) - f(0) was not recorded
                pass
        return errors

    # ----- activations -----
    def _require_activations(self) -> np.ndarray:
        if self.activations is None:
            raise NotAvailableError("No activations were captured; pass activations=True (or a list of layers).")
        return self.activations

    def run_nmf(self, n_components: int | None = None, layers: Sequence[int] | None = None,
                positions: Sequence[int] | slice | None = None, **nmf_options) -> "NMFResult":
        """Factorise the (clipped at 0) MLP activations with NMF; see :func:`ecco_widgets.analysis.factors.factorize`.

        By default 8 factors, or fewer when the text is shorter (``nmf.note`` says so); see
        :func:`ecco_widgets.results.factors.nmf_of`.

        Example: ``nmf = out.run_nmf(n_components=8, layers=[0, 1, 2]); nmf.explore()``"""
        return nmf_of(self, n_components=n_components, layers=layers, positions=positions, **nmf_options)

    def top_neurons(self, position: int, k: int = 10, layer: int | None = None) -> list[dict[str, Any]]:
        """The k strongest neurons at one token: [{"layer", "neuron", "value"}], strongest first."""
        return top_neurons(self, self._position(position), k=k, layer=layer)

    def neuron_heatmap(self, layer: int, neurons: Sequence[int], **view_options):
        """NeuronHeatmap: raw activations of chosen neurons of one layer over the tokens."""
        return neuron_heatmap(self, layer, neurons, **view_options)

    # ----- attention -----
    def attention(self, layer: int, head: int | None = None, **view_options):
        """AttentionView of one layer (all heads as small multiples, or one head)."""
        from ..views import AttentionView

        weights, labels = attention_heads(self.attention_weights, layer, head, "model")
        return AttentionView(tokens=self.tokens, raw_tokens=self.raw_tokens, n_input_tokens=self.n_input_tokens,
                             attention=weights, head_labels=labels, **{**chat_options(self), **view_options})

    # ----- persistence -----
    def save(self, path: str | Path) -> Path:
        """Write every array and text field to one .npz file; ew.load reads it back, as this same class, without the
        model (``out.attach(lm)`` reconnects it)."""
        return save_result(self, path)

    def copy(self) -> "Output":
        """A deep copy, of the same class, that shares no array with this output (the model links are kept)."""
        links = (self._decode, self._encode_watch, self._components)
        self._decode = self._encode_watch = self._components = None
        try:
            clone = copy.deepcopy(self)
        finally:
            self._decode, self._encode_watch, self._components = links
        clone._decode, clone._encode_watch, clone._components = links
        return clone


add_units(Output, views=("rankings", "rankings_watch", "layer_predictions", "primary_attributions",
                         "neuron_heatmap", "attention"), others=("layer_topk", "watch_ranks", "run_nmf", "top_neurons"))


def _through(lens: Any, decode: Callable, lens_points: str) -> Callable:
    """decode(hidden (n_layers, d_model)) through ``lens``'s translators (the rows of one position)."""
    if lens_points != "blocks":
        raise InputError("A tuned lens has translators for block outputs only; this output has sublayer rows.")
    return lambda hidden: decode(lens.translate(hidden[:, None])[:, 0])
