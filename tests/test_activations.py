"""MLP activations captured in the one hooked forward: checked against independent hooks on the models' own MLPs.

Tiny random-weight GPT-2 (GELU), Llama (SwiGLU) and GPT-NeoX models are built from configs (no downloads). The slow
test runs the real bundled SmolLM2 on ~1,000 tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as tf

import ecco_widgets as ew
import ecco_widgets.memory as capture_module
from ecco_widgets.memory import check_activation_memory
from ecco_widgets.errors import InputError

VOCAB = 100


def tiny(family: str, n_layers: int = 3) -> torch.nn.Module:
    """A random model whose MLP activations are far from 0 (initializer_range=0.2), eval mode, float32."""
    if family == "gpt2":
        config = tf.GPT2Config(n_layer=n_layers, n_embd=32, n_head=4, n_positions=64, vocab_size=VOCAB,
                               initializer_range=0.2)
        model = tf.GPT2LMHeadModel
    elif family == "llama":
        config = tf.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=n_layers,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                vocab_size=VOCAB, initializer_range=0.2)
        model = tf.LlamaForCausalLM
    elif family == "gpt_neox":
        config = tf.GPTNeoXConfig(num_hidden_layers=n_layers, hidden_size=32, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64, vocab_size=VOCAB,
                                  initializer_range=0.2)
        model = tf.GPTNeoXForCausalLM
    else:  # pragma: no cover
        raise ValueError(family)
    torch.manual_seed(0)
    return model(config).eval()


def mlps(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Each block's MLP module, found by the model's own attribute names (not by ecco_widgets' adapter)."""
    if isinstance(model, tf.GPT2LMHeadModel):
        return [block.mlp for block in model.transformer.h]
    if isinstance(model, tf.GPTNeoXForCausalLM):
        return [block.mlp for block in model.gpt_neox.layers]
    return [block.mlp for block in model.model.layers]


def recompute(mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The MLP activation (input of the down projection) from the MLP's input, with the MLP's own sub-modules."""
    if hasattr(mlp, "c_fc"):  # GPT-2: act(c_fc(x))
        return mlp.act(mlp.c_fc(x))
    if hasattr(mlp, "dense_h_to_4h"):  # GPT-NeoX: act(dense_h_to_4h(x))
        return mlp.act(mlp.dense_h_to_4h(x))
    return mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)  # Llama, SwiGLU


def reference_activations(model: torch.nn.Module, ids: list[int]) -> list[np.ndarray]:
    """Per layer (n_tokens, n_neurons), from forward pre-hooks on the MLP modules during a plain forward."""
    found: dict[int, np.ndarray] = {}
    handles = []

    def keep(layer, mlp):
        def hook(module, args):
            found[layer] = recompute(mlp, args[0])[0].detach().float().numpy().copy()
        return hook

    for layer, mlp in enumerate(mlps(model)):
        handles.append(mlp.register_forward_pre_hook(keep(layer, mlp)))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([ids]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return [found[layer] for layer in range(len(found))]


def count_forwards(model: torch.nn.Module) -> list[int]:
    calls = [0]

    def hook(module, args, output):
        calls[0] += 1

    model.register_forward_hook(hook)
    return calls


IDS = [5, 17, 42, 8, 99, 3, 61, 23, 7, 50, 11]


@pytest.mark.parametrize("family", ["gpt2", "llama", "gpt_neox"])
def test_activations_match_an_independent_hook_on_the_mlp(family):
    model = tiny(family)
    lm = ew.LanguageModel(model)
    forwards = count_forwards(model)
    out = lm.analyze_ids(IDS, activations=True)
    assert forwards[0] == 1, "hidden states and activations must come from one forward pass"
    expected = reference_activations(model, IDS)
    assert out.activation_layers == [0, 1, 2]
    assert out.activations.dtype == np.float32
    assert out.activations.shape == (3, len(IDS), expected[0].shape[1])
    for layer in range(3):
        np.testing.assert_allclose(out.activations[layer], expected[layer], rtol=1e-5, atol=1e-6)
    # not trivially equal: layers differ, and the values are not all ~0
    assert not np.allclose(out.activations[0], out.activations[1])
    assert np.abs(out.activations).max() > 0.1


def test_gpt2_activations_equal_the_output_of_mlp_act():
    model = tiny("gpt2")
    acts = {}
    handles = [mlp.act.register_forward_hook(lambda m, a, o, i=i: acts.__setitem__(i, o[0].detach().numpy().copy()))
               for i, mlp in enumerate(mlps(model))]
    with torch.no_grad():
        model(input_ids=torch.tensor([IDS]))
    for h in handles:
        h.remove()
    out = ew.LanguageModel(model).analyze_ids(IDS, activations=True)
    for layer in range(3):
        np.testing.assert_allclose(out.activations[layer], acts[layer], rtol=1e-5, atol=1e-6)
    assert (out.activations < 0).any(), "GELU gives small negative values; they are stored unclipped"
    assert out.activations.min() > -0.2


def test_layer_order_is_numeric_with_twelve_layers():
    model = tiny("gpt2", n_layers=12)
    lm = ew.LanguageModel(model)
    out = lm.analyze_ids(IDS, activations=[10, 2, 11, 0])
    assert out.activation_layers == [0, 2, 10, 11]  # Ecco sorted string ids: 0, 10, 11, 2
    expected = reference_activations(model, IDS)
    for row, layer in enumerate([0, 2, 10, 11]):
        np.testing.assert_allclose(out.activations[row], expected[layer], rtol=1e-5, atol=1e-6)
    everything = lm.analyze_ids(IDS, activations=True)
    assert everything.activation_layers == list(range(12))
    np.testing.assert_array_equal(everything.activations[[0, 2, 10, 11]], out.activations)
    # negative layers count from the end; duplicates are kept once
    assert lm.analyze_ids(IDS, activations=[-1, 11, 3]).activation_layers == [3, 11]
    with pytest.raises(InputError, match="Layer 12 does not exist"):
        lm.analyze_ids(IDS, activations=[12])


def test_outputs_share_no_arrays():
    """Ecco #97: every output showed the last input's activations."""
    model = tiny("llama")
    lm = ew.LanguageModel(model)
    first_ids, second_ids = IDS, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10]
    first = lm.analyze_ids(first_ids, activations=True)
    kept = first.activations.copy()
    second = lm.analyze_ids(second_ids, activations=True)
    np.testing.assert_array_equal(first.activations, kept)  # the second analysis did not overwrite the first
    assert not np.allclose(first.activations, second.activations)
    assert not np.shares_memory(first.activations, second.activations)
    for name in ("hidden_states", "ranks", "target_probs", "topk_probs"):
        assert not np.shares_memory(getattr(first, name), getattr(second, name)), name

    second.activations += 100.0  # mutating one output changes nothing else
    np.testing.assert_array_equal(first.activations, kept)
    again = lm.analyze_ids(first_ids, activations=True)
    np.testing.assert_array_equal(again.activations, kept)  # nor the model wrapper
    np.testing.assert_allclose(second.activations - 100.0, reference_activations(model, second_ids), rtol=1e-5,
                               atol=1e-4)


