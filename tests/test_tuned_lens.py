"""The tuned lens: training, the tuned-lens package's file layout (checked against the package itself), decoding
through it (against translators applied by hand here), and a real SmolLM2 lens measured on held-out text."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from test_lens_models import FINAL_NORM, argsort_ranks


@pytest.fixture(scope="module")
def llama():
    model = zoo.build("llama")
    return model, ew.LanguageModel(model, name="tiny-llama")


def random_lens(n_layers: int, d_model: int, seed: int = 0, scale: float = 0.05) -> ew.TunedLens:
    g = torch.Generator().manual_seed(seed)
    return ew.TunedLens(torch.randn(n_layers, d_model, d_model, generator=g) * scale,
                        torch.randn(n_layers, d_model, generator=g) * scale)


def test_identity_lens_decodes_as_the_logit_lens(llama):
    model, lm = llama
    ids = list(range(5, 17))
    plain = lm.analyze_ids(ids)
    tuned = lm.analyze_ids(ids, lens=ew.TunedLens.identity(lm.spec.n_layers, model.config.hidden_size))
    np.testing.assert_array_equal(tuned.ranks, plain.ranks)
    np.testing.assert_allclose(tuned.kl_to_final, plain.kl_to_final, atol=1e-6)
    assert tuned.lens == "tuned" and plain.lens == "logit"


def test_ranks_through_a_lens_match_translators_applied_by_hand(llama, tmp_path):
    """Reference: params.pt read with torch.load here, h + W h + b on HF's hidden_states, final norm by hand."""
    model, lm = llama
    lens = random_lens(lm.spec.n_layers, model.config.hidden_size)
    folder = lens.save(tmp_path / "lens")
    state = torch.load(folder / "params.pt", weights_only=True)
    ids = torch.randint(0, zoo.VOCAB, (13,), generator=torch.Generator().manual_seed(3)).tolist()
    out = lm.analyze_ids(ids, lens=ew.TunedLens.load(folder))
    norm = model.get_submodule(FINAL_NORM["llama"][0])
    with torch.no_grad():
        result = model(torch.tensor([ids]), output_hidden_states=True)
        rows = []
        for i in range(1, lm.spec.n_layers):  # block outputs 0..L-2 are hidden_states[1..L-1]: translators 1..L-1
            h = result.hidden_states[i][0]
            rows.append(model.lm_head(norm(h + h @ state[f"{i}.weight"].T + state[f"{i}.bias"])))
        rows.append(result.logits[0])
    targets = torch.tensor(ids[1:])
    expected = np.stack([argsort_ranks(r[:-1], targets) for r in rows])
    np.testing.assert_array_equal(out.ranks, expected)
    p_final = torch.softmax(rows[-1][:-1], -1)
    kl = [torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p_final),
                                            torch.distributions.Categorical(logits=r[:-1])).numpy() for r in rows]
    np.testing.assert_allclose(out.kl_to_final, np.stack(kl), rtol=1e-4, atol=1e-5)
    assert out.lens == f"tuned:{folder}"


def test_files_load_in_the_tuned_lens_package_and_back(llama, tmp_path):
    """Both directions against the package itself: its lens decodes our files as we do, ours decodes its files."""
    tuned_lens = pytest.importorskip("tuned_lens", reason="make setup-test installs tuned-lens (--no-deps)")
    model, lm = llama
    ours = random_lens(lm.spec.n_layers, model.config.hidden_size, seed=4)
    ours.config["unembed_hash"] = ew.analysis.tuned_lens_files.unembedding_hash(model.lm_head.weight)
    theirs = tuned_lens.TunedLens.from_model_and_pretrained(model, lens_resource_id=str(ours.save(tmp_path / "a")))
    ids = list(range(7, 20))
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        for i in range(lm.spec.n_layers):
            expected = theirs(hidden[i][0], i)
            ours_logits = lm.spec.decode(ours.translate(hidden[i][0][None], first_row=i)[0])
            torch.testing.assert_close(ours_logits, expected, rtol=1e-5, atol=1e-5)
    package_lens = tuned_lens.TunedLens.from_model(model)
    with torch.no_grad():
        for translator in package_lens:
            translator.weight.normal_(0, 0.05)
            translator.bias.normal_(0, 0.05)
    package_lens.save(tmp_path / "b")
    loaded = ew.TunedLens.load(tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert loaded.n_layers == config["num_hidden_layers"] == lm.spec.n_layers
    with torch.no_grad():
        for i in range(lm.spec.n_layers):
            torch.testing.assert_close(loaded.weights[i], package_lens[i].weight)
            h = hidden[i][0]
            torch.testing.assert_close(lm.spec.decode(loaded.translate(h[None], first_row=i)[0]), package_lens(h, i),
                                       rtol=1e-5, atol=1e-5)
    lm.analyze_ids(ids, lens=loaded)  # the package's unembed_hash matches this model's


def test_fit_lowers_the_training_loss_and_saves(llama, tmp_path):
    model, lm = llama
    text_ids = torch.randint(3, zoo.VOCAB, (400,), generator=torch.Generator().manual_seed(5)).tolist()
    lm.encode = lambda text: text_ids  # this random-weight model has no tokenizer; any ids train it
    try:
        lens = ew.TunedLens.fit(lm, "any text", steps=25, batch_tokens=32, seq_len=64, lr=1e-2, progress=False)
    finally:
        del lm.encode
    loss = lens.history["loss"]
    assert len(loss) == 25 and loss[-1] < 0.8 * loss[0]
    assert lens.config["base_model_name_or_path"] == "tiny-llama"
    back = ew.TunedLens.load(lens.save(tmp_path / "fit"))
    torch.testing.assert_close(back.weights, lens.weights)
    torch.testing.assert_close(back.biases, lens.biases)


def test_bad_lenses_and_options_are_refused_before_work(llama, tmp_path):
    model, lm = llama
    with pytest.raises(ew.InputError, match="translators of width"):
        lm.analyze_ids([1, 2, 3], lens=ew.TunedLens.identity(lm.spec.n_layers + 1, model.config.hidden_size))
    wrong = ew.TunedLens.identity(lm.spec.n_layers, model.config.hidden_size, unembed_hash="0" * 64)
    with pytest.raises(ew.InputError, match="different unembedding"):
        lm.analyze_ids([1, 2, 3], lens=wrong)
    with pytest.raises(ew.InputError, match="block outputs only"):
        lm.analyze_ids([1, 2, 3], lens=ew.TunedLens.identity(lm.spec.n_layers, model.config.hidden_size),
                       lens_points="sublayers")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ew.InputError, match="lacks config.json, params.pt"):
        ew.TunedLens.load(tmp_path / "empty")
    with pytest.raises(ew.InputError, match="could not be downloaded|not a folder"):
        ew.TunedLens.load(str(tmp_path / "no-such-model"))
    for bad in ({"steps": 0}, {"lr": 2.0}, {"batch_tokens": 1.5}, {"seq_len": 1}):
        with pytest.raises(ew.InputError):
            ew.TunedLens.fit(lm, "text", **bad)
    with pytest.raises(ew.InputError, match="string or a list of strings"):
        ew.TunedLens.fit(lm, [1, 2])


