"""Feature dashboards (issue 27): ew.feature_dashboard against a brute-force pass written HERE (the site read with a
hook on the HF model, every token densely encoded, then sorted), merged shards against one pass, the memory bound
asserted on the collector's tables after every document, promoted tokens against W_dec @ the unembedding computed
here, bad input refused before any forward, save / load.

Random tiny zoo models (Llama: RMSNorm, so TL's resid hooks are the raw hidden states; GPT-2 for the LayerNorm
path of the promoted tokens) and random SAEs built here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.features import SAE
from ecco_widgets.analysis.features import dashboard as collector_module
from ecco_widgets.analysis.features import dashboard_run
from ecco_widgets.batch.dashboard import feature_dashboard
from test_foundation import WORDS, ToyTokenizer

LAYER = 1
SITE = f"blocks.{LAYER}.hook_resid_post"
D_SAE, K, WINDOW, SAMPLES = 24, 5, 2, 6


def texts(n: int = 9, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(1, 40, size=rng.integers(3, 14))) for _ in range(n)]


def random_sae(d_in: int, seed: int = 0, architecture: str = "standard") -> SAE:
    g = torch.Generator().manual_seed(seed)
    sae = SAE(W_enc=torch.randn(d_in, D_SAE, generator=g) * 0.4, W_dec=torch.randn(D_SAE, d_in, generator=g),
              b_enc=torch.randn(D_SAE, generator=g) * 0.3 - 0.2, b_dec=torch.randn(d_in, generator=g) * 0.1,
              architecture=architecture, k=4 if architecture == "topk" else None)
    sae.labels = {3: "third", 7: "w-ish"}
    return sae


@pytest.fixture(scope="module")
def lm():
    return ew.from_pretrained(zoo.build("llama"), tokenizer=ToyTokenizer(WORDS))


def brute_force(lm, sae: SAE, docs: list[str], k: int = K, window: int = WINDOW):
    """Per feature: every (value, doc, pos) with value > 0 from a dense encode of the site read by a hook here, sorted
    by (-value, doc, pos); the histogram over edges 2**(j/4) (j = -40..40) by explicit comparisons; fire counts."""
    block = lm.model.model.layers[LAYER]
    kept = {}
    hook = block.register_forward_hook(lambda m, a, o: kept.__setitem__("x", (o[0] if isinstance(o, tuple) else o)[0]))
    acts, ids = [], []
    try:
        for text in docs:
            i = lm.encode(text)
            with torch.no_grad():
                lm.model(torch.tensor([i]))
            acts.append(sae.encode(kept["x"]).float().numpy())
            ids.append(np.array(i))
    finally:
        hook.remove()
    edges = (2.0 ** (np.arange(-40, 41) / 4.0)).astype(np.float32)
    out = {"top": [], "hist": [], "fires": [], "acts": acts, "ids": ids, "n_tokens": sum(len(i) for i in ids)}
    for f in range(sae.d_sae):
        entries = sorted((-float(a[p, f]), d, p) for d, a in enumerate(acts) for p in range(len(a)) if a[p, f] > 0)
        top = []
        for neg, d, p in entries[:k]:
            where = range(p - window, p + window + 1)
            top.append({"value": -neg, "doc": d, "pos": p,
                        "ids": [int(ids[d][q]) if 0 <= q < len(ids[d]) else -1 for q in where],
                        "acts": [float(acts[d][q, f]) if 0 <= q < len(ids[d]) else 0.0 for q in where]})
        out["top"].append(top)
        v = np.concatenate([a[:, f] for a in acts])
        v = v[v > 0]
        counts = [int(((v > 0) & (v < edges[0])).sum())]
        counts += [int(((v >= lo) & (v < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])]
        counts.append(int((v >= edges[-1]).sum()))
        out["hist"].append(counts)
        out["fires"].append(len(v))
    return out


def assert_equal_to_brute_force(dash, want, features=None):
    features = list(range(D_SAE)) if features is None else features
    assert dash.feature_ids.tolist() == features
    assert dash.n_tokens == want["n_tokens"]
    for row, f in enumerate(features):
        top = want["top"][f]
        n = len(top)
        assert (dash.top_docs[row] >= 0).sum() == n
        np.testing.assert_array_equal(dash.top_values[row, :n], np.array([t["value"] for t in top], np.float32))
        assert dash.top_docs[row, :n].tolist() == [t["doc"] for t in top]
        assert dash.top_positions[row, :n].tolist() == [t["pos"] for t in top]
        assert dash.top_context_ids[row, :n].tolist() == [t["ids"] for t in top]
        np.testing.assert_array_equal(dash.top_context_values[row, :n], np.array([t["acts"] for t in top],
                                                                                 np.float32).reshape(n, dash.top_context_values.shape[-1]))
        assert dash.hist[row].tolist() == want["hist"][f]
        assert dash.fire_counts[row] == want["fires"][f]
        assert dash.density()[row] == want["fires"][f] / want["n_tokens"]


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_top_contexts_histogram_and_density_equal_a_brute_force_pass(lm, architecture, monkeypatch):
    sae = random_sae(lm.model.config.hidden_size, architecture=architecture)
    docs = texts()
    seen = []
    original = collector_module.DashboardCollector.add

    def add_and_check(self, *args, **kwargs):  # the memory bound, on the tables themselves, after every document
        original(self, *args, **kwargs)
        width = 2 * self.window + 1
        assert self.top_values.shape == (len(self.features), self.k) and self.top_context_ids.shape[-1] == width
        assert self.sample_values.shape == (len(self.features), self.n_samples)
        held = int((self.top_docs >= 0).sum() + (self.sample_docs >= 0).sum())
        assert held <= len(self.features) * (self.k + self.n_samples)
        seen.append(held)

    monkeypatch.setattr(collector_module.DashboardCollector, "add", add_and_check)
    dash = feature_dashboard(lm, sae, docs, site=SITE, k=K, window=WINDOW, n_samples=SAMPLES, progress=False)
    want = brute_force(lm, sae, docs)
    assert_equal_to_brute_force(dash, want)
    assert len(seen) == len(docs) and max(seen) == D_SAE * K + D_SAE * SAMPLES - _short(want, K, SAMPLES)
    # the samples: firing tokens of the feature with their own values and windows, min(S, fires) of them, strongest
    # first, the same for the same seed and another set for another seed
    for row in range(D_SAE):
        n = min(SAMPLES, want["fires"][row])
        assert (dash.sample_docs[row] >= 0).sum() == n
        for j in range(n):
            d, p = int(dash.sample_docs[row, j]), int(dash.sample_positions[row, j])
            assert dash.sample_values[row, j] == want["acts"][d][p, row] > 0
        assert np.all(np.diff(dash.sample_values[row, :n]) <= 0)
    again = feature_dashboard(lm, sae, docs, site=SITE, k=K, window=WINDOW, n_samples=SAMPLES, progress=False)
    np.testing.assert_array_equal(again.sample_docs, dash.sample_docs)
    other = feature_dashboard(lm, sae, docs, site=SITE, k=K, window=WINDOW, n_samples=SAMPLES, seed=1,
                              progress=False)
    assert not np.array_equal(other.sample_positions, dash.sample_positions)
    assert dash.labels[3] == "third" and dash.labels[0] == ""


def _short(want, k, samples) -> int:
    """Slots left empty at the end: features firing on fewer tokens than k (or the sample size)."""
    return sum(max(0, k - min(k, f)) + max(0, samples - min(samples, f)) for f in want["fires"])


def test_chosen_features_and_a_window_wider_than_the_texts(lm):
    sae = random_sae(lm.model.config.hidden_size, seed=2)
    docs = texts(5, seed=3)
    chosen = [1, 5, 20]
    dash = feature_dashboard(lm, sae, docs, features=[20, 1, 5], site=SITE, k=3, window=20, progress=False)
    assert_equal_to_brute_force(dash, brute_force(lm, sae, docs, k=3, window=20), features=chosen)
    card = dash.payload(5)
    assert card["feature"] == 5 and len(card["top"]) == min(3, card["fire_count"]) and len(card["hist"]) == 82


def test_shards_merged_equal_one_pass_bitwise(lm):
    """Two collectors over the even and odd documents, merged either way round, hold exactly one pass's tables."""
    sae = random_sae(lm.model.config.hidden_size, seed=4)
    docs = texts(11, seed=5)
    item = dashboard_run.check_dictionary(lm.spec, sae, SITE)
    ids = [lm.encode(t) for t in docs]

    def run(which):
        c = collector_module.DashboardCollector(D_SAE, k=K, window=WINDOW, n_samples=SAMPLES)
        return dashboard_run.collect(lm.spec, item, ((i, ids[i]) for i in which), c, progress=False)

    one = run(range(len(ids)))
    for first, second in ((0, 1), (1, 0)):
        parts = [run(range(0, len(ids), 2)), run(range(1, len(ids), 2))]
        merged = collector_module.DashboardCollector(D_SAE, k=K, window=WINDOW, n_samples=SAMPLES)
        merged.merge(parts[first].state())
        merged.merge(parts[second].state())
        for key, value in one.state().items():
            if key == "peak_entries":
                continue
            got = merged.state()[key]
            if isinstance(value, np.ndarray):
                assert got.dtype == value.dtype
                np.testing.assert_array_equal(got, value, err_msg=key)
            else:
                assert got == value, key


