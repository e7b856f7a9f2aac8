"""NMF factors, top neurons and the neuron heatmap, checked against plain numpy written here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import transformers as tf

import ecco_widgets as ew
import ecco_widgets.views.bundles as views_base
from ecco_widgets.analysis.factors import factorize
from ecco_widgets.errors import InputError, NotAvailableError
from ecco_widgets.results import NMFResult, Output
from ecco_widgets.views import BUNDLES, FactorExplorer, NeuronHeatmap

N_TOKENS, WIDTH = 12, 20
LAYERS = [1, 3, 4]  # captured layers of a 6-layer model


@pytest.fixture(autouse=True)
def _static(tmp_path_factory, monkeypatch):
    """Views read their JS bundle when constructed: use stubs where the front-end is not built."""
    if not all(views_base.bundle_path(b).is_file() for b in BUNDLES.values()):
        stub = tmp_path_factory.mktemp("static")
        for b in BUNDLES.values():
            (stub / f"{b}.js").write_text("export default { render({ el }) { el.textContent = 'stub'; } };\n")
        monkeypatch.setattr(views_base, "STATIC_DIR", stub)


def make_output(activations: np.ndarray | None = None, layers=LAYERS, n_layers: int = 6, seed: int = 0,
                n_input_tokens: int = 8) -> Output:
    rng = np.random.default_rng(seed)
    if activations is None:
        # GELU-like: mostly positive, some small negatives
        activations = (rng.gamma(1.0, 1.0, size=(len(layers), N_TOKENS, WIDTH)) - 0.1).astype(np.float32)
    n = activations.shape[1]
    tokens = [f" t{i}" for i in range(n)]
    return Output(token_ids=np.arange(n), tokens=tokens, raw_tokens=[t.replace(" ", "Ġ") for t in tokens],
                  n_input_tokens=n_input_tokens, ranks=np.ones((n_layers, n - 1), np.int32),
                  activations=activations, activation_layers=list(layers))


def nmf_input(out: Output, layers, positions) -> np.ndarray:
    """Independent construction: chosen layers in numeric order, concatenated along neurons, clipped at 0."""
    rows = [out.activation_layers.index(layer) for layer in sorted(layers)]
    x = np.concatenate([out.activations[r] for r in rows], axis=1)[positions]
    return np.where(x < 0, 0.0, x).astype(np.float64)


# ----- run_nmf -----
def test_shapes_and_metadata():
    out = make_output()
    nmf = out.run_nmf(n_components=4)
    assert isinstance(nmf, NMFResult)
    assert nmf.factors.shape == (4, N_TOKENS) and nmf.factors.dtype == np.float32
    assert nmf.components.shape == (4, 3 * WIDTH) and nmf.components.dtype == np.float32
    assert nmf.layers == LAYERS
    assert nmf.positions.tolist() == list(range(N_TOKENS))
    assert nmf.tokens == out.tokens and nmf.raw_tokens == out.raw_tokens and nmf.n_input_tokens == 8
    assert nmf.neuron_index.shape == (3 * WIDTH, 2)
    assert nmf.neuron_index[0].tolist() == [1, 0]
    assert nmf.neuron_index[WIDTH + 5].tolist() == [3, 5]
    assert nmf.neuron_index[-1].tolist() == [4, WIDTH - 1]
    assert (nmf.factors >= 0).all() and (nmf.components >= 0).all()
    assert nmf.options["random_state"] == 0 and nmf.options["n_components"] == 4
    assert "n_components=4" in repr(nmf)


def test_default_is_eight_components_over_all_layers_and_tokens():
    nmf = make_output().run_nmf()
    assert nmf.factors.shape == (8, N_TOKENS)
    assert nmf.layers == LAYERS


def test_deterministic():
    out = make_output()
    a, b = out.run_nmf(n_components=5), out.run_nmf(n_components=5)
    np.testing.assert_array_equal(a.factors, b.factors)
    np.testing.assert_array_equal(a.components, b.components)
    assert a.reconstruction_error == b.reconstruction_error
    # another seed is passed through and gives another start
    c = out.run_nmf(n_components=5, init="random", random_state=1)
    assert c.options["random_state"] == 1 and c.options["init"] == "random"
    assert not np.allclose(a.factors, c.factors)


@pytest.mark.parametrize("layers, positions", [(None, None), ([4, 1], [7, 2, 3, 11]), ([3], slice(2, 10))])
def test_reconstruction_error_is_the_frobenius_norm(layers, positions):
    out = make_output()
    nmf = out.run_nmf(n_components=3, layers=layers, positions=positions)
    used_layers = sorted(layers) if layers else LAYERS
    used_positions = sorted(range(N_TOKENS)[positions]) if isinstance(positions, slice) else (
        sorted(positions) if positions else list(range(N_TOKENS)))
    assert nmf.layers == used_layers
    assert nmf.positions.tolist() == used_positions
    assert nmf.tokens == [out.tokens[p] for p in used_positions]
    # the first token (position 0) is left out of the fit by default: its factor column is 0, the error covers the rest
    fit = [i for i, p in enumerate(used_positions) if p != 0]
    assert nmf.excluded_positions == ([0] if 0 in used_positions else [])
    assert not nmf.factors[:, [i for i in range(len(used_positions)) if i not in fit]].any()
    x = nmf_input(out, used_layers, [used_positions[i] for i in fit])
    w, h = nmf.factors.T[fit].astype(np.float64), nmf.components.astype(np.float64)
    assert nmf.reconstruction_error == pytest.approx(np.linalg.norm(x - w @ h), rel=1e-4)
    assert nmf.reconstruction_error < 0.9 * np.linalg.norm(x)  # it did factorise something


def test_positions_and_n_input_tokens():
    out = make_output(n_input_tokens=5)
    nmf = out.run_nmf(n_components=2, positions=[-1, 0, 6, 6, 3])
    assert nmf.positions.tolist() == [0, 3, 6, 11]  # ascending, each once, negatives from the end
    assert nmf.n_input_tokens == 2  # positions 0 and 3 are prompt tokens
    assert nmf.factors.shape == (2, 4)


def test_negative_values_are_clipped_and_the_input_is_untouched():
    assert "clipped" in factorize.__doc__ and "GELU" in factorize.__doc__
    out = make_output()
    before = out.activations.copy()
    negative_share = float((before[:, 1:] < 0).mean())  # over the fit rows: the first token is left out
    assert negative_share > 0.02
    nmf = out.run_nmf(n_components=3)
    np.testing.assert_array_equal(out.activations, before)  # the output's activations are not clipped in place
    assert nmf.clipped_fraction == pytest.approx(negative_share)
    clipped = make_output(np.maximum(before, 0))
    same = clipped.run_nmf(n_components=3)
    np.testing.assert_array_equal(nmf.factors, same.factors)  # clipping at 0 is exactly what happened
    np.testing.assert_array_equal(nmf.components, same.components)
    assert same.clipped_fraction == 0.0
    # signed inputs (SwiGLU) with large negatives are clipped too, not rejected
    signed = make_output(np.random.default_rng(1).normal(size=before.shape).astype(np.float32) * 50)
    assert signed.run_nmf(n_components=3).clipped_fraction == pytest.approx(0.5, abs=0.1)


def test_layers_stored_out_of_order_are_used_in_numeric_order():
    rng = np.random.default_rng(3)
    acts = rng.random((3, N_TOKENS, WIDTH), dtype=np.float32)
    out = make_output(acts, layers=[10, 2, 11], n_layers=12)
    nmf = out.run_nmf(n_components=2)
    assert nmf.layers == [2, 10, 11]
    assert nmf.neuron_index[:: WIDTH, 0].tolist() == [2, 10, 11]
    x = np.concatenate([acts[1], acts[0], acts[2]], axis=1).astype(np.float64)[1:]  # the first token is set aside
    assert nmf.reconstruction_error == pytest.approx(
        np.linalg.norm(x - nmf.factors.T[1:].astype(np.float64) @ nmf.components), rel=1e-4)
    assert out.run_nmf(n_components=2, layers=[11, 10]).layers == [10, 11]
    values = np.concatenate([acts[1, 0], acts[0, 0], acts[2, 0]])
    order = np.argsort(values)[::-1][:5]
    assert [(d["layer"], d["neuron"]) for d in out.top_neurons(0, k=5)] == [
        ([2, 10, 11][i // WIDTH], i % WIDTH) for i in order]


def test_no_shared_arrays_with_the_output():
    out = make_output(layers=[2])
    nmf = out.run_nmf(n_components=2)
    assert not np.shares_memory(nmf.factors, out.activations)
    assert not np.shares_memory(nmf.components, out.activations)


def test_errors():
    with pytest.raises(NotAvailableError, match="activations=True"):
        replace(make_output(), activations=None).run_nmf()
    out = make_output()
    with pytest.raises(NotAvailableError, match=r"Layer 2 was not captured \(captured layers: 1, 3, 4\)"):
        out.run_nmf(layers=[1, 2])
    with pytest.raises(InputError, match="Layer 6 does not exist"):
        out.run_nmf(layers=[6])
    with pytest.raises(InputError, match=r"n_components=0 .* 1 to min\(n_tokens, n_neurons\)"):
        out.run_nmf(n_components=0)
    with pytest.raises(InputError, match=r"min\(12, 60\) = 12"):
        out.run_nmf(n_components=13, exclude_first=False)
    with pytest.raises(InputError, match=r"min\(3, 60\) = 3"):
        out.run_nmf(n_components=4, positions=[0, 1, 2], exclude_first=False)
    assert out.run_nmf(n_components=3, positions=[0, 1, 2], exclude_first=False).factors.shape == (3, 3)
    with pytest.raises(InputError, match="position 12 is out of range"):
        out.run_nmf(n_components=2, positions=[0, 12])
    with pytest.raises(InputError, match="empty"):
        out.run_nmf(n_components=2, positions=slice(5, 5))
    with pytest.raises(InputError, match="layers is empty"):
        out.run_nmf(layers=[])


def test_nmf_top_neurons_against_argsort():
    out = make_output()
    nmf = out.run_nmf(n_components=3)
    for factor in range(3):
        weights = nmf.components[factor]
        order = np.argsort(weights)[::-1][:7]
        got = nmf.top_neurons(factor, k=7)
        assert [(layer, neuron) for layer, neuron, _ in got] == [
            (LAYERS[i // WIDTH], i % WIDTH) for i in order]
        assert [w for _, _, w in got] == pytest.approx(weights[order].tolist())
    assert nmf.top_neurons(-1, k=2) == nmf.top_neurons(2, k=2)
    assert len(nmf.top_neurons(0, k=10_000)) == 3 * WIDTH
    with pytest.raises(InputError, match="factor 3 does not exist"):
        nmf.top_neurons(3)
    with pytest.raises(InputError, match="k must be a positive integer"):
        nmf.top_neurons(0, k=0)


def test_explore_builds_a_factor_explorer():
    out = make_output(n_input_tokens=5)
    nmf = out.run_nmf(n_components=3, positions=[1, 4, 7, 9])
    view = nmf.explore(title="factors")
    assert isinstance(view, FactorExplorer)
    np.testing.assert_array_equal(view.factors, nmf.factors)
    assert view.tokens == [out.tokens[p] for p in (1, 4, 7, 9)]
    assert view.raw_tokens == [out.raw_tokens[p] for p in (1, 4, 7, 9)]
    assert view.n_input_tokens == 2
    assert view.factor_labels == ["Factor 0", "Factor 1", "Factor 2"]
    assert view.title == "factors"
    assert nmf.explore(factor_labels=["a", "b", "c"]).factor_labels == ["a", "b", "c"]


# ----- top_neurons -----
@pytest.mark.parametrize("position", [0, 5, -1])
def test_top_neurons_against_argsort(position):
    out = make_output()
    p = position % N_TOKENS
    values = np.concatenate([out.activations[r, p] for r in range(3)])
    order = np.argsort(values)[::-1][:10]
    got = out.top_neurons(position, k=10)
    assert [(d["layer"], d["neuron"]) for d in got] == [(LAYERS[i // WIDTH], i % WIDTH) for i in order]
    assert [d["value"] for d in got] == pytest.approx(values[order].tolist())
    assert got == out.top_neurons(p, k=10)
    # one layer
    one = out.top_neurons(position, k=4, layer=3)
    order = np.argsort(out.activations[1, p])[::-1][:4]
    assert [(d["layer"], d["neuron"]) for d in one] == [(3, int(i)) for i in order]
    assert [d["value"] for d in one] == pytest.approx(out.activations[1, p, order].tolist())


def test_top_neurons_errors():
    out = make_output()
    with pytest.raises(NotAvailableError, match=r"Layer 0 was not captured \(captured layers: 1, 3, 4\)"):
        out.top_neurons(0, layer=0)
    with pytest.raises(InputError, match="position 12 is out of range"):
        out.top_neurons(12)
    with pytest.raises(InputError, match="k must be a positive integer"):
        out.top_neurons(0, k=0)
    assert len(out.top_neurons(0, k=1000)) == 3 * WIDTH
    assert out.top_neurons(0, layer=-2)[0]["layer"] == 4  # negative layers count from the model's last


# ----- neuron_heatmap -----
def test_neuron_heatmap():
    out = make_output()
    view = out.neuron_heatmap(layer=3, neurons=[7, 0, 19], title="L3")
    assert isinstance(view, NeuronHeatmap)
    np.testing.assert_array_equal(view.activations, out.activations[1][:, [7, 0, 19]].T)
    assert view.neuron_labels == ["L3.N7", "L3.N0", "L3.N19"]
    assert view.tokens == out.tokens and view.n_input_tokens == out.n_input_tokens and view.title == "L3"
    assert not np.shares_memory(view.activations, out.activations)
    single = out.neuron_heatmap(4, 2, neuron_labels=["mine"])
    assert single.activations.shape == (1, N_TOKENS) and single.neuron_labels == ["mine"]


def test_neuron_heatmap_errors():
    out = make_output()
    with pytest.raises(NotAvailableError, match=r"Layer 2 was not captured \(captured layers: 1, 3, 4\)"):
        out.neuron_heatmap(2, [0])
    with pytest.raises(InputError, match="Layer 9 does not exist"):
        out.neuron_heatmap(9, [0])
    with pytest.raises(InputError, match=r"Neuron indices \[20, -1\] are out of range: layer 1 has 20 neurons"):
        out.neuron_heatmap(1, [0, 20, -1])
    with pytest.raises(InputError, match="neurons is empty"):
        out.neuron_heatmap(1, [])
    with pytest.raises(NotAvailableError, match="activations=True"):
        replace(make_output(), activations=None).neuron_heatmap(1, [0])


# ----- end to end on a tiny real model -----
def test_end_to_end_on_a_tiny_model():
    config = tf.GPT2Config(n_layer=12, n_embd=16, n_head=2, n_positions=64, vocab_size=50, initializer_range=0.2)
    torch.manual_seed(0)
    lm = ew.LanguageModel(tf.GPT2LMHeadModel(config).eval())
    ids = [1, 5, 9, 13, 2, 7, 30, 41, 8, 3]
    out = lm.analyze_ids(ids, activations=[10, 2, 11, 0])
    nmf = out.run_nmf(n_components=3, layers=[11, 2, 10])
    assert nmf.layers == [2, 10, 11]
    assert sorted(set(nmf.neuron_index[:, 0].tolist())) == [2, 10, 11]
    assert nmf.neuron_index[:64, 0].tolist() == [2] * 64 and nmf.neuron_index[64:128, 0].tolist() == [10] * 64
    x = nmf_input(out, [2, 10, 11], list(range(1, len(ids))))  # the first token is set aside by default
    assert nmf.reconstruction_error == pytest.approx(
        np.linalg.norm(x - nmf.factors.T[1:].astype(np.float64) @ nmf.components), rel=1e-4)
    assert {d["layer"] for d in out.top_neurons(4, k=256)} == {0, 2, 10, 11}
    assert out.neuron_heatmap(10, [0, 63]).activations.shape == (2, len(ids))
    assert isinstance(nmf.explore(), FactorExplorer)


# ----- exclude_first (issue 14, point 4): the attention sink set aside -----
def _sink_output() -> Output:
    """Activations where the first token is a sink: 100x the others (as SmolLM2's token 0)."""
    rng = np.random.default_rng(7)
    acts = rng.gamma(1.0, 1.0, size=(len(LAYERS), N_TOKENS, WIDTH)).astype(np.float32)
    acts[:, 0] *= 100
    return make_output(acts)


def test_exclude_first_matches_scikit_learn_on_the_matrix_without_the_first_row():
    from sklearn.decomposition import NMF

    out = _sink_output()
    nmf = out.run_nmf(n_components=4)  # exclude_first=True is the default
    assert nmf.excluded_positions == [0] and nmf.positions.tolist() == list(range(N_TOKENS))
    x = nmf_input(out, LAYERS, list(range(1, N_TOKENS))).astype(np.float32)  # independent: rows 1..n, clipped
    ref = NMF(n_components=4, init="nndsvda", solver="cd", max_iter=500, tol=1e-4, random_state=0)
    w = ref.fit_transform(x)
    np.testing.assert_allclose(nmf.factors[:, 1:], w.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nmf.components, ref.components_, rtol=1e-4, atol=1e-5)
    assert nmf.reconstruction_error == pytest.approx(ref.reconstruction_err_, rel=1e-5)
    assert (nmf.factors[:, 0] == 0).all()  # reported as 0, not projected


def test_without_exclude_first_the_sink_takes_a_factor_of_its_own():
    out = _sink_output()
    full = out.run_nmf(n_components=4, exclude_first=False)
    assert full.excluded_positions == []
    # one factor is (almost) the first token alone: that is what exclude_first prevents
    share = full.factors[:, 0] / np.maximum(full.factors.sum(axis=1), 1e-12)
    assert share.max() > 0.9
    aside = out.run_nmf(n_components=4)
    assert aside.factors[:, 1:].sum(axis=1).min() > 0  # every factor describes the other tokens


def test_exclude_first_only_when_the_first_token_is_used_and_in_the_explorer():
    out = _sink_output()
    some = out.run_nmf(n_components=2, positions=[3, 5, 7])
    assert some.excluded_positions == [] and (some.factors > 0).any(axis=0).all()
    view = out.run_nmf(n_components=2).explore()
    assert view.excluded_tokens == [0]
    assert out.run_nmf(n_components=2, exclude_first=False).explore().excluded_tokens == []
    with pytest.raises(InputError, match="exclude_first must be True or False"):
        out.run_nmf(n_components=2, exclude_first="yes")
    with pytest.raises(InputError, match="min\\(11, 60\\)"):  # 11 rows are fitted, not 12
        out.run_nmf(n_components=12)
