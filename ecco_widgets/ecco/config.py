"""Ecco's ``model_config`` dict, read and checked, and turned into this project's :class:`~ecco_widgets.ModelSpec`.

Ecco 0.1.2 described each model by hand in ``model-config.yaml``: ``embedding`` (a dotted path to the token
embedding, with or without ``.weight``), ``type`` (``causal``, ``mlm`` or ``enc-dec``), ``activations`` (a list of
regexes; Ecco hooked the *input* of the first one's matching modules, i.e. the MLP activation when the regex names
the down projection) and the tokenizer's ``token_prefix`` / ``partial_token_prefix``. Here the parts are found by
inspection, so ``model_config`` is optional; when given it is honoured.

>>> check_model_config({"embedding": "transformer.wte.weight", "type": "causal", "activations": [r"mlp\\.c_proj"],
...                     "token_prefix": "Ġ", "partial_token_prefix": ""})["tokenizer_config"]
{'token_prefix': 'Ġ', 'partial_token_prefix': ''}
>>> layer_number("transformer.h.10.mlp.c_proj")
10
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from ..adapter import ModelSpec
from ..errors import InputError, UnsupportedModelError

TYPES = ("causal", "mlm", "enc-dec")
REQUIRED = ("embedding", "type", "activations")
_LAYER = re.compile(r"(?<=\.)\d+(?=\.)")  # Ecco's own rule: the first number between two dots


def check_model_config(model_config: Any) -> dict[str, Any]:
    """A copy of an Ecco ``model_config`` with its keys checked and ``tokenizer_config`` added (as Ecco packs it)."""
    if not isinstance(model_config, dict):
        raise InputError(f"model_config must be a dict as in Ecco's model-config.yaml, got "
                         f"{type(model_config).__name__}.")
    missing = [k for k in REQUIRED if k not in model_config]
    if missing:
        raise InputError(f"model_config lacks {missing}; Ecco's form is {{'embedding': 'transformer.wte.weight', "
                         "'type': 'causal', 'activations': ['mlp\\\\.c_proj'], 'token_prefix': 'Ġ', "
                         "'partial_token_prefix': ''}.")
    if model_config["type"] not in TYPES:
        raise InputError(f"model_config['type'] must be one of {TYPES}, got {model_config['type']!r}.")
    acts = model_config["activations"]
    if isinstance(acts, str) or not isinstance(acts, (list, tuple)) or not acts:
        raise InputError(f"model_config['activations'] must be a non-empty list of regexes, got {acts!r}.")
    for pattern in acts:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as error:
            raise InputError(f"model_config['activations'] holds {pattern!r}, not a valid regex: {error}") from None
    config = dict(model_config)
    config.setdefault("token_prefix", "")
    config.setdefault("partial_token_prefix", "")
    config["tokenizer_config"] = {"token_prefix": config["token_prefix"],
                                  "partial_token_prefix": config["partial_token_prefix"]}
    return config


def layer_number(module_name: str) -> int | None:
    """The layer number in a module name, by Ecco's rule (the first ``.N.``), as an int; None when there is none."""
    found = _LAYER.search(module_name)
    return None if found is None else int(found.group(0))


def _module_name(model: nn.Module, dotted: str, what: str) -> str:
    """``dotted`` (Ecco's path, maybe ending in ``.weight``, maybe without the base model's prefix) as a module name
    of ``model``."""
    names = dict(model.named_modules())
    name = dotted[: -len(".weight")] if dotted.endswith(".weight") else dotted
    candidates = [name] + [f"{prefix}.{name}" for prefix in (getattr(model, "base_model_prefix", ""),) if prefix]
    found = next((c for c in candidates if c in names), None)
    if found is None:
        raise UnsupportedModelError(f"model_config['{what}'] = {dotted!r} names no module of this "
                                    f"{type(model).__name__}; print the model to see its module names.")
    return found


def spec_from_config(model: nn.Module, config: dict[str, Any], n_layers: int) -> ModelSpec:
    """A ModelSpec with the embedding and the per-layer modules whose input is the activation, from Ecco's config.

    The modules matching ``activations[0]`` are ordered by their layer number (numerically: Ecco sorted the
    layer numbers as strings, 0, 1, 10, 11, 2, ...); exactly one a layer is required.
    """
    embedding = _module_name(model, config["embedding"], "embedding")
    pattern = re.compile(config["activations"][0])
    by_layer: dict[int, list[str]] = {}
    for name, _ in model.named_modules():
        if pattern.search(name):
            number = layer_number(name)
            if number is not None:
                by_layer.setdefault(number, []).append(name)
    if not by_layer:
        raise UnsupportedModelError(f"model_config['activations'][0] = {pattern.pattern!r} matches no module with a "
                                    "layer number; it should name each layer's MLP down projection.")
    repeated = {k: v for k, v in by_layer.items() if len(v) > 1}
    if repeated or sorted(by_layer) != list(range(n_layers)):
        raise UnsupportedModelError(
            f"model_config['activations'][0] = {pattern.pattern!r} must match one module in each of the "
            f"{n_layers} layers; it matched {dict(sorted(by_layer.items()))}.")
    return ModelSpec(embedding=embedding, down_proj=[by_layer[i][0] for i in range(n_layers)])


def infer_type(hf_config: Any) -> str:
    """Ecco's ``type`` of a transformers config: 'enc-dec', 'causal' or 'mlm'."""
    if getattr(hf_config, "is_encoder_decoder", False):
        return "enc-dec"
    architectures = list(getattr(hf_config, "architectures", None) or [])
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    if architectures:
        return "mlm"
    return "mlm" if getattr(hf_config, "model_type", "") in _ENCODERS else "causal"


_ENCODERS = ("bert", "distilbert", "roberta", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta", "mpnet")


def describe(model: nn.Module, kind: str, embedding_name: str, down_proj_names: list[str | None],
             family: str) -> dict[str, Any]:
    """Ecco's model_config of a loaded model (what ``lm.model_config`` and ``output.config`` show)."""
    first = next((n for n in down_proj_names if n), "")
    number = layer_number(first) if first else None
    suffix = first.split(f".{number}.", 1)[-1] if number is not None else first
    token_prefix = {"bytelevel": "Ġ", "sentencepiece": "▁"}.get(family, "")
    partial = "##" if family == "wordpiece" else ""
    return {"embedding": embedding_name, "type": kind, "activations": [re.escape(suffix)] if suffix else [],
            "token_prefix": token_prefix, "partial_token_prefix": partial,
            "tokenizer_config": {"token_prefix": token_prefix, "partial_token_prefix": partial}}
