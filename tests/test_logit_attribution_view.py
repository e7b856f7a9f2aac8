"""``r.view()`` of a direct logit attribution (issue 28): the view's arrays are the result's, and each head's (and
MLP's) promoted tokens equal a reference written here from hooks on a plain forward: the head's slice of the output
projection's input times that slice of the projection's weight (the MLP: the down projection's input times its
weight), through the final norm at the scale the test measures itself, then the unembedding; top 5 over the vocabulary.
On a random GPT-2 (LayerNorm, Conv1D projections) and a random Llama (RMSNorm, Linear), with a toy tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.errors import NotAvailableError
from ecco_widgets.results.logit_attribution_view import PROMOTED_K
from ecco_widgets.views import LogitAttributionView
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61]


def weight_out_in(module: torch.nn.Module) -> torch.Tensor:
    """(out, in): a Linear's weight, or GPT-2's Conv1D weight (stored (in, out)) transposed."""
    w = module.weight.detach().float()
    return w if isinstance(module, torch.nn.Linear) else w.T


class Run:
    def __init__(self, family: str):
        self.model = zoo.build(family)
        self.lm = ew.from_pretrained(self.model, tokenizer=ToyTokenizer(WORDS))
        self.out = self.lm.analyze_ids(IDS, components=True, attention=True)
        spec = self.lm.spec
        self.spec = spec
        records: dict = {}
        keep = lambda key: lambda m, a: records.__setitem__(key, a[0][0].detach().float())  # noqa: E731
        hooks = [spec.final_norms[0].register_forward_pre_hook(keep("final"))]
        for layer in range(spec.n_layers):
            hooks.append(spec.attention_out(layer).register_forward_pre_hook(keep(f"attn.{layer}")))
            hooks.append(spec.down_proj(layer).register_forward_pre_hook(keep(f"mlp.{layer}")))
        with torch.no_grad():
            self.model(input_ids=torch.tensor([IDS]), use_cache=False)
        for h in hooks:
            h.remove()
        self.records = records

    def frozen_final_norm(self, v: torch.Tensor, position: int) -> torch.Tensor:
        """v (n, d) through the final norm at the clean run's scale at ``position``, bias left out."""
        norm = self.spec.final_norms[0]
        centre = isinstance(norm, torch.nn.LayerNorm)
        eps = norm.eps if centre else norm.variance_epsilon
        x = self.records["final"][position]
        x = x - x.mean() if centre else x
        scale = 1.0 / torch.sqrt(x.pow(2).mean() + eps)
        v = v - v.mean(-1, keepdim=True) if centre else v
        return v * scale * norm.weight.detach().float()

    def reference_promoted(self, position: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, values) (n_layers, n_heads + 1, k) written from the formulas, not from the package."""
        spec, unembed = self.spec, weight_out_in(self.spec.unembedding)
        n_heads = self.model.config.num_attention_heads
        ids, values = [], []
        for layer in range(spec.n_layers):
            w, x = weight_out_in(spec.attention_out(layer)), self.records[f"attn.{layer}"][position]
            hd = w.shape[1] // n_heads
            vectors = [w[:, h * hd:(h + 1) * hd] @ x[h * hd:(h + 1) * hd] for h in range(n_heads)]
            vectors.append(weight_out_in(spec.down_proj(layer)) @ self.records[f"mlp.{layer}"][position])
            logits = self.frozen_final_norm(torch.stack(vectors), position) @ unembed.T
            top = torch.topk(logits, k, dim=-1)
            ids.append(top.indices.numpy())
            values.append(top.values.numpy())
        return np.stack(ids), np.stack(values)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def run(request):
    return Run(request.param)


def test_the_views_arrays_are_the_results(run):
    r = run.out.logit_attribution(position=-1, unit="head")
    v = r.view()
    assert isinstance(v, LogitAttributionView)
    L, H = run.spec.n_layers, run.model.config.num_attention_heads
    expected = np.array([[r.values[r.labels.index(f"{layer}.h{h}")] for h in range(H)] for layer in range(L)])
    np.testing.assert_array_equal(v.head_values, expected)
    np.testing.assert_array_equal(v.mlp_values, [r.values[r.labels.index(f"{layer}.mlp")] for layer in range(L)])
    np.testing.assert_array_equal(v.attn_totals, r.attn_by_layer)
    np.testing.assert_array_equal(v.mlp_totals, r.mlp_by_layer)
    np.testing.assert_array_equal(v.accumulated, r.accumulated)
    assert v.accumulated.shape == (L + 1,) and v.head_values.dtype == np.float32
    terms = [i for i, k in enumerate(r.kinds) if k in ("embed", "bias")]
    assert v.term_labels == [r.labels[i] for i in terms]
    np.testing.assert_array_equal(v.term_values, r.values[terms])
    # every component is in the view once: the grid, the MLP column and the terms sum to the total
    shown = v.head_values.sum(dtype=np.float64) + v.mlp_values.sum(dtype=np.float64) + v.term_values.sum(dtype=np.float64)
    assert abs(shown - r.total) < 1e-5 * max(1.0, abs(r.total))
    assert (v.target, v.foil, v.logit, v.note) == (r.target, "", pytest.approx(r.logit), "")
    assert v.tokens == run.out.tokens and v.position == len(IDS) - 1
    np.testing.assert_array_equal(v.attention, run.out.attention_weights[:, :, len(IDS) - 1, :])


def test_promoted_tokens_equal_the_reference(run):
    position = 4
    r = run.out.logit_attribution(position=position, unit="head")
    v = r.view()
    ids, values = run.reference_promoted(position, PROMOTED_K)
    assert v.promoted_index.shape == ids.shape == (run.spec.n_layers, run.model.config.num_attention_heads + 1,
                                                   PROMOTED_K)
    np.testing.assert_allclose(v.promoted_values, values, rtol=1e-4, atol=1e-5)
    names = run.lm.vocab_text(np.unique(ids))
    assert [[[v.promoted_vocab[i] for i in cell] for cell in row] for row in v.promoted_index] == \
        [[[names[int(t)] for t in cell] for cell in row] for row in ids]
    # the same reference read at the target is the head's attribution: one formula behind both
    w, x = weight_out_in(run.spec.attention_out(1)), run.records["attn.1"][position]
    hd = w.shape[1] // run.model.config.num_attention_heads
    head0 = run.frozen_final_norm((w[:, :hd] @ x[:hd])[None], position) @ weight_out_in(run.spec.unembedding)[r.target_id]
    assert float(head0[0]) == pytest.approx(float(r.values[r.labels.index("1.h0")]), rel=1e-4, abs=1e-5)


def test_a_layer_or_neuron_result_is_viewed_by_head(run):
    by_head = run.out.logit_attribution(position=-2, foil="w3", unit="head").view()
    for unit in ("layer", "neuron"):
        v = run.out.logit_attribution(position=-2, foil="w3", unit=unit).view(title="t")
        np.testing.assert_array_equal(v.head_values, by_head.head_values)
        np.testing.assert_array_equal(v.promoted_index, by_head.promoted_index)
        assert v.foil == by_head.foil != "" and v.title == "t"


def test_without_attention_and_from_a_file(run, tmp_path):
    out = run.lm.analyze_ids(IDS, components=True)
    v = out.logit_attribution(unit="layer").view()  # the pattern recomputed (test_attention_recompute.py checks it)
    assert v.attention.shape == (*v.head_values.shape, len(IDS)) and v.promoted_index.size > 0
    path = out.logit_attribution(unit="head").save(tmp_path / "dla.npz")
    loaded = ew.load(path)
    v = loaded.view()  # the grid only: no tokens, no promoted tokens, no pattern
    np.testing.assert_array_equal(v.head_values, out.logit_attribution(unit="head").view().head_values)
    assert v.tokens == [] and v.promoted_index.size == 0 and v.attention.size == 0
    layer = ew.load(out.logit_attribution(unit="layer").save(tmp_path / "layer.npz"))
    with pytest.raises(NotAvailableError, match="unit='head'"):
        layer.view()


def test_the_view_checks_its_arrays():
    from ecco_widgets.views import ViewValueError

    ok = dict(head_values=np.zeros((2, 3)), mlp_values=np.zeros(2))
    with pytest.raises(ViewValueError, match="mlp_values"):
        LogitAttributionView(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ViewValueError, match="accumulated"):
        LogitAttributionView(**ok, accumulated=np.zeros(2))
    with pytest.raises(ViewValueError, match="attention"):
        LogitAttributionView(**ok, tokens=["a", "b"], position=1, attention=np.zeros((2, 3, 3)))
    with pytest.raises(ViewValueError, match="promoted_index"):
        LogitAttributionView(**ok, promoted_vocab=["a"], promoted_index=np.full((2, 4, 1), 1),
                             promoted_values=np.zeros((2, 4, 1)))
    with pytest.raises(ViewValueError, match="selected_cell"):
        LogitAttributionView(**ok, selected_cell=[0, 4])
    v = LogitAttributionView(**ok, selected_cell=[1, 3])  # column n_heads: the MLP
    assert v.selected_cell == [1, 3] and v.attention.shape == (0, 0, 0)