def test_tables_too_large_for_the_memory_are_refused_before_they_are_built():
    with pytest.raises(ew.InputError, match="The dashboard's tables of 1000000 features .* needs about"):
        collector_module.DashboardCollector(d_sae=10**6, k=10**5, window=8)


def test_ties_are_broken_by_document_then_position():
    c = collector_module.DashboardCollector(d_sae=2, k=3, window=0, n_samples=0)
    same = np.array([[0], [0]]), np.array([[1.0], [1.0]], np.float32)
    c.add(5, np.array([1, 2]), *same)
    c.add(2, np.array([3, 4]), *same)
    assert c.top_docs[0].tolist() == [2, 2, 5] and c.top_positions[0].tolist() == [0, 1, 0]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_promoted_tokens_equal_the_decoder_row_through_the_final_norm_and_unembedding(family):
    model = zoo.build(family)
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    d = lm.spec.embedding.weight.shape[1]
    sae = random_sae(d, seed=6)
    dash = feature_dashboard(lm, sae, texts(2), site=SITE, k=2, n_promoted=5, progress=False)
    if family == "llama":
        norm, unembed = model.model.norm, model.lm_head.weight
        direction = sae.W_dec * norm.weight  # RMSNorm at unit scale: times its weight
    else:
        norm, unembed = model.transformer.ln_f, model.lm_head.weight
        direction = (sae.W_dec - sae.W_dec.mean(-1, keepdim=True)) * norm.weight  # LayerNorm: centred, times weight
    logits = (direction @ unembed.T).detach()
    top, bottom = torch.topk(logits, 5), torch.topk(-logits, 5)
    assert dash.promoted_ids.tolist() == top.indices.tolist()
    np.testing.assert_allclose(dash.promoted_values, top.values.numpy(), rtol=1e-5, atol=1e-5)
    assert dash.suppressed_ids.tolist() == bottom.indices.tolist()
    np.testing.assert_allclose(dash.suppressed_values, -bottom.values.numpy(), rtol=1e-5, atol=1e-5)
    assert "unit scale" in dash.promoted_note
    card = dash.payload(0)
    assert [t for t, _ in card["promoted"]] == [WORDS[i] for i in top.indices[0].tolist()]


