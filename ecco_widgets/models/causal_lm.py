"""Causal language models: ``analyze`` and ``generate`` return an :class:`~ecco_widgets.results.Output`.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval()
>>> out = LanguageModel(model, tokenizer=None).analyze_ids([3, 5, 7, 9])
>>> out.ranks.shape
(2, 3)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..adapter import ModelSpec, discover_spec
from ..analysis.attribution import check_methods, check_n_steps, check_target
from ..analysis.attribution.discretized import vocabulary_of
from ..analysis.components import ComponentRecorder
from ..analysis.components.mixing import mixing_layout
from ..analysis.attribution.methods import MIXING_METHODS
from ..analysis.features import FeatureRecorder
from ..analysis.lens import logit_lens
from ..capture import capture
from .generation import check_generation_options, generate_ids, pad_id
from .steering import generate_steered, links_of
from ..errors import InputError, UnsupportedModelError
from ..memory import check_activation_memory
from ..results import Output
from ..results.features import features_of
from .baselines import baseline_embeddings, keep_mask
from .causal_function import CausalFunction, compute_attributions  # noqa: F401  (CausalFunction: re-exported)
from .base import ModelBase, load_config, load_model, load_tokenizer, name_of, prepare

#: Integrated gradients' defaults for causal LMs, measured (bench_attribution.py --baselines; docs/saliency.md):
#: the cheapest setting whose relative completeness error has median < 1 % and max < 5 % on SmolLM2 (RMSNorm) and
#: on the GPT-2-like model. Keeping the first token (the attention sink) stops RMSNorm's chain of saturations near
#: the zero baseline; the zero baseline alone does not converge at any step count tried.
IG_DEFAULTS = {"n_steps": 96, "baseline": "zero", "keep": "special"}

_ENCODER_DECODER = ("{what} is an encoder-decoder model (T5, BART, ...); from_pretrained is for causal LMs. Use "
                    "ew.seq2seq(model_or_path, tokenizer=...) for it.")


class LanguageModel(ModelBase):
    """A causal LM + tokenizer + discovered ModelSpec. Build it with ``ew.from_pretrained`` or ``ew.demo_model``."""

    text_name = "prompt"

    def __init__(self, model: nn.Module, tokenizer: Any = None, spec: ModelSpec | None = None, name: str = ""):
        if type(model).__name__.endswith("ForMaskedLM"):
            raise UnsupportedModelError(
                f"{type(model).__name__} is a masked language model: it predicts the token at each position, not the "
                "next one. Use ew.masked_lm(model, tokenizer=...) for it."
            )
        if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
            if spec is None or spec.unembedding is None:
                raise UnsupportedModelError(
                    f"{type(model).__name__} has no language-model head. Load it with AutoModelForCausalLM, "
                    "or pass ew.ModelSpec(unembedding='...') naming the module that maps hidden states to logits."
                )
        super().__init__(model, tokenizer, name)
        self.spec = discover_spec(model, spec)

    def __repr__(self) -> str:
        return f"LanguageModel({self.name!r}, layers={self.spec.n_layers})"

    @property
    def vocab_size(self) -> int | None:
        weight = getattr(self.spec.unembedding, "weight", None)
        return int(weight.shape[0]) if weight is not None else super().vocab_size

    # ----- the two entry points -----
    def analyze(self, text: str, **options: Any) -> Output:
        """Teacher-forced analysis of given text. Options as in :meth:`analyze_ids`.

        Example: ``out = lm.analyze("The keys to the cabinet are", attribution=("ig",), targets=slice(5, None))``
        """
        ids = self.encode(text)
        self.check_length(len(ids), "The text")
        return self.analyze_ids(ids, n_input_tokens=len(ids), **options)

    def generate(self, prompt: str, max_new_tokens: int = 20, do_sample: bool = False,
                 generation_kwargs: dict | None = None, steer: Any = None, **options: Any) -> Output:
        """Generate (greedy unless do_sample=True), then analyse prompt + generated tokens in one hooked pass.

        Example: ``out = lm.generate("The capital of France is", max_new_tokens=10)``. steer={sae: {feature: value}}
        returns a SteeringResult: the plain and the steered continuation (models/steering.py, docs/features.md).
        """
        if steer is not None:
            return generate_steered(self, prompt, max_new_tokens, do_sample, generation_kwargs, steer, **options)
        ids = self.encode(prompt)
        if isinstance(max_new_tokens, (bool, np.bool_)) or not isinstance(max_new_tokens, (int, np.integer)) \
                or max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}; to analyse the "
                             "prompt alone use lm.analyze(prompt).")
        self.check_length(len(ids) + max_new_tokens, f"The prompt plus max_new_tokens={max_new_tokens}")
        if options.get("attribution"):  # before generating; analyze_ids checks the rest
            if set(check_methods(options["attribution"], internals=True)) & set(MIXING_METHODS):
                mixing_layout(self.spec)
        if options.get("saes"):  # sites and widths, before generating
            FeatureRecorder(self.spec, options["saes"], 1, check=False)
        kwargs = check_generation_options(do_sample, generation_kwargs)
        all_ids = generate_ids(self, ids, max_new_tokens, do_sample, kwargs, pad_id(self._require_tokenizer()))
        options.setdefault("targets", slice(len(ids), None))
        return self.analyze_ids(all_ids, n_input_tokens=len(ids), **options)

    def chat(self, messages: Sequence[dict], max_new_tokens: int | None = None, do_sample: bool = False,
             generation_kwargs: dict | None = None, **options: Any) -> Output:
        """Answer a chat through the tokenizer's chat template and analyse the transcript (options as in analyze).

        ``out.turns`` marks each turn, ``out.special_mask`` the template's special tokens; the answer's tokens are
        explained by default. A transcript that ends with an assistant message is analysed as it is (its last
        answer explained). Example: ``out = lm.chat([{"role": "user", "content": "Hi!"}], max_new_tokens=20)``
        """
        from .chat import chat

        return chat(self, messages, max_new_tokens, do_sample, generation_kwargs, **options)

    def analyze_ids(
        self,
        token_ids: Sequence[int],
        n_input_tokens: int | None = None,
        attribution: Sequence[str] = (),
        targets: slice | Sequence[int] | None = None,
        target: str = "prob",
        contrast: dict | str | int | None = None,
        n_steps: int | None = None,
        activations: bool | Sequence[int] = False,
        activation_dtype: str = "float32",
        attention: bool = False,
        lens_topk: int = 10,
        keep_hidden_states: bool = True,
        progress: bool | None = None,
        baseline: Any = IG_DEFAULTS["baseline"],
        keep: Any = IG_DEFAULTS["keep"],
        lens: Any = None,
        lens_points: str = "blocks",
        components: bool = False,
        saes: Any = (),
    ) -> Output:
        """Analyse a token sequence: logit-lens ranks always; attributions, activations, attention when asked.

        targets: positions to explain (default: generated tokens, or every token after the first).
        activations: True for every layer, or a list of layer indices. attention: capture attention weights.
        baseline / keep: where integrated gradients' path starts, what occlusion puts in a token's place, and which
        positions stay fixed (see :mod:`ecco_widgets.models.baselines`). n_steps, baseline and keep default to
        IG_DEFAULTS (96 Gauss-Legendre points, zero baseline, first and special tokens kept).
        lens: None (the logit lens) or an ew.TunedLens trained for this model. lens_points: "blocks" (a row per block
        output) or "sublayers" (after each block's attention and after its MLP, rows "0.attn", "0.mlp", ...).
        components: also record, in the same forward, what ``out.logit_attribution(...)`` (direct logit
        attribution) reads.
        saes: sparse dictionaries (ew.SAE, or (SAE, site) pairs; site: a TransformerLens hook name, a module name or
        an ew.Site) read in the same forward: ``out.features[name]`` holds each one's active latents per token
        (sparse), error norms, FVU and L0; a SiteWarning when one fits its site badly (docs/features.md).
        """
        ids = self.check_ids(token_ids)
        n = len(ids)
        n_input = n if n_input_tokens is None else int(n_input_tokens)
        if not 0 <= n_input <= n:
            raise InputError(f"n_input_tokens={n_input_tokens!r} must lie in 0..{n} (the number of tokens).")
        self.check_options(lens_topk, activation_dtype, self.vocab_size)
        tuned = self.check_lens(lens, lens_points)
        sublayers = lens_points == "sublayers"
        layers = self.activation_layers(activations, self.spec.n_layers)
        if layers:
            check_activation_memory(self.spec, layers, n, np.dtype(activation_dtype))
        if not attribution and contrast is not None:
            raise InputError("contrast only shapes attributions, and none were asked for: pass attribution=('ig',) "
                             "(or another method), or drop contrast.")
        if attribution:  # every argument checked before the forward pass
            methods = check_methods(attribution, internals=True)
            if set(methods) & set(MIXING_METHODS):
                mixing_layout(self.spec)  # a family whose layout is not handled is refused here
            check_target(target)
            n_steps = IG_DEFAULTS["n_steps"] if n_steps is None else check_n_steps(n_steps)
            target_positions = self._target_positions(targets, n, n_input)
            foil_ids = self.foil_ids(contrast, np.asarray(ids), target_positions)
            keep_mask(keep, ids, set())  # checked here; applied in compute_attributions
            if "dig" in methods:
                vocabulary_of(self.spec.embedding, torch.tensor([ids[:1]], device=self.device))
            if not (isinstance(baseline, str) and baseline in ("zero", "mean")):
                baseline_embeddings(baseline, self.spec.embedding, torch.tensor([ids[:1]], device=self.device),
                                    self.tokenizer, self.model.config)
        self.check_capture_memory(n, sublayers, attention)
        plugs = (ComponentRecorder(self.spec, n),) if components else ()  # refuses a model it cannot decompose
        features = FeatureRecorder(self.spec, saes, n) if saes else None  # sites and widths checked here

        input_ids = torch.tensor([ids], device=self.device)
        with self.lock:
            with self.attention_mode(attention):
                captured = capture(self.spec, input_ids, activation_layers=layers, activation_dtype=activation_dtype,
                                   attention=attention, progress=progress, sublayers=sublayers,
                                   plugs=plugs + ((features,) if features else ()))
            out = self.lens_output(ids, n_input, captured, layers, tuned, lens_topk, lens_points, keep_hidden_states,
                                   progress)
            del captured
            out._components = plugs[0].finish() if plugs else None
            out.features = features_of(features.finish()) if features else {}
            out._saes = links_of(features)  # out.feature_attribution(name)
            if attribution:
                result = compute_attributions(self.spec, input_ids, target_positions, methods, target=target,
                                              foil_ids=foil_ids, n_steps=n_steps, progress=progress,
                                              baseline=baseline, keep=keep, tokenizer=self.tokenizer)
                out.targets = target_positions
                out.attributions_raw = result.raw
                out.convergence_deltas = result.deltas
                out.attribution_settings = result.settings
                out.mixing_raw = result.mixing
        return out

    # ----- helpers -----
    def check_capture_memory(self, n_tokens: int, sublayers: bool, attention: bool) -> None:
        """check_memory for one hooked forward over n_tokens (two lens rows per block with sublayers)."""
        d_model = int(self.spec.embedding.weight.shape[-1]) if hasattr(self.spec.embedding, "weight") else 1
        self.check_memory(self.spec.n_layers * (2 if sublayers else 1), n_tokens, d_model, attention)

    def lens_output(self, ids: list[int], n_input: int, captured: Any, layers: list[int], tuned: Any,
                    lens_topk: int, lens_points: str, keep_hidden_states: bool, progress: bool | None) -> Output:
        """The Output of one capture decoded through one lens (tuned: a checked TunedLens, None for the logit lens);
        compare_lenses decodes one capture through several."""
        next_ids = torch.tensor(ids[1:] + [0], device=captured.hidden.device)
        decoded = logit_lens(self.spec.decode, captured.hidden[1:], next_ids, k=lens_topk,
                             final_logits=captured.logits, progress=progress,
                             transform=None if tuned is None else tuned.translate)
        labels = [f"{i}.{part}" for i in range(self.spec.n_layers) for part in ("attn", "mlp")] \
            if lens_points == "sublayers" else []
        out = self.output_of(ids, n_input, captured, layers, decoded, len(ids) - 1, keep_hidden_states,
                             layer_labels=labels, lens="logit" if tuned is None else tuned.name,
                             lens_points=lens_points)
        if tuned is not None:
            out.attach(self, lens=tuned)
        return out

    def check_lens(self, lens: Any, lens_points: str) -> Any:
        """The tuned lens to decode through (None for the logit lens), checked against this model before any work."""
        if lens_points not in ("blocks", "sublayers"):
            raise InputError(f"lens_points must be 'blocks' (a row per block) or 'sublayers' (after each block's "
                             f"attention and after its MLP), got {lens_points!r}.")
        if lens_points == "sublayers" and getattr(self.model.config, "do_layer_norm_before", True) is False:
            raise InputError("This model normalises after each residual addition (post-norm, e.g. OPT-350m): its "
                             "blocks have no residual stream between attention and MLP to decode. Use "
                             "lens_points='blocks'.")
        if lens is None or (isinstance(lens, str) and lens == "logit"):
            return None
        if not (hasattr(lens, "translate") and hasattr(lens, "check_model")):
            raise InputError(f"lens must be None (the logit lens) or an ew.TunedLens (ew.TunedLens.fit(lm, texts) or "
                             f"ew.TunedLens.load(folder)), got {type(lens).__name__}.")
        if lens_points != "blocks":
            raise InputError("A tuned lens has translators for block outputs only: use lens_points='blocks' with it, "
                             "or the logit lens (lens=None) for sublayers.")
        lens.check_model(self.spec)
        return lens

    @staticmethod
    def _target_positions(targets, n: int, n_input: int) -> np.ndarray:
        if targets is None:
            if n < 2:
                raise InputError(f"No tokens to explain: attribution explains a token by the ones before it, and this "
                                 f"text has {n} token{'s' if n != 1 else ''}. Give a longer text, or generate after "
                                 f"it (lm.generate(prompt, max_new_tokens=N, attribution=...)).")
            positions = list(range(n_input, n)) if n_input < n else list(range(1, n))
        elif isinstance(targets, slice):
            positions = list(range(n))[targets]
        else:
            if isinstance(targets, (int, np.integer)):
                targets = [targets]
            odd = [t for t in targets if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer))]
            if odd:
                raise InputError(f"Target positions must be integers (token positions, negative from the end); got "
                                 f"{odd}.")
            positions = [int(t) for t in targets]
        bad = [p for p in positions if not 1 <= (p + n if p < 0 else p) < n]
        if bad:
            raise InputError(f"Target positions {bad} cannot be explained: a target needs at least one token before "
                             f"it, so positions go from 1 to {n - 1} (or -{n - 1} to -1 from the end).")
        positions = [p % n for p in positions]
        if not positions:
            raise InputError("No tokens to explain: the targets selection is empty.")
        return np.asarray(positions, dtype=np.int64)


def from_pretrained(model: Any, tokenizer: Any = None, spec: ModelSpec | None = None,
                    dtype: torch.dtype | str | None = None, device: str | torch.device = "cpu",
                    attn_implementation: str | None = None, **load_kwargs: Any) -> LanguageModel:
    """A LanguageModel from a hub id ("gpt2"), a local folder, or a transformers model object (+ its tokenizer).

    spec: an ew.ModelSpec for models whose parts cannot be found by inspection. dtype defaults to float32.
    Example: ``lm = ew.from_pretrained("distilgpt2")`` or ``ew.from_pretrained(model, tokenizer=tok)``.
    """
    if isinstance(model, (str, Path)):
        name = str(model)
        model, tokenizer = _load_causal(name, tokenizer, dtype, attn_implementation, load_kwargs)
    else:
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(
                f"from_pretrained got a {type(model).__name__}; pass a hub id, a local folder, or a transformers "
                "model object (e.g. AutoModelForCausalLM.from_pretrained(...))."
            )
        name = name_of(model)
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            raise UnsupportedModelError(_ENCODER_DECODER.format(what=type(model).__name__))
    return LanguageModel(prepare(model, device), tokenizer, spec=spec, name=name)


def _load_causal(name: str, tokenizer, dtype, attn_implementation, load_kwargs: dict):
    from transformers import AutoModelForCausalLM

    gguf = {k: v for k, v in load_kwargs.items() if k == "gguf_file"}
    config = load_config(name, **gguf)
    if getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(_ENCODER_DECODER.format(what=repr(name)))
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) \
            and any(a.endswith(("ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
                                "ForQuestionAnswering")) for a in architectures):
        raise UnsupportedModelError(
            f"{name!r} was saved as {architectures[0]}, not a causal language model: transformers would load it as "
            "a causal LM with a head it never trained, and its ranks would mean nothing. Use ew.masked_lm(...) for "
            "a masked LM or encoder, ew.classifier(...) for a classifier."
        )
    try:
        model = load_model(name, AutoModelForCausalLM, dtype, attn_implementation, **load_kwargs)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error) or "does not support" in str(error):
            raise UnsupportedModelError(
                f"{name!r} is a {type(config).__name__.replace('Config', '')} model, which has no causal-LM head in "
                "transformers. ecco_widgets.from_pretrained needs a causal language model (AutoModelForCausalLM); "
                "for an encoder or masked LM (BERT, RoBERTa, DistilBERT) use ew.masked_lm(...)."
            ) from None
        raise
    source = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    return model, load_tokenizer(tokenizer, source, optional=tokenizer is None, **gguf)
