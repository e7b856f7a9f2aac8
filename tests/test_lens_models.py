"""Logit-lens ranks on random-weight models of many families, against an independent argsort reference.

The reference uses HF's own ``output_hidden_states`` and the final-norm module named by hand per family below (not
the adapter's discovery), then a full stable argsort of the logits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo

FINAL_NORM = {
    "gpt2": ["transformer.ln_f"], "gpt_neo": ["transformer.ln_f"], "gptj": ["transformer.ln_f"],
    "gpt_neox": ["gpt_neox.final_layer_norm"], "opt": ["model.decoder.final_layer_norm", "model.decoder.project_out"],
    "bloom": ["transformer.ln_f"], "llama": ["model.norm"], "mistral": ["model.norm"], "qwen2": ["model.norm"],
    "phi3": ["model.norm"], "gemma": ["model.norm"], "gemma2": ["model.norm"], "gemma3": ["model.norm"],
    "falcon": ["transformer.ln_f"],
}


def argsort_ranks(logits: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Rank by a full descending stable sort: position of the target in the sorted order, 1-based."""
    order = torch.argsort(-logits, dim=-1, stable=True)
    return (order == targets.unsqueeze(-1)).nonzero()[:, -1].reshape(targets.shape).numpy() + 1


@torch.no_grad()
def reference(model, family: str, ids: list[int]):
    """(ranks (n_layers, n-1), logits per layer (n_layers, n, vocab)) computed without ecco_widgets."""
    if True:
        out = model(torch.tensor([ids]), output_hidden_states=True)
    modules = dict(model.named_modules())
    per_layer = []
    for hidden in out.hidden_states[1:-1]:
        h = hidden[0]
        for name in FINAL_NORM[family]:
            h = modules[name](h)
        logits = model.get_output_embeddings()(h)
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        per_layer.append(logits)
    per_layer.append(out.logits[0])
    stacked = torch.stack(per_layer)
    targets = torch.tensor(ids[1:])
    ranks = np.stack([argsort_ranks(layer_logits[:-1], targets) for layer_logits in stacked])
    return ranks, stacked


@pytest.fixture(scope="module", params=zoo.FAMILIES)
def family_case(request):
    family = request.param
    model = zoo.build(family)
    ids = torch.randint(0, zoo.VOCAB, (14,), generator=torch.Generator().manual_seed(1)).tolist()
    lm = ew.LanguageModel(model)
    return family, model, lm, ids, lm.analyze_ids(ids, n_input_tokens=9)


def test_ranks_match_argsort_reference(family_case):
    family, model, lm, ids, out = family_case
    ref_ranks, _ = reference(model, family, ids)
    assert out.ranks.shape == (lm.spec.n_layers, len(ids) - 1)
    np.testing.assert_array_equal(out.ranks, ref_ranks)


def test_last_row_is_the_models_own_ranks_exactly(family_case):
    family, model, lm, ids, out = family_case
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    np.testing.assert_array_equal(out.ranks[-1], argsort_ranks(logits[:-1], torch.tensor(ids[1:])))


def test_decoding_the_last_block_reproduces_the_logits(family_case):
    """Checks the discovered final norm / unembedding path itself (not only the last row)."""
    family, model, lm, ids, out = family_case
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        decoded = lm.spec.decode(torch.from_numpy(out.hidden_states[-1]))
    torch.testing.assert_close(decoded, logits, rtol=1e-4, atol=1e-4)


def test_hidden_states_match_hf_block_outputs(family_case):
    family, model, lm, ids, out = family_case
    with torch.no_grad():
        hf = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    for layer in range(lm.spec.n_layers - 1):  # HF's last entry has the final norm applied; ours does not
        np.testing.assert_allclose(out.hidden_states[layer + 1], hf[layer + 1][0].numpy(), rtol=1e-5, atol=1e-5)


def test_topk_and_probabilities_match_softmax_reference(family_case):
    family, model, lm, ids, out = family_case
    _, per_layer = reference(model, family, ids)
    probs = torch.softmax(per_layer, dim=-1)
    k = out.topk_ids.shape[-1]
    ref_probs, ref_ids = probs.topk(k, dim=-1)
    np.testing.assert_allclose(out.topk_probs, ref_probs.numpy(), rtol=1e-4, atol=1e-6)
    # ids may differ only where probabilities tie
    same = out.topk_ids == ref_ids.numpy()
    assert same.mean() > 0.99
    target_probs = probs[:, :-1].gather(-1, torch.tensor(ids[1:]).view(1, -1, 1).expand(len(per_layer), -1, 1))
    np.testing.assert_allclose(out.target_probs, target_probs[..., 0].numpy(), rtol=1e-4, atol=1e-7)


def test_watch_ranks_match_argsort(family_case):
    family, model, lm, ids, out = family_case
    _, per_layer = reference(model, family, ids)
    watch = [3, 17, 250]
    got = out.watch_ranks(watch, position=-1)
    for j, token in enumerate(watch):
        expected = argsort_ranks(per_layer[:, -1], torch.full((len(per_layer),), token))
        np.testing.assert_array_equal(got[:, j], expected)


def test_mlp_activation_point_found_in_every_block(family_case):
    family, model, lm, ids, out = family_case
    assert all(name is not None for name in lm.spec.down_proj_names)


def test_chunking_does_not_change_results():
    from ecco_widgets.analysis.lens import logit_lens

    model = zoo.build("llama")
    lm = ew.LanguageModel(model)
    ids = list(range(1, 40))
    out = lm.analyze_ids(ids)
    hidden = torch.from_numpy(out.hidden_states[1:])
    targets = torch.tensor(ids[1:] + [0])
    tiny = logit_lens(lm.spec.decode, hidden, targets, chunk_bytes=1)  # one position per chunk
    np.testing.assert_array_equal(tiny.ranks[:-1, :-1], out.ranks[:-1])
    np.testing.assert_allclose(tiny.topk_probs, out.topk_probs, rtol=1e-5, atol=1e-7)


def test_entropy_and_kl_to_final_match_the_reference(family_case):
    """Entropy and KL(p_final || p_layer) in nats, from the reference logits (HF hidden states + the hand-named final
    norm + the unembedding) with torch.distributions, not from the library's decode."""
    family, model, lm, ids, out = family_case
    _, stacked = reference(model, family, ids)
    dist = torch.distributions.Categorical(logits=stacked[:, :-1].double())
    final = torch.distributions.Categorical(logits=stacked[-1:, :-1].double())
    entropy = dist.entropy().numpy()
    kl = torch.distributions.kl_divergence(final, dist).numpy()
    assert out.entropy.shape == out.kl_to_final.shape == out.ranks.shape
    assert out.entropy.dtype == out.kl_to_final.dtype == np.float32
    np.testing.assert_allclose(out.entropy, entropy, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.kl_to_final, kl, rtol=1e-3, atol=2e-4)
    assert (out.kl_to_final[-1] == 0).all()
