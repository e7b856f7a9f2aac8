"""Ecco's ``OutputSeq`` over a native output: Ecco's attributes and its view calls, in Ecco's positions.

Positions are Ecco's: for a causal LM ``position=P`` is the position of the token being predicted (its prediction
is read at P - 1); for an encoder-decoder model P counts the source tokens, then the decoder tokens (P = n_source +
1 is the first generated token). ``position=-1`` (rankings_watch's default) is the last generated token. Layers
are block outputs, 0 = the first block (Ecco dropped the embedding row too). Unlike Ecco, every layer is decoded
through the model's final norm (docs/coming_from_ecco.md says what that changes).

Example::

    out = lm.generate("The keys to the cabinet", generate=1)
    out.rankings_watch(watch=[318, 389], position=5)   # " is" / " are" as the prediction for token 5
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError, NotAvailableError
from .arrays import activation_dict, attribution_lists, decoder_steps, embedding_states
from .methods import ATTRIBUTION_ALIASES, lazy_saliency
from .nmf import NMF


class OutputSeq:
    """What Ecco's ``lm.generate`` / ``lm(inputs)`` returned, over ``self.native`` (this project's output).

    Attributes as in Ecco: ``token_ids`` (torch, (1, n)), ``tokens`` ([raw pieces]), ``n_input_tokens``,
    ``output_text``, ``attribution`` ({method: [array per generated token]}), ``activations`` ({'decoder' or
    'encoder': (1, n_layers, n_neurons, n_positions)}), ``decoder_hidden_states``, ``encoder_hidden_states``,
    ``embedding_states``, ``config``, ``model_type``. Each output owns its arrays (Ecco's shared one dict).
    """

    def __init__(self, native: Any, lm: Any, methods: dict[str, str], generated: bool) -> None:
        self.native = native
        self.model_type = lm.model_type
        self.config = dict(lm.model_config)
        self.tokenizer = lm.tokenizer
        self.collect_activations_layer_nums = lm.collect_activations_layer_nums
        self._lm = lm
        self._generated = generated
        self._methods = dict(methods)
        enc_dec = self.model_type == "enc-dec"
        ids = np.concatenate([native.source_ids, native.token_ids]) if enc_dec else np.asarray(native.token_ids)
        self.token_ids = torch.tensor(ids, dtype=torch.long)[None]
        raw = list(native.source_raw_tokens) + list(native.raw_tokens) if enc_dec else list(native.raw_tokens)
        self.tokens = [raw]
        self.n_input_tokens = native.n_source if enc_dec else native.n_input_tokens
        self.output_text = self.tokenizer.decode([int(i) for i in ids]) if self.tokenizer is not None else ""
        self.attribution = attribution_lists(native, methods, self.model_type)
        names = getattr(getattr(lm.native, "spec", None), "down_proj_names", None) or [""]
        key = "encoder" if str(names[0]).startswith("encoder.") else "decoder"
        self.activations = activation_dict(native, self.model_type, generated, key)

    def __repr__(self) -> str:
        return f"<LMOutput {self.output_text!r} # of lm outputs: {self.native.n_tokens - self.native.n_input_tokens}>"

    __str__ = __repr__

    # ----- hidden states (Ecco's accessors) -----
    @property
    def decoder_hidden_states(self):
        """After generate: one tensor per generated token (n_layers, positions fed, d_model); after lm(inputs): a
        tuple of n_layers tensors (1, n_tokens, d_model). Block outputs; the last after the final norm, as
        transformers (and so Ecco) report it."""
        if self.model_type == "enc-dec" and not self._generated:
            return None
        spec = getattr(self._lm.native, "spec", None)
        return decoder_steps(self.native, self._generated, spec.final_norms if spec is not None else ())

    @property
    def encoder_hidden_states(self):
        """None for causal LMs and masked LMs (Ecco kept a masked LM's layers in decoder_hidden_states)."""
        if self.model_type == "enc-dec":
            raise NotAvailableError("The encoder's hidden states are not kept for encoder-decoder models here; the "
                                    "decoder's are (output.decoder_hidden_states).")
        return None

    @property
    def embedding_states(self) -> torch.Tensor:
        """The embedding row (hidden state 0) of the positions last fed to the model, in Ecco's shape."""
        return embedding_states(self.native, self._generated)

    def _get_encoder_hidden_states(self):
        return self.decoder_hidden_states if self.model_type != "enc-dec" else self.encoder_hidden_states

    def _get_hidden_states(self):
        return (self.encoder_hidden_states, self.decoder_hidden_states)

    # ----- positions -----
    def _native_position(self, position: int, what: str) -> int:
        """Ecco's position of a predicted token -> the native position whose prediction it is."""
        if self.model_type == "mlm":
            raise InputError(f"{what} is not supported for masked LMs (as in Ecco).")
        n_total = int(self.token_ids.shape[1])
        first = self.n_input_tokens + 1 if self.model_type == "enc-dec" else 1
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
            raise InputError(f"position must be an integer, got {position!r}.")
        p = n_total - 1 if position == -1 else int(position)
        if not first <= p < n_total:
            raise InputError(f"position={position} is out of range: Ecco's positions name the predicted token, "
                             f"{first}..{n_total - 1} here (the prediction for token P is read at P - 1).")
        return p - (self.n_input_tokens + 1 if self.model_type == "enc-dec" else 1)

    # ----- views -----
    def rankings(self, printJson: bool = False, **view_options):
        """RankGrid of the rank, at every layer, of each token the model produced (Ecco's ``rankings``; the grid
        also shows the prompt's columns). printJson=True returns Ecco's data dict instead: rankings (n_layers,
        n_generated)."""
        self._native_position(-1, "rankings")
        if printJson:
            start = 0 if self.model_type == "enc-dec" else self.native.n_input_tokens - 1
            return {"rankings": self.native.ranks[:, start:].copy(),
                    "output_tokens": list(self.tokens[0][self.n_input_tokens + (1 if self.model_type == "enc-dec"
                                                                               else 0):])}
        return self.native.rankings(**view_options)

    def rankings_watch(self, watch: Sequence[int] | None = None, position: int = -1, printJson: bool = False,
                       **view_options):
        """RankWatch: ranks of the ``watch`` token ids at every layer as the prediction for token ``position``."""
        if not watch:
            raise InputError("watch must list the token ids to follow, e.g. watch=[318, 389].")
        p = self._native_position(position, "rankings_watch")
        if printJson:
            return {"rankings": self.native.watch_ranks(list(watch), p), "position": p}
        return self.native.rankings_watch(list(watch), position=p, **view_options)

    def layer_predictions(self, position: int = 1, topk: int | None = 10, layer: int | None = None,
                          printJson: bool = False, **view_options):
        """LayerPredictions: each layer's top-k candidates for token ``position`` (only ``layer`` when given)."""
        if position == 0:
            raise InputError("'position' is set to 0. There is never a hidden state associated with this position. "
                             "Possible values are 1 and above -- the position of the token of interest.")
        p = self._native_position(position, "layer_predictions")
        k = 10 if topk is None else topk
        n_layers = self.native.n_layers
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, (int, np.integer))
                                  or not -n_layers <= layer < n_layers):
            raise InputError(f"layer {layer!r} does not exist: the model has {n_layers} layers (0..{n_layers - 1}).")
        if printJson:
            rows = self.native.layer_topk(p, k)
            return rows if layer is None else [rows[int(layer)]]
        if layer is not None:
            view_options.setdefault("layers", [int(layer)])
        return self.native.layer_predictions(position=p, topk=k, **view_options)

    def primary_attributions(self, attr_method: str = "grad_x_input", style: str = "minimal",
                             ignore_tokens: Sequence[int] | None = None, **view_options):
        """SaliencyView of ``attr_method`` (Ecco's name); ``ignore_tokens``: positions shown with no attribution
        (the others' shares are renormalised). This output's arrays are not changed."""
        if attr_method not in self.attribution:
            raise NotAvailableError(f"attr_method={attr_method} not found. Choose one of the following: "
                                    f"{list(self.attribution)} (pass attribution=[{attr_method!r}] to generate).")
        native = self._without(ignore_tokens or [])
        view_options.pop("printJson", None)
        return native.primary_attributions(self._methods[attr_method], style=style, **view_options)

    def saliency(self, attr_method: str = "grad_x_input", style: str = "minimal", **view_options):
        """Ecco's earlier name for primary_attributions (grad x input by default; computed now when generate ran
        without it)."""
        if attr_method not in self.attribution:
            if attr_method not in ATTRIBUTION_ALIASES:
                raise InputError(f"Unknown attribution method {attr_method!r}.")
            extra = lazy_saliency(self, self._lm, attr_method)
            native_method = ATTRIBUTION_ALIASES[attr_method]
            self.native.attributions_raw[native_method] = extra.attributions_raw[native_method]
            self.native.targets = extra.targets
            self.native.attribution_settings = {**self.native.attribution_settings, **extra.attribution_settings}
            self._methods[attr_method] = native_method
            self.attribution.update(attribution_lists(self.native, {attr_method: native_method},
                                                             self.model_type))
        return self.primary_attributions(attr_method, style=style, **view_options)

    def _without(self, ignore_tokens: Sequence[int]) -> Any:
        """The native output with the raw attributions of ``ignore_tokens`` (Ecco positions) set to 0, as a copy."""
        if not ignore_tokens:
            return self.native
        n_columns = int(self.token_ids.shape[1])
        bad = [t for t in ignore_tokens if isinstance(t, bool) or not isinstance(t, (int, np.integer))
               or not -n_columns <= t < n_columns]
        if bad:
            raise InputError(f"ignore_tokens {bad} are not token positions of this output (0..{n_columns - 1}).")
        raw = {m: a.copy() for m, a in self.native.attributions_raw.items()}
        for values in raw.values():
            values[:, [int(t) for t in ignore_tokens]] = 0
        return dataclasses.replace(self.native, attributions_raw=raw)

    def run_nmf(self, n_components: int = 10, from_layer: int | None = None, to_layer: int | None = None,
                **nmf_options) -> NMF:
        """NMF of the MLP activations of layers from_layer..to_layer - 1 (default all), as Ecco's ``run_nmf``.

        Every token is fitted (Ecco's meaning; the native default leaves the first token out: pass
        exclude_first=True for it). Example: ``nmf = out.run_nmf(n_components=8, from_layer=0, to_layer=1)``
        """
        layers = self._nmf_layers(from_layer, to_layer)
        nmf_options.setdefault("exclude_first", False)
        stack = {"stack": nmf_options.pop("stack", "decoder")} if self.model_type == "enc-dec" else {}
        n_tokens = self.native.n_tokens if self.model_type != "enc-dec" else None
        n_components = int(min(n_components, n_tokens)) if n_tokens else n_components  # Ecco's min(n, positions)
        return NMF(self.native.run_nmf(n_components=n_components, layers=layers, **stack, **nmf_options))

    def _nmf_layers(self, from_layer: int | None, to_layer: int | None) -> list[int] | None:
        if not self.activations:
            raise NotAvailableError("No activations were collected: load the model with "
                                    "ecco.from_pretrained(..., activations=True).")
        if from_layer is None and to_layer is None:
            return None
        start = 0 if from_layer is None else int(from_layer)
        stop = self.native.n_layers if to_layer is None else int(to_layer)
        if start == stop:
            raise InputError(f"from_layer ({from_layer}) and to_layer ({to_layer}) cannot be the same value. They "
                             "must be apart by at least one to allow for a layer of activations.")
        if start > stop:
            raise InputError(f"from_layer ({from_layer}) cannot be larger than to_layer ({to_layer}).")
        return list(range(start, stop))

    def attention(self, attention_values: Any = None, layer: int = 0, **view_options):
        """AttentionView of one layer's heads (load the model with attention=True), as Ecco's ``attention``."""
        if attention_values is not None:
            raise InputError("attention_values is not supported: the view reads the attention captured with the "
                             "output (ecco.from_pretrained(..., attention=True)).")
        return self.native.attention(layer, **view_options)

    def explore(self, **options):
        """This project's explorer over the output (Ecco had no such view)."""
        return self.native.explore(**options)
