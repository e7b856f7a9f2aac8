"""Discretized integrated gradients: its path checked against the definition (monotone in every dimension, from the
baseline to the input, anchors made of vocabulary words' values), its attributions against the line integral along
that path computed here with plain autograd and numpy's Gauss-Legendre nodes, and its completeness against direct
forwards."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
from ecco_widgets.analysis.attribution.discretized import (DIG_DEFAULTS, Vocabulary, monotonic_paths,
                                                           vocabulary_of)
from ecco_widgets.models.causal_lm import compute_attributions
from test_attribution import _forward
from zoo import build

IDS = [5, 17, 33, 8, 61, 25, 90, 12, 47, 3]
POSITIONS = np.array([4, 7, 9])


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def lm(request):
    return ew.from_pretrained(build(request.param))


def _monotone(values: np.ndarray) -> np.ndarray:
    """Per (token, dim) of a (K, L, d) path: never changing direction (allowing float32 ties)."""
    step = np.diff(values, axis=0)
    return ((step >= -1e-6).all(0)) | ((step <= 1e-6).all(0))


@pytest.mark.parametrize("strategy", ["greedy", "maxcount"])
def test_the_path_runs_monotonically_from_the_baseline_to_the_input(strategy):
    torch.manual_seed(0)
    vocab = torch.randn(300, 8)
    start, ref = vocab[[4, 9, 4]].clone(), torch.zeros(3, 8)
    ref[2] = start[2]  # a kept position: baseline = input
    path = monotonic_paths(start, ref, Vocabulary(vocab), n_anchors=6, neighbours=40, strategy=strategy).numpy()
    assert path.shape == (8, 3, 8)
    np.testing.assert_array_equal(path[0, :2], ref[:2].numpy())
    np.testing.assert_array_equal(path[-1], start.numpy())
    assert _monotone(path).all()
    assert (path[:, 2] == start[2].numpy()).all()  # the kept token never moves
    # each anchor is one vocabulary word, with the dimensions that would break monotonicity moved one step of
    # (previous point - baseline) / (anchors left) towards the baseline instead
    words, m = vocab.numpy(), 6
    for i in range(m):  # anchor i counted from the input side: path[m - i]; its previous point path[m - i + 1]
        anchor, prev = path[m - i, :2], path[m - i + 1, :2]
        stepped = prev - (prev - ref[:2].numpy()) / (m - i + 1)
        for t in range(2):
            fits = np.isclose(anchor[t][None], words, rtol=0, atol=1e-6) | np.isclose(anchor[t], stepped[t],
                                                                                     rtol=0, atol=1e-6)[None]
            assert fits.all(-1).any(), (i, t)


def test_the_vocabulary_includes_the_embedding_scale():
    class Scaled(torch.nn.Embedding):
        def forward(self, ids):
            return super().forward(ids) * 3.0

    emb = Scaled(10, 4)
    vocab = vocabulary_of(emb, torch.tensor([[1, 2, 3]]))
    assert vocab.scale == pytest.approx(3.0)
    assert vocab.weight.data_ptr() == emb.weight.data_ptr()  # not copied

    class Shifted(torch.nn.Embedding):
        def forward(self, ids):
            return super().forward(ids) + 1.0

    with pytest.raises(ew.InputError, match="lookup"):
        vocabulary_of(Shifted(10, 4), torch.tensor([[1, 2, 3]]))
    with pytest.raises(ew.InputError, match="lookup table"):
        vocabulary_of(torch.nn.Linear(3, 4), torch.tensor([[1]]))  # a 2-d weight, but no lookup


def test_dig_is_the_line_integral_along_its_path(lm):
    n_steps = 8
    res = compute_attributions(lm.spec, torch.tensor([IDS]), POSITIONS, ["dig"], n_steps=n_steps, keep="first",
                               baseline="mean", progress=False)
    nodes = DIG_DEFAULTS["nodes"]
    n_anchors = n_steps // nodes - 1
    assert res.settings["dig_anchors"] == n_anchors and res.settings["dig_evaluations"] == n_steps
    length = int(POSITIONS.max())
    emb = lm.spec.embedding(torch.tensor([IDS[:length]])).detach()[0]
    ref = lm.spec.embedding.weight.detach().mean(0).expand_as(emb).clone()
    ref[0] = emb[0]
    path = monotonic_paths(emb, ref, vocabulary_of(lm.spec.embedding, torch.tensor(IDS)), n_anchors,
                           DIG_DEFAULTS["neighbours"], DIG_DEFAULTS["strategy"])
    x_nodes, w_nodes = np.polynomial.legendre.leggauss(nodes)
    for i, p in enumerate(POSITIONS):
        f = _forward(lm.model, IDS[p])
        expected = torch.zeros(p, emb.shape[1], dtype=torch.float64)
        for s in range(len(path) - 1):
            a, b = path[s, :p], path[s + 1, :p]
            for x, w in zip(x_nodes, w_nodes):
                point = (a + 0.5 * (1 + x) * (b - a))[None].clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(f(point).sum(), point)
                expected += (0.5 * w * grad[0] * (b - a)).double()
        got = res.raw["dig"][i, :p]
        scale = float(expected.abs().max())
        assert np.abs(got - expected.numpy()).max() <= 1e-3 * scale + 1e-9
        assert not res.raw["dig"][i, 0].any() and not res.raw["dig"][i, p:].any()  # kept token; causality


def test_dig_completeness_against_direct_forwards(lm):
    out = lm.analyze_ids(IDS, n_input_tokens=6, attribution=("dig",), n_steps=32, keep="first", progress=False)
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    sums = out.attributions("dig", "sum").sum(axis=1, dtype=np.float64)
    with torch.no_grad():
        for i, p in enumerate(out.targets):
            f = _forward(lm.model, IDS[p])
            start = torch.zeros_like(emb[:, :p])
            start[:, 0] = emb[:, 0]
            change = float(f(emb[:, :p])) - float(f(start))
            assert out.convergence_delta("dig")[i] == pytest.approx(sums[i] - change, abs=1e-5 + 1e-3 * abs(change))
    assert out.attribution_settings["methods"] == ["dig"] and "dig_change" in out.attribution_settings
    view = out.primary_attributions()
    assert view.method == "dig" and "zero" in view.baselines[view.methods.index("dig")]


def test_dig_errors_before_the_forward_pass():
    lm = ew.from_pretrained(build("gpt2"))

    class Shifted(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.weight = inner.weight

        def forward(self, ids):
            return torch.nn.functional.embedding(ids, self.weight) + 1.0

    lm.spec.modules[lm.spec.embedding_name] = Shifted(lm.spec.embedding)
    with pytest.raises(ew.InputError, match="lookup"):
        lm.analyze_ids(IDS, n_input_tokens=6, attribution=("dig",))

    def no_generation(*args, **kwargs):
        raise AssertionError("generated before checking the methods")

    lm.encode = lambda prompt: IDS[:4]
    lm.model.generate = no_generation
    with pytest.raises(ew.InputError, match="Unknown attribution method 'dgi'"):
        lm.generate("x", max_new_tokens=2, attribution=("dgi",))


def test_dig_on_the_other_model_kinds_adds_up_to_the_change_of_direct_forwards():
    """A masked LM, a classifier and an encoder-decoder: each row of DIG (64 evaluations, zero baseline) sums to
    f(x) - f(0) computed here with the model's own forward."""
    from test_encoder_attribution import IDS as MLM_IDS, MASK_ID, MASKED, _bert_classifier, _model, clf_forward
    from test_seq2seq import _bart

    bert = _model("bert")
    out = ew.masked_lm(bert).analyze_ids(MLM_IDS, mask_positions=MASKED, mask_token_id=MASK_ID,
                                         attribution=("dig",), n_steps=64, progress=False)
    seen = torch.tensor([[MASK_ID if i in MASKED else t for i, t in enumerate(MLM_IDS)]])
    emb = bert.get_input_embeddings()(seen).detach()
    with torch.no_grad():
        for i, p in enumerate(MASKED):
            f = lambda x, p=p: bert(inputs_embeds=x).logits[0, p].softmax(-1)[MLM_IDS[p]]  # noqa: E731
            change = float(f(emb) - f(torch.zeros_like(emb)))
            assert float(out.attributions("dig", "sum")[i].sum()) == pytest.approx(change, rel=0.02, abs=1e-6)

    model = _bert_classifier()
    out = ew.classifier(model).analyze_ids(MLM_IDS, attribution=("dig",), n_steps=64, progress=False)
    emb = model.get_input_embeddings()(torch.tensor([MLM_IDS])).detach()
    with torch.no_grad():
        f = clf_forward(model, out.target_label)
        change = float(f(emb)[0] - f(torch.zeros_like(emb))[0])
    assert float(out.attributions("dig", "sum")[0].sum()) == pytest.approx(change, rel=0.02, abs=1e-6)

    bart = _bart()  # LayerNorm with biases; T5's RMSNorm collapses next to the zero baseline (as for IG)
    src, dec = [0, 5, 6, 7, 8, 2], [2, 0, 11, 12, 13]
    out = ew.seq2seq(bart).analyze_ids(src, dec, attribution=("dig",), n_steps=64, progress=False)
    emb = bart.get_input_embeddings()
    with torch.no_grad():
        xe, xd = emb(torch.tensor([src])), emb(torch.tensor([dec]))
        for i, p in enumerate(out.targets):
            def f(e, d, p=p):
                return bart(inputs_embeds=e, decoder_inputs_embeds=d[:, :p]).logits[0, -1].softmax(-1)[dec[p]]
            change = float(f(xe, xd) - f(torch.zeros_like(xe), torch.zeros_like(xd)))
            total = float(out.attributions_raw["dig"][i].sum())
            assert total == pytest.approx(change, rel=0.02, abs=1e-6)


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_dig_on_a_bf16_model_with_a_scaled_embedding(family):
    """bf16 weights (Gemma also multiplies its embeddings by sqrt(d) in bf16): the vocabulary is recognised and
    the rows are finite."""
    model = build(family).to(torch.bfloat16)
    lm = ew.from_pretrained(model)
    vocab = vocabulary_of(lm.spec.embedding, torch.tensor(IDS))
    emb = lm.spec.embedding(torch.tensor([IDS])).float()
    assert torch.allclose(vocab.weight[IDS].float() * vocab.scale, emb[0], rtol=3e-2, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ew.CompletenessWarning)  # bf16 rows are coarse; finiteness is the point
        out = lm.analyze_ids(IDS, n_input_tokens=6, attribution=("dig",), n_steps=16, progress=False)
    assert np.isfinite(out.attributions_raw["dig"]).all() and np.isfinite(out.convergence_delta("dig")).all()



@pytest.mark.parametrize("n_steps, anchors", [(10, 1), (3, 0), (96, 23)])
def test_dig_spends_exactly_n_steps_evaluations(n_steps, anchors):
    lm = ew.from_pretrained(build("gpt2"))
    calls = []
    hook = lm.spec.blocks[0].register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        res = compute_attributions(lm.spec, torch.tensor([IDS]), POSITIONS, ["dig"], n_steps=n_steps, keep="first",
                                   progress=False)
    finally:
        hook.remove()
    assert res.settings["dig_evaluations"] == n_steps and res.settings["dig_anchors"] == anchors
    assert sum(calls) == n_steps + 2  # the path points, then f(x) and f(start) in one batch
