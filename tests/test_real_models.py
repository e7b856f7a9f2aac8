"""Models as researchers run them: half precision, accelerate-dispatched and disk-offloaded models, threads, bad
numbers and memory limits. References are written here: argsort ranks of the model's own logits, the same weights
in float32, a plainly loaded copy of the model, sequential calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import ecco_widgets.memory as memory
from zoo import build

FAMILIES = ["gpt2", "llama", "gemma2"]
IDS = [5, 17, 33, 8, 61, 25, 90, 12, 47, 3, 71, 29]


def own_ranks(model, ids) -> np.ndarray:
    """Ranks of each next token in the model's own logits (its dtype), by a stable argsort."""
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, :-1].float().numpy()
    order = np.argsort(-logits, axis=-1, kind="stable")
    return np.array([int(np.nonzero(order[p] == t)[0][0]) + 1 for p, t in enumerate(ids[1:])])


def _tie_free_ranks(logits_row: np.ndarray, target: int) -> int:
    return int((logits_row > logits_row[target]).sum()) + 1


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_half_precision_in_every_analysis(family, dtype):
    dtype = getattr(torch, dtype)
    model = build(family).to(dtype)
    lm = ew.from_pretrained(model)
    with torch.inference_mode():
        logits = model(torch.tensor([IDS])).logits[0, :-1].float().numpy()
    expected = [_tie_free_ranks(logits[p], t) for p, t in enumerate(IDS[1:])]
    # the last lens row is the model's own ranks, exactly (same attention implementation as the reference)
    np.testing.assert_array_equal(lm.analyze_ids(IDS, progress=False).ranks[-1], expected)
    out = lm.analyze_ids(IDS, n_input_tokens=6, attribution=("grad_x_input", "ig"), n_steps=4, activations=True,
                         attention=True, progress=False)
    for name in ("hidden_states", "activations", "attention_weights", "target_probs", "topk_probs"):
        value = getattr(out, name)
        assert value.dtype == np.float32 and np.isfinite(value).all(), name
    for method in ("grad_x_input", "ig"):
        assert out.attributions_raw[method].dtype == np.float32
        assert np.isfinite(out.attributions_raw[method]).all()
    assert model.dtype == dtype  # nothing was converted behind the user's back


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_is_close_to_float32(family):
    """The same weights in bf16 and float32: most rank cells equal, attribution rows strongly correlated."""
    full = ew.from_pretrained(build(family))
    half = ew.from_pretrained(build(family).to(torch.bfloat16))
    a = full.analyze_ids(IDS, n_input_tokens=6, attribution=("grad_x_input",), progress=False)
    b = half.analyze_ids(IDS, n_input_tokens=6, attribution=("grad_x_input",), progress=False)
    # a random model predicts almost uniformly, so ranks move by a few places; they stay within a factor 2
    assert (np.abs(np.log2(a.ranks) - np.log2(b.ranks)) <= 1).mean() >= 0.9
    for layer in range(a.n_layers):
        assert np.corrcoef(a.ranks[layer], b.ranks[layer])[0, 1] >= 0.95
    ra, rb = a.attributions("grad_x_input"), b.attributions("grad_x_input")
    for i, p in enumerate(a.targets):
        assert np.corrcoef(ra[i, :p], rb[i, :p])[0, 1] >= 0.9, (family, p)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_generate_in_half_precision(family, dtype):
    from test_seq2seq import _toy_tokenizer

    lm = ew.from_pretrained(build(family).to(getattr(torch, dtype)), tokenizer=_toy_tokenizer())
    out = lm.generate("the cat sat on", max_new_tokens=4, attribution=("grad_x_input",), activations=[0],
                      progress=False)
    assert out.n_tokens == out.n_input_tokens + 4 and out.targets.tolist() == list(range(out.n_input_tokens, out.n_tokens))
    assert out.ranks.dtype == np.int32 and np.isfinite(out.attributions("grad_x_input")).all()