def test_bad_input_is_refused_before_any_forward(lm, monkeypatch):
    def no_forward(*args, **kwargs):
        raise AssertionError("a forward ran before the input was checked")

    monkeypatch.setattr(dashboard_run, "capture", no_forward)
    d = lm.model.config.hidden_size
    sae = random_sae(d)
    with pytest.raises(ew.InputError, match="reads 48 values per token"):
        feature_dashboard(lm, random_sae(48), texts(2), site=SITE)
    with pytest.raises(ew.InputError, match="No texts"):
        feature_dashboard(lm, sae, [], site=SITE)
    with pytest.raises(ew.InputError, match="Text 1 is empty"):
        feature_dashboard(lm, sae, ["w1 w2", "  ", "w3"], site=SITE)
    with pytest.raises(ew.InputError, match="one string"):
        feature_dashboard(lm, sae, "w1 w2 w3", site=SITE)
    with pytest.raises(ew.InputError, match="k must be a whole number >= 1"):
        feature_dashboard(lm, sae, texts(2), site=SITE, k=0)
    with pytest.raises(ew.InputError, match=r"features must lie in 0\.\.23"):
        feature_dashboard(lm, sae, texts(2), site=SITE, features=[3, 24])
    with pytest.raises(ew.InputError, match="must be an ew.SAE"):
        feature_dashboard(lm, "sae", texts(2), site=SITE)
    with pytest.raises(ew.InputError, match="holds no batch run"):
        feature_dashboard(lm, sae, str(zoo.__file__).rsplit("/", 1)[0], site=SITE)


