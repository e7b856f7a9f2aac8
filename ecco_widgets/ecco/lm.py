"""Ecco's ``LM``: ``lm.generate(text, generate=N, ...)`` and ``lm(inputs)`` on this project's model kinds.

An :class:`LM` holds one native model (``lm.native``: a LanguageModel, MaskedLanguageModel or Seq2SeqLanguageModel)
and translates Ecco's call forms to it; the work (one hooked forward, the lens, batched attributions) is the
native engine's. Every option is checked before any model runs.

>>> ECCO_IG_CAUSAL["n_steps"], LENS_TOPK
(50, 50)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from .methods import check_attribution
from .output import OutputSeq

#: Ecco's integrated gradients: captum's defaults (zero baseline, no token kept, 50 Gauss-Legendre points)
ECCO_IG = {"n_steps": 50}
ECCO_IG_CAUSAL = {"baseline": "zero", "keep": "none", **ECCO_IG}
#: how many predictions per layer and position are kept, so that layer_predictions(topk=...) up to it works
LENS_TOPK = 50


class LM:
    """Ecco's language-model object, built by :func:`ecco_widgets.ecco.from_pretrained`.

    ``lm.tokenizer``, ``lm.model`` (the transformers model), ``lm.model_name``, ``lm.model_type`` ('causal', 'mlm'
    or 'enc-dec'), ``lm.model_config`` (Ecco's config dict) and ``lm.native`` (this project's model object).
    Example: ``lm = ecco.from_pretrained('distilgpt2'); out = lm.generate("Hi", generate=3, attribution=['ig'])``
    """

    def __init__(self, native: Any, model_type: str, model_config: dict[str, Any], activations: bool = False,
                 attention: bool = False, hidden_states: bool = True,
                 activations_layer_nums: Sequence[int] | None = None, verbose: bool = True, name: str = "") -> None:
        self.native = native
        self.model_type = model_type
        self.model_config = model_config
        self.collect_activations_flag = bool(activations)
        self.collect_activations_layer_nums = None if activations_layer_nums is None else \
            [int(n) for n in activations_layer_nums]
        self.attention = bool(attention)
        self.hidden_states = bool(hidden_states)
        self.verbose = verbose
        self.model_name = name

    def __repr__(self) -> str:
        return f"ecco.LM({self.model_name!r}, type={self.model_type!r}, native={self.native!r})"

    @property
    def tokenizer(self) -> Any:
        return self.native.tokenizer

    @property
    def model(self) -> Any:
        return self.native.model

    # ----- options shared by both entry points -----
    def _activation_option(self) -> Any:
        if not self.collect_activations_flag:
            return False
        return True if self.collect_activations_layer_nums is None else list(self.collect_activations_layer_nums)

    def _capture_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"activations": self._activation_option(), "attention": self.attention}
        if self.model_type != "enc-dec":
            options["keep_hidden_states"] = self.hidden_states
        options["lens_topk"] = _lens_topk(self.native)
        return options

    def attribution_options(self, methods: Mapping[str, str]) -> dict[str, Any]:
        """The native options computing ``methods`` as Ecco did (captum's IG defaults)."""
        if not methods:
            return {"attribution": ()} if self.model_type == "enc-dec" else {}
        extra = ECCO_IG_CAUSAL if self.model_type == "causal" else ECCO_IG
        return {"attribution": tuple(dict.fromkeys(methods.values())), **(extra if "ig" in methods.values() else {})}

    # ----- Ecco's entry points -----
    def generate(self, input_str: str, max_length: int | None = 8, temperature: float | None = None,
                 top_k: int | None = None, top_p: float | None = None, do_sample: bool | None = False,
                 attribution: Sequence[str] | None = None, generate: int | None = None, beam_size: int = 1,
                 **generate_kwargs: Any) -> OutputSeq:
        """Generate ``generate`` tokens (or up to ``max_length`` tokens in all) and analyse them (Ecco's call).

        attribution: Ecco's method names ('ig', 'grad_x_input', 'saliency'); IG as Ecco computed it (zero baseline,
        50 points). Example: ``out = lm.generate("The keys to the cabinet", generate=1, do_sample=False)``
        """
        if self.model_type == "mlm":
            raise InputError(f"generate is for causal and encoder-decoder models; {self.model_name!r} is a masked "
                             "LM: run it on tokenizer output instead, lm(lm.tokenizer([text], return_tensors='pt')).")
        if not isinstance(input_str, str):
            raise InputError(f"input_str must be a string, got {type(input_str).__name__}.")
        methods = check_attribution(attribution)
        n_input = len(self.native.encode_source(input_str) if self.model_type == "enc-dec"
                      else self.native.encode(input_str))
        if generate is not None:
            if isinstance(generate, bool) or not isinstance(generate, (int, np.integer)) or generate < 1:
                raise InputError(f"generate must be a positive number of tokens, got {generate!r}.")
            n_new = int(generate)
        else:
            if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
                raise InputError(f"max_length must be an integer, got {max_length!r}.")
            n_new = int(max_length) if self.model_type == "enc-dec" else int(max_length) - n_input
            if n_new < 1:
                raise InputError(f"max_length set to {max_length} while the input has {n_input} tokens; pass "
                                 "generate=N (tokens to generate) or a larger max_length.")
        kwargs = {k: v for k, v in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p)) if v is not None}
        if beam_size != 1:
            kwargs["num_beams"] = beam_size
        kwargs.update(generate_kwargs)
        sample = bool(do_sample) if do_sample is not None else False
        native_out = self.native.generate(input_str, n_new, sample, generation_kwargs=kwargs or None,
                                          **self._capture_options(), **self.attribution_options(methods))
        return OutputSeq(native_out, self, methods, generated=True)

    def __call__(self, input_tokens: Mapping[str, Any]) -> OutputSeq:
        """One forward pass over tokenizer output (``lm.tokenizer([text], return_tensors="pt")``): hidden states and
        activations, no attribution (Ecco's call on masked LMs such as BERT)."""
        if not hasattr(input_tokens, "__getitem__") or "input_ids" not in input_tokens:
            raise InputError("lm(inputs) needs the tokenizer's output, with 'input_ids': "
                             "inputs = lm.tokenizer([text], return_tensors='pt').")
        ids = np.asarray(_to_numpy(input_tokens["input_ids"]))
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[0] != 1:
            raise InputError(f"lm(inputs) analyses one sequence at a time; input_ids has shape {ids.shape}. Call it "
                             "once per text.")
        mask = input_tokens.get("attention_mask") if hasattr(input_tokens, "get") else None
        if mask is not None and not np.asarray(_to_numpy(mask)).all():
            raise InputError("The attention_mask hides some tokens (padding); pass one unpadded sequence.")
        token_ids = [int(i) for i in ids[0]]
        options = self._capture_options()
        if self.model_type == "enc-dec":
            start = self.native.decoder_start_token_id
            native_out = self.native.analyze_ids(token_ids, [start], **options, attribution=())
        elif self.model_type == "causal":
            native_out = self.native.analyze_ids(token_ids, n_input_tokens=len(token_ids), **options)
        else:
            native_out = self.native.analyze_ids(token_ids, **options)
        return OutputSeq(native_out, self, {}, generated=False)


def _to_numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    return detach().cpu().numpy() if detach is not None else np.asarray(value)


def _lens_topk(native: Any) -> int:
    """LENS_TOPK, or the vocabulary size when it is smaller."""
    vocab = getattr(native, "vocab_size", None)
    return min(LENS_TOPK, int(vocab)) if vocab else LENS_TOPK