def pydoc_texts(held_out: bool) -> list[str]:
    """The English help topics of Python's pydoc_data: every tenth topic held out."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    chosen = keys[::10] if held_out else [k for i, k in enumerate(keys) if i % 10]
    return [topics[k] for k in chosen]


@pytest.mark.slow
def test_smollm2_tuned_lens_beats_the_logit_lens_on_held_out_text(demo_lm):
    """A short fit (the figures in docs/lenses.md come from the full default one in benchmarks/bench_tuned_lens.py)."""
    lens = ew.TunedLens.fit(demo_lm, pydoc_texts(False), steps=40, max_tokens=4096, progress=False)
    held = pydoc_texts(True)
    logit = ew.held_out_kl(demo_lm, held, max_tokens=1024)
    tuned = ew.held_out_kl(demo_lm, held, lens=lens, max_tokens=1024)
    n = demo_lm.spec.n_layers
    middle = slice(n // 4, 3 * n // 4)
    assert (tuned[middle] < logit[middle]).all(), (logit, tuned)
    assert tuned[-1] == logit[-1] == 0


def test_compare_lenses_refuses_bad_requests_before_work(llama):
    model, lm = llama
    with pytest.raises(ew.InputError, match="lenses must be a dict"):
        ew.compare_lenses(lm, "text", lenses=[None])
    with pytest.raises(ew.InputError, match="metric must be one of"):
        ew.compare_lenses(lm, "text", metric="logits")
    with pytest.raises(ew.InputError, match="translators of width"):
        ew.compare_lenses(lm, "text", lenses={"logit": None, "bad": ew.TunedLens.identity(1, 4)})
    with pytest.raises(ew.InputError, match="computes only the lens"):
        ew.compare_lenses(lm, "text", attribution=("ig",))


@pytest.mark.slow
def test_compare_lenses_aligns_the_lenses_of_one_text(demo_lm):
    text = "The keys to the cabinet are on the table"
    lens = random_lens(demo_lm.spec.n_layers, 576, seed=6, scale=0.01)
    lens.config["unembed_hash"] = ew.analysis.tuned_lens_files.unembedding_hash(demo_lm.spec.unembedding.weight)
    calls = []
    hook = demo_lm.spec.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        view = ew.compare_lenses(demo_lm, text, lenses={"logit": None, "tuned": lens}, metric="kl")
    finally:
        hook.remove()
    assert len(calls) == 1  # one hooked forward decoded through both lenses
    plain, tuned = demo_lm.analyze(text), demo_lm.analyze(text, lens=lens)
    assert view.lens_names == ["logit", "tuned"] and view.metric == "kl"
    np.testing.assert_array_equal(view.ranks, np.stack([plain.ranks, tuned.ranks]))
    assert not np.array_equal(plain.ranks, tuned.ranks)
    np.testing.assert_allclose(view.kl_to_final, np.stack([plain.kl_to_final, tuned.kl_to_final]), rtol=1e-5)
    for i, out in enumerate((plain, tuned)):  # the per-layer summary, by hand
        np.testing.assert_allclose(view.summary_top1[i], (out.ranks == 1).mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(view.summary_mean_kl[i], out.kl_to_final.mean(axis=1), rtol=1e-5)