def test_float16_storage():
    model = tiny("gpt_neox")
    lm = ew.LanguageModel(model)
    full = lm.analyze_ids(IDS, activations=True)
    half = lm.analyze_ids(IDS, activations=True, activation_dtype="float16")
    assert half.activations.dtype == np.float16
    assert half.activations.nbytes * 2 == full.activations.nbytes
    np.testing.assert_allclose(half.activations.astype(np.float32), full.activations, rtol=1e-3, atol=1e-3)
    # the analyses accept float16 storage
    assert half.run_nmf(n_components=2).factors.dtype == np.float32
    assert half.top_neurons(0, k=3)[0]["value"] == pytest.approx(float(full.activations[:, 0].max()), rel=1e-3)


def test_memory_estimate_and_clear_error_before_the_forward(monkeypatch):
    model = tiny("gpt2")
    lm = ew.LanguageModel(model)
    n_tokens, width = len(IDS), 4 * 32
    expected = 3 * n_tokens * width * 4
    assert check_activation_memory(lm.spec, [0, 1, 2], n_tokens, np.dtype(np.float32)) == expected
    assert check_activation_memory(lm.spec, [0, 1, 2], n_tokens, np.dtype(np.float16)) == expected // 2
    assert check_activation_memory(lm.spec, [1], n_tokens, np.dtype(np.float32)) == expected // 3

    # half of what is available is the budget: 0.75 x expected, enough for 2 of the 3 layers or float16
    monkeypatch.setattr(capture_module, "available_memory_bytes", lambda device=None: int(1.5 * expected))
    forwards = count_forwards(model)
    with pytest.raises(InputError) as error:
        lm.analyze_ids(IDS, activations=True)
    message = str(error.value)
    assert f"needs about {expected / 1024:.1f} KiB" in message
    assert "activation_dtype='float16'" in message and "fewer layers" in message
    assert forwards[0] == 0, "the error must come before the forward pass"
    # the two ways out that the message names both work
    assert lm.analyze_ids(IDS, activations=True, activation_dtype="float16").activations.shape[0] == 3
    assert lm.analyze_ids(IDS, activations=[0, 2]).activation_layers == [0, 2]
    assert lm.analyze_ids(IDS).activations is None  # no activations asked: no check


def test_big_estimate_is_in_gib(monkeypatch):
    monkeypatch.setattr(capture_module, "available_memory_bytes", lambda device=None: 2**30)
    lm = ew.LanguageModel(tiny("gpt2"))
    with pytest.raises(InputError, match=r"needs about 2\.3 GiB, more than half of the 1\.0 GiB available"):
        check_activation_memory(lm.spec, [0, 1, 2], 1_600_000, np.dtype(np.float32))


# ----- the real bundled model -----
PARAGRAPH = (
    "The history of the city begins with a small settlement on the bank of a river, where fishermen and traders met "
    "to exchange salt, grain and wool. Over the centuries the market grew into a town with stone walls, a cathedral "
    "and a university, and the river port became one of the busiest in the region. "
)


@pytest.fixture(scope="module")
def demo():
    return ew.demo_model()


@pytest.mark.slow
def test_smollm2_activations_match_its_own_mlp(demo):
    ids = demo.encode("The keys to the cabinet are on the table.")
    out = demo.analyze_ids(ids, activations=[0, 15, 29])
    expected = reference_activations(demo.model, ids)
    for row, layer in enumerate([0, 15, 29]):
        np.testing.assert_allclose(out.activations[row], expected[layer], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_smollm2_thousand_tokens_all_layers_and_nmf(demo):
    text = "".join(f"Chapter {i}. {PARAGRAPH}" for i in range(1, 40))
    ids = demo.encode(text)
    assert len(ids) >= 1000
    ids = ids[:1000]
    out = demo.analyze_ids(ids, activations=True)
    assert out.activations.shape == (30, 1000, 1536)
    assert out.activation_layers == list(range(30))
    nmf = out.run_nmf(n_components=8)
    assert nmf.factors.shape == (8, 1000)
    assert nmf.components.shape == (8, 30 * 1536)
    assert np.isfinite(nmf.reconstruction_error)
    assert (nmf.factors >= 0).all() and nmf.factors.max() > 0
