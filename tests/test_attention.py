"""Attention capture on tiny random GPT-2 and Llama models, against HF's eager ``output_attentions``.

The reference model is a fresh copy of the same weights loaded with ``attn_implementation="eager"`` by
transformers itself (save_pretrained -> from_pretrained), not switched by ecco_widgets.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

import ecco_widgets as ew
import zoo

FAMILIES = ["gpt2", "llama"]


def attn_implementations(model) -> set:
    return {m.config._attn_implementation for m in model.modules() if hasattr(m, "config")}


@pytest.fixture(scope="module", params=FAMILIES)
def case(request, tmp_path_factory):
    family = request.param
    model = zoo.build(family)
    folder = tmp_path_factory.mktemp(family)
    model.save_pretrained(folder)
    eager = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    ids = torch.randint(0, zoo.VOCAB, (11,), generator=torch.Generator().manual_seed(2)).tolist()
    with torch.no_grad():
        ref = eager(torch.tensor([ids]), output_attentions=True).attentions
    reference = torch.stack([a[0] for a in ref]).numpy()
    lm = ew.LanguageModel(model)
    return family, model, lm, ids, reference


def test_model_starts_with_sdpa(case):
    _, model, *_ = case
    assert attn_implementations(model) == {"sdpa"}


def test_attention_equals_hf_eager_output_attentions(case):
    family, model, lm, ids, reference = case
    out = lm.analyze_ids(ids, attention=True)
    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
    assert out.attention_weights.shape == (n_layers, n_heads, len(ids), len(ids)) == reference.shape
    assert out.attention_weights.dtype == np.float32
    np.testing.assert_allclose(out.attention_weights, reference, rtol=1e-5, atol=1e-6)


def test_rows_sum_to_one_and_the_future_is_masked(case):
    _, _, lm, ids, _ = case
    weights = lm.analyze_ids(ids, attention=True).attention_weights
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((len(ids), len(ids)), bool), k=1)
    assert (weights[..., upper] == 0).all()
    assert (weights[..., ~upper] >= 0).all()
    np.testing.assert_allclose(weights[..., 0, 0], 1.0, atol=1e-6)  # the first token can only see itself


def test_attention_implementation_is_restored(case):
    _, model, lm, ids, _ = case
    before = lm.analyze_ids(ids)
    lm.analyze_ids(ids, attention=True)
    assert attn_implementations(model) == {"sdpa"}
    after = lm.analyze_ids(ids)
    np.testing.assert_array_equal(before.ranks, after.ranks)
    np.testing.assert_allclose(before.topk_probs, after.topk_probs, rtol=1e-5, atol=1e-7)


def test_attention_implementation_is_restored_when_the_forward_raises(case):
    _, model, lm, ids, _ = case

    def boom(module, args, kwargs):
        raise RuntimeError("boom")

    handle = lm.spec.blocks[1].register_forward_pre_hook(boom, with_kwargs=True)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            lm.analyze_ids(ids, attention=True)
    finally:
        handle.remove()
    assert attn_implementations(model) == {"sdpa"}


def test_an_eager_model_stays_eager(case):
    _, model, lm, ids, reference = case
    model.set_attn_implementation("eager")
    try:
        out = lm.analyze_ids(ids, attention=True)
        assert attn_implementations(model) == {"eager"}
        np.testing.assert_allclose(out.attention_weights, reference, rtol=1e-5, atol=1e-6)
    finally:
        model.set_attn_implementation("sdpa")


def test_attention_and_activations_in_one_pass(case):
    _, model, lm, ids, reference = case
    out = lm.analyze_ids(ids, attention=True, activations=[0, 2])
    np.testing.assert_allclose(out.attention_weights, reference, rtol=1e-5, atol=1e-6)
    assert out.activations.shape[:2] == (2, len(ids))


def test_attention_view(case):
    _, model, lm, ids, reference = case
    out = lm.analyze_ids(ids, attention=True)
    n_heads = model.config.num_attention_heads
    view = out.attention(1)
    assert isinstance(view, ew.AttentionView)
    assert view.attention.shape == (n_heads, len(ids), len(ids))
    assert view.head_labels == [f"head {h}" for h in range(n_heads)]
    np.testing.assert_allclose(view.attention, reference[1], rtol=1e-5, atol=1e-6)
    one = out.attention(2, head=3)
    assert one.attention.shape == (1, len(ids), len(ids)) and one.head_labels == ["head 3"]
    np.testing.assert_allclose(one.attention[0], reference[2, 3], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.attention(-1).attention, out.attention(2).attention)
    assert view.tokens == out.tokens


def test_bad_layer_or_head_are_clear_errors(case):
    _, model, lm, ids, _ = case
    out = lm.analyze_ids(ids, attention=True)
    with pytest.raises(ew.InputError, match=r"layer 3 does not exist: the model has 3 layers \(0..2\)"):
        out.attention(3)
    with pytest.raises(ew.InputError, match="layer -4 does not exist"):
        out.attention(-4)
    with pytest.raises(ew.InputError, match=r"head 4 does not exist: layer 0 has 4 heads \(0..3\)"):
        out.attention(0, head=4)
    with pytest.raises(ew.InputError, match="head -1 does not exist"):
        out.attention(0, head=-1)


def test_attention_not_requested(case):
    _, model, lm, ids, _ = case
    out = lm.analyze_ids(ids)
    assert out.attention_weights is None
    with pytest.raises(ew.NotAvailableError, match="attention=True"):
        out.attention(0)


def test_save_and_load_keep_attention(case, tmp_path):
    _, model, lm, ids, _ = case
    out = lm.analyze_ids(ids, attention=True)
    back = ew.load(out.save(tmp_path / "attn"))
    np.testing.assert_array_equal(back.attention_weights, out.attention_weights)
    np.testing.assert_array_equal(back.attention(1, head=2).attention, out.attention(1, head=2).attention)
    copy = out.copy()
    assert not np.shares_memory(copy.attention_weights, out.attention_weights)
