"""LanguageModel: a causal LM + tokenizer + discovered ModelSpec; ``analyze`` and ``generate`` return an Output.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> import torch
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval()
>>> out = LanguageModel(model, tokenizer=None).analyze_ids([3, 5, 7, 9])
>>> out.ranks.shape
(2, 3)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Sequence

import numpy as np
import torch

from .adapter import ModelSpec, discover_spec
from .analysis.lens import logit_lens
from .capture import capture, check_activation_memory
from .errors import InputError, UnsupportedModelError
from .result import Output
from .tokens import display_tokens


class LanguageModel:
    """Wraps a transformers causal LM for analysis. Build it with ``ew.from_pretrained`` or ``ew.demo_model``."""

    def __init__(self, model: torch.nn.Module, tokenizer=None, spec: ModelSpec | None = None, name: str = ""):
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
        self.model = model
        self.tokenizer = tokenizer
        self.spec = discover_spec(model, spec)
        self.name = name or type(model).__name__

    def __repr__(self) -> str:
        return f"LanguageModel({self.name!r}, layers={self.spec.n_layers})"

    # ----- limits and tokens -----
    @property
    def context_window(self) -> int | None:
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        for key in ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"):
            value = getattr(text, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise InputError("This model has no tokenizer: pass tokenizer=... to ew.from_pretrained, or use "
                             "analyze_ids with token ids.")
        return self.tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model sees it (with the tokenizer's special tokens, e.g. BOS)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("The prompt is empty: give some text, e.g. lm.analyze('The keys to the cabinet are').")
        ids = self._require_tokenizer()(text)["input_ids"]
        return [int(i) for i in ids]

    def single_token_id(self, token: str | int) -> int:
        """The id of a string that is exactly one token (e.g. " is"), or an id checked against the vocabulary."""
        vocab = self.spec.unembedding.weight.shape[0] if hasattr(self.spec.unembedding, "weight") else None
        if isinstance(token, (int, np.integer)):
            if vocab is not None and not 0 <= int(token) < vocab:
                raise InputError(f"Token id {token} is outside the vocabulary (0..{vocab - 1}).")
            return int(token)
        ids = self._require_tokenizer().encode(token, add_special_tokens=False)
        if len(ids) != 1:
            pieces = self.tokenizer.convert_ids_to_tokens(ids)
            raise InputError(
                f"{token!r} is not one token: it splits into {pieces}. Watch a single token (try it with or without "
                "a leading space, e.g. ' is') or pass a token id."
            )
        return int(ids[0])

    def _check_length(self, n_tokens: int, what: str) -> None:
        window = self.context_window
        if window is not None and n_tokens > window:
            raise InputError(f"{what} is {n_tokens} tokens, past the model's context window of {window}. "
                             "Shorten the text (or generate fewer tokens).")

    # ----- the two entry points -----
    def analyze(self, text: str, **options: Any) -> Output:
        """Teacher-forced analysis of given text. Options as in :meth:`analyze_ids`.

        Example: ``out = lm.analyze("The keys to the cabinet are", attribution=("ig",), targets=slice(5, None))``
        """
        ids = self.encode(text)
        self._check_length(len(ids), "The text")
        return self.analyze_ids(ids, n_input_tokens=len(ids), **options)

    def generate(self, prompt: str, max_new_tokens: int = 20, do_sample: bool = False,
                 generation_kwargs: dict | None = None, **options: Any) -> Output:
        """Generate (greedy unless do_sample=True), then analyse prompt + generated tokens in one hooked pass.

        Example: ``out = lm.generate("The capital of France is", max_new_tokens=10)``
        """
        ids = self.encode(prompt)
        if max_new_tokens < 0:
            raise InputError("max_new_tokens must be 0 or more.")
        self._check_length(len(ids) + max_new_tokens, f"The prompt plus max_new_tokens={max_new_tokens}")
        tokenizer = self._require_tokenizer()
        kwargs = dict(generation_kwargs or {})
        kwargs.setdefault("pad_token_id", tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                          else tokenizer.eos_token_id)
        input_ids = torch.tensor([ids], device=self.model.device)
        with torch.inference_mode():
            generated = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                            max_new_tokens=max_new_tokens, do_sample=do_sample, **kwargs)
        all_ids = [int(i) for i in generated[0]]
        options.setdefault("targets", slice(len(ids), None))
        return self.analyze_ids(all_ids, n_input_tokens=len(ids), **options)

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
    ) -> Output:
        """Analyse a token sequence: logit-lens ranks always; attributions, activations, attention when asked.

        targets: positions to explain (default: generated tokens, or every token after the first).
        activations: True for every layer, or a list of layer indices. attention: capture attention weights.
        """
        ids = [int(i) for i in token_ids]
        if not ids:
            raise InputError("There are no tokens to analyse; give a non-empty text.")
        n = len(ids)
        n_input = n if n_input_tokens is None else int(n_input_tokens)
        layers = self._activation_layers(activations)
        if layers:
            check_activation_memory(self.spec, layers, n, np.dtype(activation_dtype))
        target_positions = self._target_positions(targets, n, n_input) if attribution else None

        input_ids = torch.tensor([ids], device=self.model.device)
        with self._attention_mode(attention):
            captured = capture(self.spec, input_ids, activation_layers=layers, activation_dtype=activation_dtype,
                               attention=attention)
        next_ids = torch.tensor(ids[1:] + [0], device=captured.hidden.device)
        lens = logit_lens(self.spec.decode, captured.hidden[1:], next_ids, k=lens_topk,
                          final_logits=captured.logits)
        out = self._output(ids, n_input, captured, layers, lens, n - 1, keep_hidden_states)
        if attribution:
            self._attribute(out, input_ids, target_positions, attribution, target, contrast, n_steps, progress)
        return out

    # ----- helpers -----
    def _output(self, ids: list[int], n_input: int, captured, layers: list[int], lens, n_ranked: int,
                keep_hidden_states: bool) -> Output:
        """An Output from one capture: token text, lens arrays (ranks of the first ``n_ranked`` positions;
        ``lens=None`` for a model without a head), activations and attention, all copies owned by the output."""
        tokens, raw = display_tokens(self.tokenizer, ids) if self.tokenizer is not None else (
            [str(i) for i in ids], [str(i) for i in ids])
        if lens is None:
            lens_fields: dict[str, Any] = {"ranks": np.zeros((self.spec.n_layers, 0), np.int32)}
        else:
            lens_fields = {
                "ranks": lens.ranks[:, :n_ranked].copy(), "topk_ids": lens.topk_ids, "topk_probs": lens.topk_probs,
                "target_probs": lens.target_probs[:, :n_ranked].copy(),
                "vocab_text": self._vocab_text(np.unique(lens.topk_ids)),
            }
        out = Output(
            token_ids=np.asarray(ids, dtype=np.int64), tokens=tokens, raw_tokens=raw, n_input_tokens=n_input,
            hidden_states=captured.hidden.cpu().numpy().copy() if keep_hidden_states else None,
            model_name=self.name, **lens_fields,
        )
        if layers:
            out.activations = np.stack([captured.activations[layer] for layer in layers])
            out.activation_layers = list(layers)
        if captured.attentions is not None:
            out.attention_weights = captured.attentions.cpu().numpy().copy()
        if lens is not None:
            out._decode = self.spec.decode
            out._encode_watch = self.single_token_id
        return out

    def _activation_layers(self, activations: bool | Sequence[int]) -> list[int]:
        if activations is False or activations is None:
            return []
        n_layers = self.spec.n_layers
        if activations is True:
            return list(range(n_layers))
        layers = []
        for layer in activations:
            if not isinstance(layer, (int, np.integer)) or not -n_layers <= layer < n_layers:
                raise InputError(f"Layer {layer!r} does not exist: the model has {n_layers} layers "
                                 f"(0..{n_layers - 1}).")
            layers.append(int(layer) % n_layers)
        return sorted(set(layers))

    @staticmethod
    def _target_positions(targets, n: int, n_input: int) -> np.ndarray:
        if targets is None:
            positions = list(range(n_input, n)) if n_input < n else list(range(1, n))
        elif isinstance(targets, slice):
            positions = list(range(n))[targets]
        else:
            positions = [int(t) for t in targets]
        bad = [p for p in positions if not 1 <= (p % n if p < 0 else p) < n]
        if bad:
            raise InputError(f"Target positions {bad} cannot be explained: a target needs at least one token before "
                             f"it, so positions go from 1 to {n - 1}.")
        positions = [p % n for p in positions]
        if not positions:
            raise InputError("No tokens to explain: the targets selection is empty.")
        return np.asarray(positions, dtype=np.int64)

    def _vocab_text(self, ids: np.ndarray) -> dict[int, str]:
        if self.tokenizer is None:
            return {int(i): str(int(i)) for i in ids}
        shown, _ = display_tokens(self.tokenizer, [int(i) for i in ids])
        return {int(i): s for i, s in zip(ids, shown)}

    @contextmanager
    def _attention_mode(self, attention: bool):
        """Switch to eager attention only while attention weights are asked for (sdpa returns none)."""
        config = self.model.config
        previous = getattr(config, "_attn_implementation", None)
        switch = attention and previous not in (None, "eager") and hasattr(self.model, "set_attn_implementation")
        if switch:
            self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            if switch:
                self.model.set_attn_implementation(previous)

    def _attribute(self, out: Output, input_ids, positions, methods, target, contrast, n_steps, progress) -> None:
        from .analysis.attribution import compute_attributions

        foil_ids = self._foil_ids(contrast, out.token_ids, positions)
        result = compute_attributions(self.spec, input_ids, positions, list(methods), target=target,
                                      foil_ids=foil_ids, n_steps=n_steps, progress=progress)
        out.targets = positions
        out.attributions_raw = result.raw
        out.convergence_deltas = result.deltas
        out.attribution_settings = result.settings

    def _foil_ids(self, contrast, token_ids: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
        """Per target, the foil token id for contrastive attribution (-1 where none)."""
        if contrast is None:
            return None
        foils = np.full(len(positions), -1, dtype=np.int64)
        if isinstance(contrast, dict):
            mapping = {self.single_token_id(k): self.single_token_id(v) for k, v in contrast.items()}
            for i, p in enumerate(positions):
                foils[i] = mapping.get(int(token_ids[p]), -1)
            if (foils < 0).all():
                raise InputError(f"None of the explained tokens is a key of contrast={contrast!r}; the keys must be "
                                 "tokens that occur at the target positions.")
        else:
            foils[:] = self.single_token_id(contrast)
        return foils
