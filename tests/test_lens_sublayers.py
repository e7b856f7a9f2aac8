"""Sublayer lens points (after each block's attention and after its MLP), on the 14 families, against forward
hooks written here: for sequential blocks the input of the norm in front of the MLP (named by hand per family),
for parallel-attention blocks the block input plus the attention module's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from test_lens_models import FINAL_NORM, argsort_ranks

#: The module in front of each block's MLP whose input is the residual stream after attention (sequential blocks).
PRE_MLP_NORM = {
    "gpt2": "ln_2", "gpt_neo": "ln_2", "opt": "final_layer_norm", "bloom": "post_attention_layernorm",
    "llama": "post_attention_layernorm", "mistral": "post_attention_layernorm", "qwen2": "post_attention_layernorm",
    "phi3": "post_attention_layernorm", "gemma": "post_attention_layernorm", "gemma2": "pre_feedforward_layernorm",
    "gemma3": "pre_feedforward_layernorm",
}
#: Parallel blocks: the attention module (its output plus the block input is "after attention").
PARALLEL_ATTENTION = {"gptj": "attn", "gpt_neox": "attention", "falcon": "self_attention"}
BLOCKS = {"gpt2": "transformer.h", "gpt_neo": "transformer.h", "gptj": "transformer.h", "bloom": "transformer.h",
          "falcon": "transformer.h", "gpt_neox": "gpt_neox.layers", "opt": "model.decoder.layers"}


def test_every_family_is_covered():
    assert set(PRE_MLP_NORM) | set(PARALLEL_ATTENTION) == set(zoo.FAMILIES)


@torch.no_grad()
def hooked_sublayers(model, family: str, ids: list[int]) -> np.ndarray:
    """(2 * n_blocks, n, d): after attention, after the MLP, per block, read by hooks written here."""
    blocks = model.get_submodule(BLOCKS.get(family, "model.layers"))
    after_attention, after_mlp, inputs, handles = {}, {}, {}, []

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    for i, block in enumerate(blocks):
        def block_in(module, args, kwargs, i=i):
            inputs[i] = (args[0] if args else kwargs["hidden_states"])[0].clone()

        def block_out(module, args, output, i=i):
            after_mlp[i] = first(output)[0].clone()

        handles.append(block.register_forward_pre_hook(block_in, with_kwargs=True))
        handles.append(block.register_forward_hook(block_out))
        if family in PRE_MLP_NORM:
            def norm_in(module, args, i=i):
                x = args[0]
                after_attention[i] = (x[0] if x.dim() == 3 else x).clone()
            handles.append(getattr(block, PRE_MLP_NORM[family]).register_forward_pre_hook(norm_in))
        else:
            def attention_out(module, args, output, i=i):
                after_attention[i] = first(output)[0].clone()
            handles.append(getattr(block, PARALLEL_ATTENTION[family]).register_forward_hook(attention_out))
    try:
        model(torch.tensor([ids]), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for i in range(len(blocks)):
        mid = after_attention[i] if family in PRE_MLP_NORM else inputs[i] + after_attention[i]
        rows += [mid, after_mlp[i]]
    return torch.stack(rows).numpy()


@pytest.fixture(scope="module", params=zoo.FAMILIES)
def sublayer_case(request):
    family = request.param
    model = zoo.build(family)
    ids = torch.randint(0, zoo.VOCAB, (12,), generator=torch.Generator().manual_seed(2)).tolist()
    out = ew.LanguageModel(model).analyze_ids(ids, lens_points="sublayers")
    return family, model, ids, out


def test_sublayer_points_match_hooks(sublayer_case):
    family, model, ids, out = sublayer_case
    expected = hooked_sublayers(model, family, ids)
    assert out.hidden_states.shape == (expected.shape[0] + 1, len(ids), expected.shape[-1])
    np.testing.assert_allclose(out.hidden_states[1:], expected, rtol=1e-5, atol=1e-5)
    n_blocks = expected.shape[0] // 2
    assert out.layer_labels == [f"{i}.{p}" for i in range(n_blocks) for p in ("attn", "mlp")]
    assert out.lens_points == "sublayers"


def test_sublayer_ranks_match_argsort_of_hand_decoded_hooks(sublayer_case):
    family, model, ids, out = sublayer_case
    modules = dict(model.named_modules())
    rows = torch.from_numpy(hooked_sublayers(model, family, ids))
    with torch.no_grad():
        h = rows
        for name in FINAL_NORM[family]:
            h = modules[name](h)
        logits = model.get_output_embeddings()(h)
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        logits[-1] = model(torch.tensor([ids])).logits[0]  # the last row is the model's own prediction
    targets = torch.tensor(ids[1:])
    expected = np.stack([argsort_ranks(layer[:-1], targets) for layer in logits])
    np.testing.assert_array_equal(out.ranks, expected)


def test_bad_lens_points_are_refused_before_the_forward():
    lm = ew.LanguageModel(zoo.build("gpt2"))
    with pytest.raises(ew.InputError, match="lens_points must be"):
        lm.analyze_ids([1, 2, 3], lens_points="heads")
    with pytest.raises(ew.InputError, match="lens must be None"):
        lm.analyze_ids([1, 2, 3], lens="tuned")


def test_post_norm_models_refuse_sublayers():
    from transformers import OPTConfig, OPTForCausalLM

    model = OPTForCausalLM(OPTConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, ffn_dim=64,
                                     vocab_size=100, word_embed_proj_dim=32, do_layer_norm_before=False)).eval()
    with pytest.raises(ew.InputError, match="post-norm"):
        ew.LanguageModel(model).analyze_ids([1, 2, 3], lens_points="sublayers")


def test_first_layer_at_rank_against_a_loop():
    """The first layer from which the rank stays <= k, by a plain loop over layers (from the last upwards)."""
    ranks = np.array([[9, 1, 3, 1], [1, 4, 1, 2], [1, 1, 2, 5]], dtype=np.int32)
    out = ew.Output(token_ids=np.arange(5), tokens=list("abcde"), raw_tokens=list("abcde"), n_input_tokens=5,
                    ranks=ranks)
    for k in (1, 2, 4):
        expected = []
        for p in range(ranks.shape[1]):
            first = -1
            for layer in range(ranks.shape[0] - 1, -1, -1):
                if ranks[layer, p] > k:
                    break
                first = layer
            expected.append(first)
        assert out.first_layer_at_rank(k).tolist() == expected
    assert out.first_layer_at_rank(1).tolist() == [1, 2, -1, -1]
    with pytest.raises(ew.InputError, match="positive integer"):
        out.first_layer_at_rank(0)


def test_rankings_view_gets_every_metric_and_the_marker_row():
    lm = ew.LanguageModel(zoo.build("llama"))
    out = lm.analyze_ids(list(range(3, 12)))
    view = out.rankings(metric="kl", first_layer_k=2)
    assert view.metric == "kl"
    np.testing.assert_allclose(view.kl_to_final, out.kl_to_final, rtol=1e-6)
    np.testing.assert_allclose(view.entropy, out.entropy, rtol=1e-6)
    np.testing.assert_allclose(view.target_probs, out.target_probs, rtol=1e-6)
    assert view.first_layer.tolist() == out.first_layer_at_rank(2).tolist()
    out.kl_to_final = None
    with pytest.raises(ew.InputError, match="no 'kl' values"):
        out.rankings(metric="kl")
    with pytest.raises(ew.InputError, match="metric must be one of"):
        out.rankings(metric="logit")
