"""The FeatureExplorer's payload and feature labels (issues 26 and 27).

The payload of a real ``lm.analyze_ids(saes=[...])`` on a random tiny Llama is checked against ``out.features``
entry by entry, and against the dictionary's own ``encode`` of the residual stream read here from HF's
``hidden_states`` (RMSNorm model: TL's hook_resid_post of block L is hidden_states[L + 1], no centring). Labels are
read from files written here in Neuronpedia's export shapes, saved beside an SAELens folder and read back by
``SAE.load``.
"""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import sae_folders
import zoo
from ecco_widgets.analysis.features import SAE
from ecco_widgets.analysis.features.labels import Labels
from ecco_widgets.errors import InputError, SiteWarning
from ecco_widgets.views import FeatureExplorer
from ecco_widgets.views.base import ViewValueError
from test_foundation import WORDS, ToyTokenizer

IDS = [3, 17, 5, 99, 42, 7, 250, 12, 64, 8]
LAYER = 1
SITE = f"blocks.{LAYER}.hook_resid_post"


@pytest.fixture(scope="module")
def run():
    """A random Llama, a top-k and a ReLU dictionary on its block-1 residual, and the analysed output."""
    lm = ew.from_pretrained(zoo.build("llama"), tokenizer=ToyTokenizer(WORDS))
    g = torch.Generator().manual_seed(0)
    d = 64
    topk = SAE(W_enc=torch.randn(d, 96, generator=g), W_dec=torch.randn(96, d, generator=g) / 10,
               b_enc=torch.randn(96, generator=g) * 0.1, b_dec=torch.zeros(d), architecture="topk", k=5)
    relu = SAE(W_enc=torch.randn(d, 80, generator=g), W_dec=torch.randn(80, d, generator=g) / 10,
               b_enc=torch.randn(80, generator=g) - 1.0, b_dec=torch.zeros(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)  # random dictionaries fit no site
        out = lm.analyze_ids(IDS, saes={"topk": (topk, SITE), "relu": (relu, SITE)})
    with torch.no_grad():
        resid = lm.model(torch.tensor([IDS]), output_hidden_states=True).hidden_states[LAYER + 1][0]
    return {"lm": lm, "out": out, "saes": {"topk": topk, "relu": relu}, "resid": resid}


def rows(view: FeatureExplorer, prefix: str = "feature") -> list[list[tuple[int, float]]]:
    off = getattr(view, f"{prefix}_offsets")
    idx, val = getattr(view, f"{prefix}_indices"), getattr(view, f"{prefix}_values")
    return [[(int(i), float(v)) for i, v in zip(idx[off[t]:off[t + 1]], val[off[t]:off[t + 1]])]
            for t in range(len(off) - 1)]


@pytest.mark.parametrize("name", ["topk", "relu"])
def test_payload_equals_the_features_and_the_dictionarys_own_encode(run, name):
    out, sae = run["out"], run["saes"][name]
    feats = out.features[name]
    first = feats.active(0)[0][0]  # a latent present in the text
    absent = next(i for i in range(sae.d_sae) if all(i != j for p in range(len(IDS)) for j, _ in feats.active(p)))
    sae.labels.clear()
    sae.labels[first], sae.labels[absent] = "first", "absent"
    view = out.explore_features(name, sae=sae)
    got = rows(view)
    # entry by entry what out.features holds, in its order (largest first)
    assert got == [feats.active(p) for p in range(len(IDS))]
    # and what the dictionary's encode gives on the residual read here (independent of the recorder)
    acts = sae.encode(run["resid"]).numpy()
    for p in range(len(IDS)):
        nz = np.nonzero(acts[p])[0]
        want = sorted(((int(i), float(acts[p, i])) for i in nz), key=lambda iv: -iv[1])
        assert [i for i, _ in got[p]] == [i for i, _ in want]
        np.testing.assert_allclose([v for _, v in got[p]], [v for _, v in want], rtol=1e-6)
    # sparse on the wire: 1-D arrays of the active entries only, never (n_tokens, d_sae)
    nnz = int((acts != 0).sum())
    assert view.feature_indices.shape == view.feature_values.shape == (nnz,) and nnz < acts.size / 4
    assert view.feature_offsets.shape == (len(IDS) + 1,) and view.d_sae == sae.d_sae
    state = view.export_state()
    assert {k: state[k]["shape"] for k in ("feature_offsets", "feature_indices", "feature_values")} == \
        {"feature_offsets": [len(IDS) + 1], "feature_indices": [nnz], "feature_values": [nnz]}
    # labels: only those of latents present
    assert view.feature_labels == [{"index": first, "description": "first"}]
    assert view.tokens == out.tokens and view.dictionary == name and view.n_input_tokens == out.n_input_tokens
    # without sae=, the labels of the SAE the output was analysed with (the same object, labelled since)
    assert out.explore_features(name).feature_labels == view.feature_labels


def test_feature_attribution_result_shows_one_targets_values(run):
    out, sae = run["out"], run["saes"]["topk"]
    fa = out.feature_attribution((sae, SITE), positions=[len(IDS) - 2, len(IDS) - 1])
    view = out.explore_features("topk", attribution=fa, attribution_index=1)
    want = []
    for p in range(len(IDS)):  # the attribution's own entries of target 1, by |value|, written out here
        keep = fa.indices[p] >= 0
        pairs = [(int(i), float(v)) for i, v in zip(fa.indices[p][keep], fa.attributions[1, p][keep])]
        want.append(sorted(pairs, key=lambda iv: -abs(iv[1])))
    assert rows(view, "attribution") == want
    assert view.attribution_target == f"logit of {fa.targets[1]!r} at token {len(IDS) - 1}"


def test_attribution_plain_forms_agree():
    toks = ["a", "b", "c"]
    idx, val = [[4, 1], [2, -1], [-1, -1]], [[1.0, 2.0], [0.5, 0.0], [0.0, 0.0]]
    by_dict = FeatureExplorer(toks, idx, val, attribution={0: ([4, 1], [0.25, -0.5]), 1: {2: 0.125}})
    by_pair = FeatureExplorer(toks, idx, val, attribution=([[4, 1], [2, -1], [-1, -1]],
                                                           [[0.25, -0.5], [0.125, 0.0], [0.0, 0.0]]))
    assert rows(by_dict, "attribution") == rows(by_pair, "attribution") == [[(1, -0.5), (4, 0.25)], [(2, 0.125)], []]
    assert rows(by_dict) == [[(1, 2.0), (4, 1.0)], [(2, 0.5)], []]
    assert by_dict.d_sae == 5


def test_bad_input_is_refused_with_what_to_do(run):
    out = run["out"]
    with pytest.raises(InputError, match="name one"):
        out.explore_features()
    with pytest.raises(InputError, match="No features named 'x'.*topk"):
        out.explore_features("x")
    with pytest.raises(InputError, match="d_sae=80.*96"):
        out.explore_features("topk", sae=run["saes"]["relu"])
    toks = ["a", "b"]
    with pytest.raises(ViewValueError, match="token 0 lists a latent twice"):
        FeatureExplorer(toks, [[1, 1], [2, -1]], [[1.0, 0.5], [1.0, 0.0]])
    with pytest.raises(ViewValueError, match=r"shape \(n_tokens=2, k\)"):
        FeatureExplorer(toks, [[1, 2, 3]], [[1.0, 0.5, 0.2]])
    with pytest.raises(ViewValueError, match="d_sae: 3 is below"):
        FeatureExplorer(toks, [[1, 5], [2, -1]], [[1.0, 0.5], [1.0, 0.0]], d_sae=3)
    with pytest.raises(ViewValueError, match="attribution position: 7 is out of range"):
        FeatureExplorer(toks, [[1, -1], [2, -1]], [[1.0, 0], [1.0, 0]], attribution={7: ([1], [0.5])})
    with pytest.raises(ViewValueError, match="NaN"):
        FeatureExplorer(toks, [[1, -1], [2, -1]], [[np.nan, 0], [1.0, 0]])
    with pytest.raises(ViewValueError, match="selected_feature"):
        FeatureExplorer(toks, [[1, -1], [2, -1]], [[1.0, 0], [1.0, 0]], d_sae=4, selected_feature=4)
    view = FeatureExplorer(toks, [[1, -1], [2, -1]], [[1.0, 0], [1.0, 0]], d_sae=4)
    with pytest.raises(ViewValueError, match="selected_token"):
        view.selected_token = 2
    plain = ew.Output(token_ids=np.array([1, 2]), tokens=toks, raw_tokens=toks, n_input_tokens=2,
                      ranks=np.ones((1, 1), np.int32))
    with pytest.raises(InputError, match="saes=\\[sae\\]"):
        plain.explore_features()


def test_saved_output_and_word_level_explore(run, tmp_path):
    out = run["out"]
    again = ew.load(out.save(tmp_path / "out"))
    assert rows(again.explore_features("relu")) == rows(out.explore_features("relu"))
    words = out.by_word()
    view = words.explore_features("topk")
    assert view.unit == "word" and rows(view) == [words.features["topk"].active(p) for p in range(len(words.tokens))]


# --------------------------------------------------------------------------- labels


NP_RECORDS = [  # Neuronpedia's export records: string indices, one per explanation model
    {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "12", "description": " dates and years",
     "explanationModelName": "gpt-4o-mini", "typeName": "oai_token-act-pair"},
    {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "12", "description": "numbers",
     "explanationModelName": "claude", "typeName": "oai_token-act-pair"},
    {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "3", "description": "closing brackets"},
    {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "4", "description": ""},
]


def test_labels_read_neuronpedia_json_jsonl_gz_and_explanations(tmp_path):
    want = {12: " dates and years", 3: "closing brackets"}  # the first description wins, empty ones are skipped
    (tmp_path / "a.json").write_text(json.dumps(NP_RECORDS))
    lines = "\n".join(json.dumps(r) for r in NP_RECORDS) + "\n\n"
    (tmp_path / "b.jsonl").write_text(lines)
    (tmp_path / "batch-0.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (tmp_path / "c.json").write_text(lines)  # JSONL under a .json name
    (tmp_path / "feature.json").write_text(json.dumps({"modelId": "gpt2-small", "explanations": NP_RECORDS[:2]}))
    (tmp_path / "plain.json").write_text(json.dumps({"3": "closing brackets", "12": " dates and years"}))
    for name in ("a.json", "b.jsonl", "batch-0.jsonl.gz", "c.json", "plain.json"):
        assert dict(Labels.read(tmp_path / name, d_sae=16)) == want, name
    assert dict(Labels.read(tmp_path / "feature.json")) == {12: " dates and years"}
    mixed = NP_RECORDS + [{"layer": "7-res-jb", "index": 3, "description": "other"}]
    (tmp_path / "mixed.json").write_text(json.dumps(mixed))
    with pytest.raises(InputError, match="2 dictionaries.*6-res-jb, 7-res-jb.*layer="):
        Labels.read(tmp_path / "mixed.json")
    assert dict(Labels.read(tmp_path / "mixed.json", layer="7-res-jb")) == {3: "other"}


@pytest.mark.parametrize("text, suffix, match", [
    ('[{"index": 1, "description": "a"},', ".json", r"not valid JSON at line 1, column 3\d"),
    ('{"index": 1, "description": "a"}\n{"index": 2, "descr": "b"}\n', ".jsonl", r"line 2: has no description"),
    ('{"index": 1, "description": "a"}\n\n{"index": 2,\n', ".jsonl", r"line 3: not valid JSON"),
    ('[{"index": 1, "description": "a"}, {"description": "b"}]', ".json", r"entry 1: has no index"),
    ('[{"index": 99, "description": "a"}]', ".json", r"entry 0: Label index 99 is not a latent.*0\.\.15"),
    ('[{"index": "x1", "description": "a"}]', ".json", r"entry 0: index 'x1' is not a whole number"),
    ('[{"index": 1, "description": 5}]', ".json", r"entry 0: description of index 1 is int"),
    ('[3]', ".json", r"entry 0: expected an object"),
    ('"labels"', ".json", r"expected a JSON list"),
])
def test_a_malformed_label_file_names_the_line_or_entry(tmp_path, text, suffix, match):
    path = tmp_path / f"labels{suffix}"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        Labels.read(path, d_sae=16)


def test_labels_by_hand_saved_beside_the_sae_and_read_back_by_load(tmp_path):
    case = ("saelens", "topk", "none", "")
    folder = sae_folders.write(case, tmp_path / "sae")["folder"]
    sae = SAE.load(folder)
    assert len(sae.labels) == 0
    sae.labels[3] = "dates <b>"
    sae.labels[np.int64(7)] = "ünïcode → arrows"
    (tmp_path / "np.jsonl").write_text("\n".join(json.dumps(r) for r in NP_RECORDS))
    sae.labels.load(tmp_path / "np.jsonl")  # adds 12 and replaces 3 with the export's
    with pytest.raises(InputError, match="not a latent of this dictionary"):
        sae.labels[sae.d_sae] = "too far"
    with pytest.raises(InputError, match="must be a str"):
        sae.labels[1] = 5
    path = sae.save_labels()
    assert path == folder / "labels.json"
    assert json.loads(path.read_text(encoding="utf-8")) == [
        {"index": 3, "description": "closing brackets"}, {"index": 7, "description": "ünïcode → arrows"},
        {"index": 12, "description": " dates and years"}]
    back = SAE.load(folder)
    assert dict(back.labels) == dict(sae.labels) and back.labels.d_sae == sae.d_sae
    hand = SAE(W_enc=torch.eye(4), W_dec=torch.eye(4), b_enc=torch.zeros(4), b_dec=torch.zeros(4), labels={1: "x"})
    assert hand.labels[1] == "x"
    with pytest.raises(InputError, match="save_labels\\(folder\\)"):
        hand.save_labels()
    (folder / "labels.json").write_text('[{"index": 999, "description": "x"}]')
    with pytest.raises(InputError, match="labels.json, entry 0: Label index 999"):
        SAE.load(folder)


def dash_texts(n: int = 6, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(1, 40, size=rng.integers(4, 12))) for _ in range(n)]


def test_dashboard_cards_sent_are_the_payload_of_the_texts_features_only(run):
    """The explorer's card_* arrays, read back here row by row through its strings table, equal dash.payload(f) for
    every feature both in the text and in the dashboard; the dashboard's other features are not sent."""
    out, sae = run["out"], run["saes"]["topk"]
    present = sorted({i for p in range(len(IDS)) for i, _ in out.features["topk"].active(p)})
    absent = [i for i in range(sae.d_sae) if i not in present][:3]
    chosen = present[::2] + absent  # half the text's features, and 3 it does not have
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        # the analysed text itself among the dashboard's texts, so each of its features has contexts
        docs = dash_texts() + [run["lm"].tokenizer.decode(IDS)]
        dash = ew.feature_dashboard(run["lm"], sae, docs, features=chosen, site=SITE, k=3, window=2,
                                    n_samples=8, n_promoted=4, progress=False)
    dash.labels = [f"label {f}" for f in dash.feature_ids.tolist()]
    # a card without a label of its own takes the SAE's (the one the list shows)
    unlabelled = present[0]
    dash.labels[dash.row(unlabelled)] = ""
    sae.labels.clear()
    sae.labels[unlabelled] = "from the sae"
    view = out.explore_features("topk", sae=sae, dashboard=dash)
    assert view.card_labels[view.card_feature_ids.tolist().index(unlabelled)] == "from the sae"
    dash.labels[dash.row(unlabelled)] = f"label {unlabelled}"
    view = out.explore_features("topk", sae=sae, dashboard=dash)
    sent = view.card_feature_ids.tolist()
    assert view.has_dashboard and sorted(sent) == sorted(present[::2]) and not set(sent) & set(absent)
    strings, raws = view.card_strings, view.card_raw_strings
    vocab = dict(zip(dash.vocab_ids.tolist(), dash.vocab_strings))
    text = lambda i: strings[i] if i >= 0 else ""  # noqa: E731
    used = set()
    for r, f in enumerate(sent):
        p = dash.payload(f)
        assert view.card_labels[r] == p["label"] == f"label {f}"
        assert view.card_fire_counts[r] / view.card_n_tokens == pytest.approx(p["density"], rel=1e-12)
        assert int(view.card_fire_counts[r]) == p["fire_count"]
        top = [j for j in range(3) if view.card_top_docs[r, j] >= 0]
        assert len(top) == len(p["top"]) > 0
        for j, want in zip(top, p["top"]):
            assert float(view.card_top_values[r, j]) == want["value"]
            assert int(view.card_top_docs[r, j]) == want["doc"]
            assert int(view.card_top_positions[r, j]) == want["position"]
            assert [text(i) for i in view.card_top_tokens[r, j].tolist()] == want["tokens"]
            assert [vocab.get(t, "") for t in want["ids"]] == want["tokens"]
            assert view.card_top_acts[r, j].tolist() == want["activations"]
            used |= {i for i in view.card_top_tokens[r, j].tolist() if i >= 0}
        kept = [j for j in range(view.card_sample_values.shape[1]) if view.card_sample_docs[r, j] >= 0]
        flat = [c for band in p["bands"] for c in band]
        assert [float(view.card_sample_values[r, j]) for j in kept] == [c["value"] for c in flat]
        assert [[text(i) for i in view.card_sample_tokens[r, j].tolist()] for j in kept] == [c["tokens"] for c in flat]
        assert [view.card_sample_acts[r, j].tolist() for j in kept] == [c["activations"] for c in flat]
        assert view.card_hist[r].tolist() == p["hist"] and view.card_hist_edges.tolist() == p["hist_edges"]
        for name in ("promoted", "suppressed"):
            got = [(text(int(t)), float(v)) for t, v in zip(getattr(view, f"card_{name}_tokens")[r],
                                                            getattr(view, f"card_{name}_values")[r])]
            assert got == p[name] and len(got) == 4
    # the strings table holds the texts those cards use only (bounded by the cards, not the dataset's vocabulary)
    assert len(strings) == len(raws) <= len(dash.vocab_strings) and used <= set(range(len(strings)))
    # binary buffers of the sent features only
    state = view.export_state()
    assert state["card_top_tokens"]["shape"] == [len(sent), 3, 5] and "base64" in state["card_top_tokens"]
    assert state["card_hist"]["shape"] == [len(sent), len(dash.hist_edges) + 1]
    # without a dashboard: nothing sent
    plain = out.explore_features("topk", sae=sae)
    assert not plain.has_dashboard and plain.card_feature_ids.size == 0


def test_dashboard_of_another_dictionary_is_refused(run):
    out, sae = run["out"], run["saes"]["topk"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        other = ew.feature_dashboard(run["lm"], run["saes"]["relu"], dash_texts(2), features=[0, 1], site=SITE, k=1,
                                     window=0, progress=False)
    with pytest.raises(ViewValueError, match="dictionary of 80 latents, these features of 96"):
        out.explore_features("topk", sae=sae, dashboard=other)
    with pytest.raises(ViewValueError, match="expected a FeatureDashboard"):
        out.explore_features("topk", sae=sae, dashboard={"top": []})