def test_from_a_batch_folder_equals_from_the_texts_and_round_trips(lm, tmp_path):
    sae = random_sae(lm.model.config.hidden_size, seed=8)
    docs = texts(6, seed=9)
    ew.batch(lm, docs, tmp_path / "run", saes=[(sae, SITE)], progress=False)
    stored = feature_dashboard(lm, sae, tmp_path / "run", site=SITE, k=K, window=WINDOW, progress=False)
    direct = feature_dashboard(lm, sae, docs, site=SITE, k=K, window=WINDOW, progress=False)
    assert_equal_to_brute_force(stored, brute_force(lm, sae, docs))
    for name in ("top_values", "top_docs", "top_context_ids", "top_context_values", "sample_docs", "hist",
                 "fire_counts", "vocab_ids"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(direct, name), err_msg=name)
    back = ew.FeatureDashboard.load(stored.save(tmp_path / "dash.npz"))
    for name in ("top_values", "top_context_ids", "sample_context_values", "hist", "promoted_ids", "feature_ids"):
        a, b = getattr(back, name), getattr(stored, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert back.vocab_strings == stored.vocab_strings and back.labels == stored.labels
    assert back.payload(3)["label"] == "third"
    with pytest.raises(ew.InputError, match="stores no features of this dictionary"):
        feature_dashboard(lm, random_sae(lm.model.config.hidden_size).__class__(
            W_enc=torch.zeros(lm.model.config.hidden_size, 5), W_dec=torch.zeros(5, lm.model.config.hidden_size),
            b_enc=torch.zeros(5), b_dec=torch.zeros(lm.model.config.hidden_size)), tmp_path / "run", site=SITE)


def test_the_view_carries_the_dashboards_arrays(lm):
    sae = random_sae(lm.model.config.hidden_size, seed=10)
    dash = feature_dashboard(lm, sae, texts(4, seed=11), site=SITE, k=3, window=1, n_samples=4, progress=False)
    view = dash.view(theme="dark")
    assert isinstance(view, ew.FeatureDashboardView) and view.theme == "dark"
    assert view.feature_ids.tolist() == list(range(D_SAE)) and view.labels[3] == "third"
    # every token index of the view names the token id of the dashboard, through the strings table
    ids = np.asarray(dash.vocab_ids)
    for name, source in (("top_tokens", "top_context_ids"), ("sample_tokens", "sample_context_ids"),
                         ("promoted_tokens", "promoted_ids"), ("suppressed_tokens", "suppressed_ids")):
        got, want = getattr(view, name), getattr(dash, source)
        assert np.array_equal(np.where(got >= 0, ids[np.maximum(got, 0)], -1), want), name
    filled = dash.top_docs >= 0
    np.testing.assert_array_equal(view.top_values[filled], dash.top_values[filled])
    assert (view.top_values[~filled] == 0).all() and view.hist.tolist() == dash.hist.tolist()
    assert view.strings == dash.vocab_strings == [WORDS[i] for i in ids]