def test_an_accelerate_offloaded_model_equals_the_plain_one(tmp_path):
    """Layers offloaded to disk by accelerate (device_map="auto" + max_memory + offload_folder)."""
    model = build("llama")
    model.save_pretrained(tmp_path / "model")
    plain = ew.from_pretrained(str(tmp_path / "model"))
    assert plain.tokenizer is None  # the folder has no tokenizer files
    offloaded = ew.from_pretrained(str(tmp_path / "model"), device_map="auto",
                                   max_memory={"cpu": 100_000}, offload_folder=str(tmp_path / "offload"))
    placement = set(offloaded.model.hf_device_map.values())
    assert "disk" in placement, placement
    a = plain.analyze_ids(IDS, n_input_tokens=6, attribution=("grad_x_input", "ig"), n_steps=4, activations=True,
                          progress=False)
    b = offloaded.analyze_ids(IDS, n_input_tokens=6, attribution=("grad_x_input", "ig"), n_steps=4,
                              activations=True, progress=False)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    np.testing.assert_allclose(a.activations, b.activations, rtol=1e-5, atol=1e-6)
    for method in ("grad_x_input", "ig"):
        np.testing.assert_allclose(a.attributions(method), b.attributions(method), rtol=1e-4, atol=1e-7)


def test_two_threads_give_the_same_numbers_as_sequential_calls():
    lm = ew.from_pretrained(build("gpt2"))
    texts = [IDS[: 6 + i % 5] for i in range(12)]
    expected = [lm.analyze_ids(t, activations=[1], progress=False) for t in texts]
    results: dict[int, ew.Output] = {}

    def work(indices):
        for i in indices:
            results[i] = lm.analyze_ids(texts[i], activations=[1], progress=False)

    threads = [threading.Thread(target=work, args=(range(k, 12, 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i].ranks, want.ranks)
        np.testing.assert_array_equal(results[i].activations, want.activations)


def test_a_nan_weight_is_a_clear_error_naming_the_first_layer():
    model = build("llama")
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
    lm = ew.from_pretrained(model)
    with pytest.raises(ew.NonFiniteError, match=r"block 1 \(of 3\)"):
        lm.analyze_ids(IDS)
    with pytest.raises(ew.NonFiniteError, match="block 1"):
        lm.analyze_ids(IDS, attribution=("grad_x_input",))


def test_float16_overflow_is_reported():
    model = build("gpt2").to(torch.float16)
    with torch.no_grad():  # each of the first two blocks adds 40,000 to the residual stream: 80,000 > 65,504
        model.transformer.h[0].mlp.c_proj.bias.fill_(40_000)
        model.transformer.h[1].mlp.c_proj.bias.fill_(40_000)
    lm = ew.from_pretrained(model)
    with pytest.raises(ew.NonFiniteError, match=r"block 1 \(of 3\).*float16.*bfloat16"):
        lm.analyze_ids(IDS)


def test_memory_estimates_refuse_before_allocating(monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    lm = ew.from_pretrained(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=8000,
                                                       n_positions=2048)))
    calls = []
    lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device=None: 100 * 2**20)
    ids = list(range(2000))
    # attention: 2 layers x 4 heads x 2000^2 x (4 + 4) bytes = 244 MiB; logits: 2000 x 8000 x 8 bytes = 122 MiB
    with pytest.raises(ew.InputError, match=r"attention weights .* needs about 244\.1 MiB.* attention=False"):
        lm.analyze_ids(ids, attention=True)
    with pytest.raises(ew.InputError, match=r"logits .* needs about 122\.1 MiB"):
        lm.analyze_ids(ids)
    assert not calls  # refused before any forward
    assert lm.analyze_ids(ids[:200]).ranks.shape == (2, 199)  # a shorter text, the way out the message names


def test_long_prefix_attribution_memory_is_bounded():
    """Checkpointed blocks: the graph of a long prefix is not kept whole; numbers equal the unbounded run."""
    from ecco_widgets.analysis.attribution import engine

    lm = ew.from_pretrained(build("llama"))
    ids = (IDS * 6)[:64]
    full = lm.analyze_ids(ids, attribution=("grad_x_input", "ig"), n_steps=4, targets=[60, 63], progress=False)
    old = engine.CHECKPOINT_ABOVE_BYTES
    engine.CHECKPOINT_ABOVE_BYTES = 1
    try:
        low = lm.analyze_ids(ids, attribution=("grad_x_input", "ig"), n_steps=4, targets=[60, 63], progress=False)
    finally:
        engine.CHECKPOINT_ABOVE_BYTES = old
    assert low.attribution_settings["checkpointed"] and not full.attribution_settings["checkpointed"]
    for method in ("grad_x_input", "ig"):
        np.testing.assert_allclose(low.attributions_raw[method], full.attributions_raw[method], rtol=1e-4,
                                   atol=1e-7)
