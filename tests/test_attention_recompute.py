"""A head's attention pattern recomputed from the components=True forward (issue 28): only that layer's attention
module re-run eagerly on its recorded inputs. The reference is the model's own attention weights, captured by a
separate ``attention=True`` analysis (eager attention for the whole forward, ``output_attentions``): every head's row
must equal it, on GPT-2, Llama (grouped-query), Gemma-2 (attention soft cap, a sliding window shorter than the text;
transformers runs it eagerly, with an additive mask), Gemma-3 (sdpa, whose sliding-window mask is boolean and whose
full-attention mask is None) and GPT-NeoX (partial rotary)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.errors import InputError, NotAvailableError
from test_foundation import WORDS, ToyTokenizer

IDS = [(7 * i + 3) % 300 for i in range(24)]  # longer than the zoo's sliding window (16)


def model_of(family: str) -> torch.nn.Module:
    return zoo.build(family)


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2", "gemma3", "gpt_neox"])
def test_every_heads_row_equals_the_captured_attention(family):
    model = model_of(family)
    implementation = model.config._attn_implementation
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    out = lm.analyze_ids(IDS, components=True)
    assert out.attention_weights is None
    captured = lm.analyze_ids(IDS, attention=True).attention_weights  # (n_layers, n_heads, n, n)
    assert captured.shape[:2] == (3, 4)
    for position in (len(IDS) - 1, 5):
        r = out.logit_attribution(position, unit="head")
        rows = r.attention_pattern()
        assert rows.shape == (3, 4, len(IDS)) and rows.dtype == np.float32
        np.testing.assert_allclose(rows, captured[:, :, position, :], atol=1e-6)
        np.testing.assert_allclose(r.attention_pattern(2, 3), captured[2, 3, position], atol=1e-6)
        np.testing.assert_allclose(r.attention_pattern(1), captured[1, :, position], atol=1e-6)
    assert model.config._attn_implementation == implementation  # switched back
    if family in ("gemma2", "gemma3"):  # a sliding layer: the last position sees only the window
        window = model.config.sliding_window
        assert np.all(captured[0, :, -1, : len(IDS) - window] == 0) or np.all(
            captured[1, :, -1, : len(IDS) - window] == 0)


def test_the_view_gets_every_heads_row_without_attention_true():
    model = model_of("llama")
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    captured = lm.analyze_ids(IDS, attention=True).attention_weights
    view = lm.analyze_ids(IDS, components=True).logit_attribution(-1, unit="head").view()
    np.testing.assert_allclose(view.attention, captured[:, :, -1, :], atol=1e-6)


def test_no_attention_to_show_and_bad_indices(tmp_path):
    lm = ew.from_pretrained(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))
    r = lm.analyze_ids(IDS, components=True).logit_attribution(-1, unit="head")
    with pytest.raises(InputError, match="out of range"):
        r.attention_pattern(3)
    with pytest.raises(InputError, match="out of range"):
        r.attention_pattern(0, 4)
    with pytest.raises(InputError, match="needs its layer"):
        r.attention_pattern(head=1)
    loaded = ew.load(r.save(tmp_path / "r.npz"))
    with pytest.raises(NotAvailableError, match="components=True"):
        loaded.attention_pattern()
