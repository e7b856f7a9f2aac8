"""The explorer (issue 16): its traits read from an output, panels present / absent by what the output has, the synced
selection, and clear errors for bad options. Expected values are computed here from the model (hooks-free HF
forward) or from the output's raw arrays with a loop / an argsort, never by the explorer's own code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.errors import InputError, NotAvailableError
from ecco_widgets.views import Explorer, ViewValueError
from ecco_widgets.views.explorer import PANELS

WATCH = [5, 17]


@pytest.fixture(scope="module")
def model():
    return zoo.build("gpt2")


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, zoo.VOCAB, (10,), generator=torch.Generator().manual_seed(4)).tolist()


@pytest.fixture(scope="module")
def full(model, ids):
    """An output with everything: attributions (2 methods), activations, attention, the lens with top-5."""
    lm = ew.LanguageModel(model)
    return lm.analyze_ids(ids, attribution=("grad_x_input", "saliency"), activations=True, attention=True)


@pytest.fixture(scope="module")
def view(full):
    return full.explore(watch=WATCH, nmf=3, selected_token=4)


def test_every_panel_when_the_output_has_everything(view):
    assert view.panels == [p for p in PANELS if p not in ("components", "features", "mixing")]  # (their own tests)
    assert isinstance(view, Explorer) and view.selected_token == 4
    assert "panels=" in repr(view) and len(repr(view)) < 300


def test_panels_the_output_lacks_are_left_out(model, ids):
    lm = ew.LanguageModel(model)
    bare = lm.analyze_ids(ids)
    assert bare.explore().panels == ["lens", "predictions"]
    assert lm.analyze_ids(ids, attention=True).explore().panels == ["lens", "predictions", "attention"]
    acts = lm.analyze_ids(ids, activations=True)
    neurons_only = acts.explore()
    assert neurons_only.panels == ["lens", "predictions", "factors"]
    assert neurons_only.factors.size == 0 and neurons_only.neuron_ids.shape == (len(ids), 8, 2)
    no_topk = bare.copy()
    no_topk.topk_ids = no_topk.topk_probs = None  # (as a result kind without top-k predictions)
    assert no_topk.explore().panels == ["lens"]
    # from plain arrays: only what is given
    assert Explorer(tokens=["a", "b"], attention_keys=[[[0], [1]]], attention_values=[[[1.0], [0.5]]]).panels == \
        ["attention"]


def test_saliency_equals_l2_norm_over_the_embedding_normalised(view, full):
    for m, method in enumerate(view.methods):
        raw = full.attributions_raw[method].astype(np.float64)  # (n_targets, n_tokens, d_model)
        norms = np.sqrt((raw ** 2).sum(-1))
        expected = norms / norms.sum(-1, keepdims=True)
        for i, t in enumerate(full.targets):
            expected[i, t:] = 0  # the future does not explain a token
        np.testing.assert_allclose(view.attributions[m], expected, rtol=1e-4, atol=1e-6)
    assert list(view.targets) == list(full.targets) and view.method == "grad_x_input"


def test_lens_and_predictions_equal_a_decode_of_the_model_hidden_states(view, full, model, ids):
    with torch.no_grad():
        hs = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        # block outputs through the final norm and the unembedding (HF's last hidden state is already normed)
        logits = torch.stack([model.lm_head(model.transformer.ln_f(h[0])) for h in hs[1:-1]] +
                             [model.lm_head(hs[-1][0])])  # (n_layers, n_tokens, vocab)
    nxt = torch.tensor(ids[1:])
    target = logits[:, :-1].gather(-1, nxt[None, :, None].expand(logits.shape[0], -1, 1))
    ranks = (logits[:, :-1] > target).sum(-1) + 1
    np.testing.assert_array_equal(view.ranks, ranks.numpy())
    probs = logits.softmax(-1)
    top = probs.topk(5, dim=-1)
    vocab = np.array(view.topk_vocab)
    assert (vocab[view.topk_index] == np.vectorize(lambda i: full.vocab_text.get(int(i), str(i)))(top.indices.numpy())).all()
    np.testing.assert_allclose(view.topk_probs, top.values.numpy(), rtol=1e-4, atol=1e-6)
    # first layer from which the next token stays the top prediction: a loop
    for p in range(len(ids) - 1):
        col = ranks[:, p].numpy()
        stays = [l for l in range(len(col)) if (col[l:] == 1).all()]
        assert view.first_layer[p] == (stays[0] if stays else -1)
    # watched tokens: their rank in every layer's decode, at every position
    for w, token_id in enumerate(WATCH):
        chosen = logits[..., token_id: token_id + 1]
        np.testing.assert_array_equal(view.watch_ranks[..., w], ((logits > chosen).sum(-1) + 1).numpy())


def test_factors_neurons_and_attention_rows(view, full):
    nmf_positions = view.factor_positions
    assert list(nmf_positions) == list(range(full.n_tokens)) and view.factors.shape == (3, full.n_tokens)
    assert view.factor_labels == ["Factor 0", "Factor 1", "Factor 2"]
    acts, layers = full.activations, full.activation_layers
    for t in range(full.n_tokens):
        cells = sorted(((-float(acts[r, t, n]), layers[r], n) for r in range(acts.shape[0]) for n in range(acts.shape[2])))
        expected = cells[:8]
        assert [tuple(x) for x in view.neuron_ids[t].tolist()] == [(layer, n) for _, layer, n in expected]
        np.testing.assert_allclose(view.neuron_values[t], [-v for v, _, _ in expected], rtol=1e-6)
    weights = full.attention_weights[-1]  # the last layer by default
    assert view.attention_label == f"layer {full.attention_weights.shape[0] - 1}"
    assert view.head_labels[0] == f"mean of {weights.shape[0]} heads"
    for q in range(full.n_tokens):
        for h, row in enumerate([weights[:, q].mean(0), *weights[:, q]]):
            ranked = sorted(range(len(row)), key=lambda k: (-row[k], k))[:8]
            keys = [k if row[k] > 0 else -1 for k in ranked]
            assert view.attention_keys[h, q].tolist() == keys
            np.testing.assert_allclose(view.attention_values[h, q], [max(row[k], 0) if row[k] > 0 else 0 for k in ranked],
                                       rtol=1e-5, atol=1e-7)


def test_selected_token_is_a_synced_trait_checked_in_range(view, full):
    assert view.trait_metadata("selected_token", "sync")
    view.selected_token = 7
    assert view.selected_token == 7 and view.export_state()["selected_token"] == 7
    with pytest.raises(ViewValueError, match="selected_token"):
        view.selected_token = full.n_tokens
    with pytest.raises(ViewValueError, match="method"):
        view.method = "ig"
    view.selected_token = 4
    # the default: the first explained token
    assert full.explore().selected_token == int(full.targets[0])
    assert full.explore(selected_token=-1).selected_token == full.n_tokens - 1


def test_explorer_of_an_output_is_ew_explorer_of_it(full):
    a, b = full.explore(topk=3), ew.Explorer(full, topk=3)
    assert a.export_state() == b.export_state()
    assert a.topk_index.shape[-1] == 3


def test_bad_options_fail_clearly_before_any_heavy_work(full, monkeypatch):
    def heavy(*args, **kwargs):  # the watched ranks, the NMF: must not run when an option is wrong
        raise AssertionError("heavy work ran before the options were checked")

    monkeypatch.setattr(type(full), "watch_ranks", heavy)
    monkeypatch.setattr(type(full), "run_nmf", heavy)
    cases = [
        (dict(unit="letters"), InputError, "unit must be 'token' or 'word'"),
        (dict(watch=" is"), InputError, "watch must be a list of tokens"),
        (dict(watch=[]), InputError, "watch must be a list of tokens"),
        (dict(watch=[10 ** 6]), InputError, "outside the vocabulary"),
        (dict(watch=WATCH, topk=0), InputError, "topk must be a positive integer"),
        (dict(watch=WATCH, topk=50), InputError, "Only the top 10 predictions were kept"),
        (dict(nmf=3, attention_layer=40), InputError, "attention_layer 40 does not exist"),
        (dict(nmf="many"), InputError, "nmf must be an NMFResult"),
        (dict(watch=WATCH, method="ig"), InputError, "method 'ig' was not computed"),
        (dict(watch=WATCH, aggregate="mean"), InputError, "aggregate must be one of"),
        (dict(nmf=3, selected_token=99), InputError, "position 99 is out of range"),
        (dict(watch=WATCH, top_neurons=-2), InputError, "top_neurons must be a positive integer"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            full.explore(**options)
    with pytest.raises(ViewValueError, match="unknown option"):
        full.explore(colour="red")


def test_what_the_output_cannot_give(model, ids, full, tmp_path):
    lm = ew.LanguageModel(model)
    with pytest.raises(NotAvailableError, match="attention=True"):
        lm.analyze_ids(ids).explore(attention_layer=0)
    with pytest.raises(NotAvailableError, match="activations=True"):
        lm.analyze_ids(ids).explore(nmf=2)
    loaded = ew.load(full.save(tmp_path / "out.npz"))
    with pytest.raises(NotAvailableError, match="out.attach"):
        loaded.explore(watch=WATCH)
    assert loaded.explore().panels == ["saliency", "lens", "predictions", "factors", "attention"]
    other = lm.analyze_ids(ids[::-1], activations=True).run_nmf(n_components=2)
    with pytest.raises(InputError, match="another output"):
        full.explore(nmf=other)


def test_plain_arrays_are_checked():
    toks = ["a", "b", "c"]
    with pytest.raises(ViewValueError, match="ranks: expected shape"):
        Explorer(tokens=toks, ranks=[[1, 2, 3]])
    with pytest.raises(ViewValueError, match="watch_ranks"):
        Explorer(tokens=toks, ranks=[[1, 2]], watch_tokens=["x"], watch_ranks=np.ones((2, 3, 1)))  # 2 layers, not 1
    with pytest.raises(ViewValueError, match="turns\\[1\\]"):
        Explorer(tokens=toks, ranks=[[1, 2]], turns=[{"role": "user", "start": 0, "stop": 2},
                                                     {"role": "assistant", "start": 1, "stop": 3}])
    with pytest.raises(ViewValueError, match="turns\\[0\\].role"):
        Explorer(tokens=toks, ranks=[[1, 2]], turns=[{"role": "robot", "start": 0, "stop": 2}])
    with pytest.raises(ViewValueError, match="special"):
        Explorer(tokens=toks, ranks=[[1, 2]], special=[1, 0])
    with pytest.raises(ViewValueError, match="pieces"):
        Explorer(tokens=toks, ranks=[[1, 2]], unit="word", pieces=[["a"]])
    with pytest.raises(ViewValueError, match="attention_values"):
        Explorer(tokens=toks, attention_keys=np.zeros((1, 3, 2)), attention_values=np.full((1, 3, 2), 2.0))
    with pytest.raises(ViewValueError, match="factor_positions"):
        Explorer(tokens=toks, factors=np.ones((2, 2)), factor_positions=[2, 1])


def test_turns_special_tokens_and_the_export(full, tmp_path):
    chat = full.copy()
    chat.turns = [{"role": "system", "start": 0, "stop": 3}, {"role": "user", "start": 3, "stop": 6},
                  {"role": "assistant", "start": 6, "stop": 10}]
    chat.special_mask = np.zeros(10, bool)
    chat.special_mask[[0, 3, 6]] = True
    v = chat.explore()
    assert v.turns == chat.turns and v.special.tolist() == chat.special_mask.astype(int).tolist()
    page = v.save_html(tmp_path / "explorer.html").read_text()
    assert '"bundle":"explorer"' in page and "ew-bundles" in page


@pytest.mark.skipif(not hasattr(ew.Output, "by_word"), reason="Output.by_word() is not in this version yet")
def test_word_unit_shows_words_and_keeps_their_pieces():
    tokens = ["The", " cab", "inet", " is", " open", "."]
    n = len(tokens)
    out = ew.Output(token_ids=np.arange(n), tokens=tokens, raw_tokens=["The", "Ġcab", "inet", "Ġis", "Ġopen", "."],
                    n_input_tokens=n, ranks=np.arange(1, 2 * (n - 1) + 1, dtype=np.int32).reshape(2, n - 1))
    words = out.words()
    v = out.explore(unit="word")
    assert v.unit == "word" and v.tokens == [w["text"] for w in words]
    assert v.pieces == [list(w["pieces"]) for w in words] and v.pieces[1] == ["Ġcab", "inet"]
    with pytest.raises(InputError, match="unit"):
        out.explore(unit="Word")
