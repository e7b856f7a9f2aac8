"""Seq2SeqOutput: the result of one encoder-decoder analysis (see ecco_widgets.models.seq2seq).

>>> import numpy as np
>>> out = Seq2SeqOutput(token_ids=np.array([0, 7, 8]), tokens=["<pad>", "a", "b"], raw_tokens=["<pad>", "a", "b"],
...                     n_input_tokens=1, ranks=np.ones((2, 2), np.int32), source_ids=np.array([3, 4]),
...                     source_tokens=["x", "y"], source_raw_tokens=["x", "y"])
>>> out.n_source, out.all_tokens
(2, ['x', 'y', '<pad>', 'a', 'b'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, NotAvailableError
from .factors import neuron_heatmap, nmf_of, top_neurons
from .output import Output
from .view_arrays import attention_heads

__all__ = ["STACKS", "Seq2SeqOutput"]

STACKS = ("encoder", "decoder")
_ATTENTION_KINDS = ("encoder", "decoder", "cross")


@dataclass
class Seq2SeqOutput(Output):
    """An Output of an encoder-decoder model. The inherited fields describe the *decoder* sequence (token_ids,
    tokens, ranks, topk, hidden_states, layer_labels; n_input_tokens = 1, the start token). In addition:

    source_ids / source_tokens / source_raw_tokens: the encoder input. encoder_activations /
    decoder_activations: float (n_layers_kept, n_tokens, n_neurons) with encoder_ / decoder_activation_layers
    (the inherited ``activations`` stays None). encoder_attention (n_enc, H, n_src, n_src), decoder_attention
    (n_dec, H, m, m), cross_attention (n_dec, H, m, n_src). targets: decoder positions explained;
    attributions_raw[method]: (n_targets, n_source + m, d_model), source columns first.
    """

    source_ids: np.ndarray | None = None
    source_tokens: list[str] = field(default_factory=list)
    source_raw_tokens: list[str] = field(default_factory=list)
    encoder_activations: np.ndarray | None = None
    encoder_activation_layers: list[int] = field(default_factory=list)
    decoder_activations: np.ndarray | None = None
    decoder_activation_layers: list[int] = field(default_factory=list)
    encoder_attention: np.ndarray | None = None
    decoder_attention: np.ndarray | None = None
    cross_attention: np.ndarray | None = None
    n_encoder_layers: int = 0

    # ----- sizes -----
    @property
    def n_source(self) -> int:
        return 0 if self.source_ids is None else int(len(self.source_ids))

    @property
    def decoder_tokens(self) -> list[str]:
        return self.tokens

    @property
    def all_tokens(self) -> list[str]:
        """Source tokens then decoder tokens: the columns of ``attributions``."""
        return list(self.source_tokens) + list(self.tokens)

    # ----- attribution -----
    def _saliency_tokens(self) -> dict[str, Any]:
        """The saliency view runs over source + decoder tokens (the source counts as the input); targets are decoder
        tokens."""
        return {"tokens": self.all_tokens, "raw_tokens": list(self.source_raw_tokens) + list(self.raw_tokens),
                "n_input_tokens": self.n_source, "targets": np.asarray(self.targets) + self.n_source}

    # ----- activations -----
    def _stack_output(self, stack: str) -> Output:
        """A plain Output over one stack's tokens and activations, for the activation analyses."""
        if stack not in STACKS:
            raise InputError(f"stack must be 'encoder' or 'decoder', got {stack!r}.")
        acts = self.encoder_activations if stack == "encoder" else self.decoder_activations
        if acts is None:
            raise NotAvailableError(f"No {stack} activations were captured; pass activations=True (or a list of "
                                    "layers) to generate/analyze.")
        if stack == "encoder":
            ids, tokens, raw, n_input = self.source_ids, self.source_tokens, self.source_raw_tokens, self.n_source
            layers, n_layers = self.encoder_activation_layers, self.n_encoder_layers
        else:
            ids, tokens, raw, n_input = self.token_ids, self.tokens, self.raw_tokens, 1
            layers, n_layers = self.decoder_activation_layers, self.n_layers
        return Output(token_ids=np.asarray(ids), tokens=list(tokens), raw_tokens=list(raw), n_input_tokens=n_input,
                      ranks=np.zeros((n_layers, max(len(ids) - 1, 0)), np.int32), activations=acts,
                      activation_layers=list(layers), model_name=self.model_name)

    def run_nmf(self, n_components: int | None = None, layers: Sequence[int] | None = None,
                positions: Sequence[int] | slice | None = None, stack: str = "decoder", **nmf_options):
        """NMF of one stack's MLP activations (``stack="encoder"`` over source tokens, ``"decoder"`` over decoder
        tokens); see ecco_widgets.analysis.factors.run_nmf."""
        return nmf_of(self._stack_output(stack), n_components=n_components, layers=layers, positions=positions,
                       **nmf_options)

    def top_neurons(self, position: int, k: int = 10, layer: int | None = None, stack: str = "decoder"):
        view = self._stack_output(stack)
        return top_neurons(view, view._position(position), k=k, layer=layer)

    def neuron_heatmap(self, layer: int, neurons: Sequence[int], stack: str = "decoder", **view_options):
        return neuron_heatmap(self._stack_output(stack), layer, neurons, **view_options)

    # ----- attention -----
    def attention(self, layer: int, head: int | None = None, kind: str = "decoder", **view_options):
        """AttentionView of one layer: kind "encoder" (source self-attention), "decoder" (decoder self-attention) or
        "cross" (decoder queries over source keys, shown over source + decoder tokens)."""
        from ..views import AttentionView

        if kind not in _ATTENTION_KINDS:
            raise InputError(f"kind must be one of {', '.join(_ATTENTION_KINDS)}, got {kind!r}.")
        weights = {"encoder": self.encoder_attention, "decoder": self.decoder_attention,
                   "cross": self.cross_attention}[kind]
        w, labels = attention_heads(weights, layer, head, f"{kind} attention")
        if kind == "encoder":
            tokens, raw, n_input = self.source_tokens, self.source_raw_tokens, self.n_source
        elif kind == "decoder":
            tokens, raw, n_input = self.tokens, self.raw_tokens, 1
        else:
            n_src, m = self.n_source, self.n_tokens
            square = np.zeros((w.shape[0], n_src + m, n_src + m), dtype=np.float32)
            square[:, n_src:, :n_src] = w
            w, tokens, n_input = square, self.all_tokens, n_src
            raw = list(self.source_raw_tokens) + list(self.raw_tokens)
        return AttentionView(tokens=list(tokens), raw_tokens=list(raw), n_input_tokens=n_input, attention=w,
                             head_labels=labels, **view_options)
