"""Ecco's API on this project's engine: change ``import ecco`` to ``from ecco_widgets import ecco``.

``ecco.from_pretrained(name, ...)`` returns an :class:`LM` with Ecco's calls (``lm.generate(text, generate=N,
attribution=[...])``, ``lm(inputs)``, ``lm.tokenizer``), whose outputs (:class:`OutputSeq`) have Ecco's
attributes and views (``rankings``, ``rankings_watch``, ``layer_predictions``, ``primary_attributions``,
``saliency``, ``run_nmf`` / ``explore``); ``ecco.analysis`` has ``cka``, ``cca``, ``svcca``, ``pwcca``.
docs/coming_from_ecco.md lists the calls and what differs (the lens goes through the final norm).

Example::

    from ecco_widgets import ecco
    lm = ecco.from_pretrained("distilgpt2", activations=True)
    output = lm.generate("The countries of the European Union are:", generate=5, attribution=["ig"])
    output.primary_attributions(attr_method="ig")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from . import analysis
from .config import check_model_config, describe, infer_type, spec_from_config
from .lm import LM
from .nmf import NMF
from .output import OutputSeq

__all__ = ["LM", "NMF", "OutputSeq", "analysis", "from_pretrained"]


def from_pretrained(hf_model_id: str | Path, model_config: dict[str, Any] | None = None, activations: bool = False,
                    attention: bool = False, hidden_states: bool = True,
                    activations_layer_nums: Sequence[int] | None = None, verbose: bool = True,
                    gpu: bool = True) -> LM:
    """Ecco's loader: a hub id or a local folder; ``model_config`` (Ecco's dict) is optional here.

    The kind ('causal', 'mlm', 'enc-dec') is model_config['type'] or read from the model's config. gpu=True uses
    CUDA when there is one. verbose is accepted (Ecco printed tokens while generating; nothing is printed here).
    Example: ``lm = ecco.from_pretrained('bert-base-uncased', activations=True)``
    """
    import torch

    from ..models import from_pretrained as causal, masked_lm, seq2seq
    from ..models.base import load_config
    from ..tokens import tokenizer_family

    for flag, value in (("activations", activations), ("attention", attention), ("hidden_states", hidden_states),
                        ("gpu", gpu)):
        if not isinstance(value, bool):
            raise InputError(f"{flag} must be True or False, got {value!r}.")
    config = check_model_config(model_config) if model_config is not None else None
    name = str(hf_model_id)
    kind = config["type"] if config else infer_type(load_config(name))
    device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
    if kind == "enc-dec":
        native = seq2seq(name, device=device)
    elif config is not None:
        native = _with_config(name, kind, config, device)
    else:
        native = (causal if kind == "causal" else masked_lm)(name, device=device)
    spec = getattr(native, "spec", None)
    if config is None:
        embedding = spec.embedding_name if spec is not None else ""
        down = list(spec.down_proj_names) if spec is not None else []
        config = describe(native.model, kind, embedding, down, tokenizer_family(native.tokenizer))
    if activations_layer_nums is not None and spec is not None:
        bad = [n for n in activations_layer_nums if not 0 <= int(n) < spec.n_layers]
        if bad:
            raise InputError(f"activations_layer_nums {bad} are not layers of this model (0..{spec.n_layers - 1}).")
    return LM(native, kind, config, activations=activations, attention=attention, hidden_states=hidden_states,
              activations_layer_nums=activations_layer_nums, verbose=verbose, name=name)


def _with_config(name: str, kind: str, config: dict[str, Any], device: str) -> Any:
    """Load, then rebuild the native model with the ModelSpec that Ecco's config describes."""
    from ..models import LanguageModel, MaskedLanguageModel, from_pretrained as causal, masked_lm

    loaded = (causal if kind == "causal" else masked_lm)(name, device=device)
    spec = spec_from_config(loaded.model, config, loaded.spec.n_layers)
    cls = LanguageModel if kind == "causal" else MaskedLanguageModel
    return cls(loaded.model, loaded.tokenizer, spec=spec, name=loaded.name)
