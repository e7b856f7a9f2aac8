"""Sequence classifiers (``*ForSequenceClassification``): which tokens made the model choose a label.

``ew.classifier(model_or_path, tokenizer)`` wraps BERT / RoBERTa / DistilBERT / ELECTRA ... classifiers (the head
reads the first token, [CLS] / <s>) and decoder-only ones such as GPT2ForSequenceClassification (the ``score`` head
reads the last token). ``analyze(text, target=label, attribution=("ig",))`` explains f = the probability of the
label (softmax over the labels; sigmoid for multi-label models; ``target_fn="logit"`` / ``"logprob"`` too) by every
token's embedding: positions before and after the pooled token all get attribution, see
:mod:`ecco_widgets.analysis.attribution`. Views: ``out.primary_attributions()`` (a SaliencyView with
``causal=False``; the explained "token" is the one the head reads).

>>> from transformers import BertConfig, BertForSequenceClassification
>>> _ = torch.manual_seed(0)
>>> model = BertForSequenceClassification(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
...     intermediate_size=32, vocab_size=50, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}))
>>> out = classifier(model).analyze_ids([1, 5, 7, 2], target="pos", attribution=("grad_x_input",), progress=False)
>>> out.target_label, out.labels, out.attributions("grad_x_input").shape
(1, ['neg', 'pos'], (1, 4))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..analysis.attribution.discretized import Vocabulary, vocabulary_of
from ..analysis.attribution import EmbeddedInput, attribute, check_methods, check_n_steps, check_target, \
    scalar_of_logits
from ..errors import InputError, UnsupportedModelError
from ..results import ClassifierOutput
from .base import ModelBase, load_model, load_tokenizer, prepare, resolve_source

__all__ = ["ClassifierFunction", "SequenceClassifier", "classifier"]


class ClassifierFunction:
    """What a classifier explains: f = prob / logit / logprob of one label (softmax, or sigmoid for multi-label
    models; the raw score of a regression head), from every token's embedding."""

    def __init__(self, clf: "SequenceClassifier", input_ids: torch.Tensor, label: int, target: str):
        self.clf = clf
        self.n_layers = clf.n_layers
        with torch.inference_mode():
            embeddings = clf.model.get_input_embeddings()(input_ids).clone()
        self.inputs = [EmbeddedInput(embeddings, n_columns=int(input_ids.shape[-1]))]
        self.input_ids = input_ids
        self.label = torch.tensor([label], device=input_ids.device)
        self.target = "logit" if clf.regression else target

    def hidden(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.clf.label_logits(xs[0])[:, None]  # (b, 1, n_labels): one target

    def vocabularies(self) -> list[Vocabulary]:
        """Every word's embedding (what discretized IG walks through)."""
        return [vocabulary_of(self.clf.model.get_input_embeddings(), self.input_ids)]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return scalar_of_logits(h, self.label, self.target, multi_label=self.clf.multi_label)


class SequenceClassifier(ModelBase):
    """A ``*ForSequenceClassification`` model + tokenizer. Build it with :func:`classifier`."""

    def __init__(self, model: nn.Module, tokenizer=None, name: str = ""):
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(f"classifier got a {type(model).__name__}; pass a local folder, a hub id, or "
                                        "a transformers *ForSequenceClassification model object.")
        if not type(model).__name__.endswith("ForSequenceClassification"):
            raise UnsupportedModelError(
                f"{type(model).__name__} has no sequence-classification head. Load a fine-tuned classifier with "
                "AutoModelForSequenceClassification (e.g. a sentiment model); for an MLM use ew.masked_lm, for a "
                "causal LM ew.from_pretrained."
            )
        super().__init__(model.eval(), tokenizer, name)
        config = model.config
        self.n_labels = int(getattr(config, "num_labels", 0) or 0)
        id2label = getattr(config, "id2label", None) or {}
        self.labels = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(self.n_labels)]
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        self.regression = getattr(config, "problem_type", None) == "regression" or self.n_labels == 1
        # decoder-only classifiers (GPT-2, Llama, ...) score the last token with `score`; encoders read token 0
        self.last_token = isinstance(getattr(model, "score", None), nn.Module)

    def __repr__(self) -> str:
        return f"SequenceClassifier({self.name!r}, labels={self.labels})"

    # ----- inputs -----
    def label_index(self, label: int | str | None, predicted: int) -> int:
        """The index of a label given by index or name (None: the predicted label)."""
        if label is None:
            return predicted
        if isinstance(label, (bool, np.bool_)):
            raise InputError(f"target must be a label index or name, got {label!r}.")
        if isinstance(label, (int, np.integer)):
            if not -self.n_labels <= label < self.n_labels:
                raise InputError(f"Label {label} is out of range: the model has {self.n_labels} labels "
                                 f"(0..{self.n_labels - 1}: {self.labels}).")
            return int(label) % self.n_labels
        if isinstance(label, str):
            if label in self.labels:
                return self.labels.index(label)
            lowered = [name.lower() for name in self.labels]
            if lowered.count(label.lower()) == 1:
                return lowered.index(label.lower())
            raise InputError(f"Unknown label {label!r}; the model's labels are {self.labels}.")
        raise InputError(f"target must be a label index or name, got {type(label).__name__}.")

    # ----- the model over embeddings -----
    def label_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Label logits (b, n_labels) for token embeddings x (b, n, d)."""
        if self.last_token:  # the model itself refuses batches without a pad token; the head reads the last token
            hidden = self.model.base_model(inputs_embeds=x).last_hidden_state
            return self.model.score(hidden[:, -1])
        return self.model(inputs_embeds=x).logits

    @property
    def n_layers(self) -> int:
        config = self.model.config
        return int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0) or 0)

    # ----- analysis -----
    def analyze(self, text: str, target: int | str | None = None, **options: Any) -> ClassifierOutput:
        """Classify ``text`` and explain the label ``target`` (index or name; default: the predicted label).

        Example: ``out = clf.analyze("A gripping, funny film.", attribution=("ig",)); out.primary_attributions()``
        """
        return self.analyze_ids(self.encode(text), target=target, **options)

    def analyze_ids(self, token_ids: Sequence[int], target: int | str | None = None,
                    attribution: Sequence[str] = ("ig",), target_fn: str = "prob", n_steps: int | None = None,
                    progress: bool | None = None) -> ClassifierOutput:
        """Classify a token sequence (with its special tokens) and attribute label ``target`` to every token.

        attribution: methods of :mod:`ecco_widgets.analysis.attribution` (() for none). target_fn: "prob"
        (default), "logit" or "logprob" of the label.
        """
        ids = self.check_ids(token_ids)
        methods = check_methods(attribution) if attribution else []
        check_target(target_fn, "target_fn")
        check_n_steps(n_steps)
        if self.n_labels < 1:
            raise UnsupportedModelError(f"{type(self.model).__name__} has no labels (config.num_labels is 0).")

        input_ids = torch.tensor([ids], device=self.device)
        with torch.inference_mode():
            own = self.model(input_ids=input_ids).logits.float()[0]
            embedded = self.model.get_input_embeddings()(input_ids)
            logits = self.label_logits(embedded).float()[0]
        if float((logits - own).abs().max()) > 1e-3 * max(1.0, float(own.abs().max())):
            raise UnsupportedModelError(
                f"{type(self.model).__name__}: the logits computed from the token embeddings do not reproduce the "
                "model's own logits, so its attributions would not explain it."
            )
        if self.regression:
            probs = own
        else:
            probs = own.sigmoid() if self.multi_label else own.softmax(-1)
        predicted = int(probs.argmax())
        label = self.label_index(target, predicted)
        position = len(ids) - 1 if self.last_token else 0
        tokens, raw = self.display(ids)
        out = ClassifierOutput(
            token_ids=np.asarray(ids, dtype=np.int64), tokens=tokens, raw_tokens=raw, n_input_tokens=len(ids),
            ranks=np.zeros((self.n_layers, 0), np.int32), model_name=self.name,
            label_probs=probs.cpu().numpy().astype(np.float32), labels=list(self.labels),
            predicted_label=predicted, target_label=label,
        )
        out.targets = np.asarray([position], dtype=np.int64)
        if methods:
            function = ClassifierFunction(self, input_ids, label, target_fn)
            with self.lock:
                result = attribute(function, self.model, methods, n_steps, progress, settings={
                    "target": function.target, "causal": False, "label": label, "label_name": self.labels[label],
                    "attributed": f"token embeddings ({type(self.model.get_input_embeddings()).__name__} output)",
                    "explained": f"{'sigmoid' if self.multi_label else 'softmax'} {target_fn} of label "
                                 f"{self.labels[label]!r}, read by the head at position {position}"})
            out.attributions_raw = result.raw
            out.convergence_deltas = result.deltas
            out.attribution_settings = result.settings
        return out


def classifier(model, tokenizer=None, dtype: torch.dtype | str | None = None, device: str | torch.device = "cpu",
               **load_kwargs) -> SequenceClassifier:
    """A SequenceClassifier from a local folder / hub id or a ``*ForSequenceClassification`` model (+ tokenizer).

    A checkpoint without a trained classification head (e.g. a sentence-embedding model or a base BERT) is refused
    rather than given a random head. Example:
    ``clf = ew.classifier("/models/distilbert-sst2"); out = clf.analyze("A fine film.", attribution=("ig",))``.
    """
    if isinstance(model, (str, Path)):
        from transformers import AutoModelForSequenceClassification

        name = str(model)
        try:
            model, info = load_model(name, AutoModelForSequenceClassification, dtype, output_loading_info=True,
                                     **load_kwargs)
        except ValueError as error:
            if "Unrecognized configuration class" in str(error):
                raise UnsupportedModelError(f"{name!r} has no sequence-classification variant in transformers.") \
                    from None
            raise
        if info.get("missing_keys"):
            missing = sorted(info["missing_keys"])
            raise UnsupportedModelError(
                f"{name!r} has no trained sequence-classification head (missing weights: {missing[:4]}"
                f"{' ...' if len(missing) > 4 else ''}); transformers would initialise one at random. Load a "
                "fine-tuned classifier, or pass a model object whose head you trained."
            )
        tokenizer = load_tokenizer(tokenizer, resolve_source(name)[0])
    else:
        name = ""
        tokenizer = load_tokenizer(tokenizer)
    if isinstance(model, nn.Module):
        model = prepare(model, device)
    return SequenceClassifier(model, tokenizer, name=name)
