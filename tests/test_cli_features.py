"""``ecco-widgets render --sae``: the page gains a FeatureExplorer (after the explorer) whose arrays are the analysed
text's features, and bad --sae options are refused before any model loads.

The model is tests/test_batch.py's (a random 3-layer Llama with a BPE tokenizer, saved to a folder); the dictionary
is a random ReLU SAE saved here in SAELens' layout. The page's features are checked against ``out.features`` of the
same analysis run here, and against the dictionary's formula written here, relu((x - b_dec) W_enc + b_enc), on the
residual stream read from HF's ``hidden_states`` (RMSNorm model: hook_resid_post of block L is hidden_states[L + 1]).
"""

from __future__ import annotations

import base64
import json
import re
import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
from ecco_widgets import cli
from ecco_widgets.errors import SiteWarning
# Not conftest's tiny_llama_folder: its 2 layers make blocks.1.hook_resid_post the last block's output, which
# _by_hand cannot read from HF's hidden_states (their last entry is after the final norm); 3 layers keep it inside.
from test_batch import model_dir  # noqa: F401 (fixture)

PROMPT = "The keys to the cabinet are"
SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory, model_dir):  # noqa: F811
    d_in = json.loads((model_dir / "config.json").read_text())["hidden_size"]
    g = torch.Generator().manual_seed(5)
    sae = ew.SAE(W_enc=torch.randn(d_in, 40, generator=g) * 0.4, W_dec=torch.randn(40, d_in, generator=g),
                 b_enc=torch.randn(40, generator=g) * 0.2 - 0.3, b_dec=torch.randn(d_in, generator=g) * 0.1,
                 site={"hook_name": SITE})
    return sae.save(tmp_path_factory.mktemp("sae") / "sae")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)  # a random dictionary fits no site
        yield


def _views(page) -> list[dict]:
    html = page.read_text()
    return json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', html, re.S).group(1))


def _array(state: dict, name: str) -> np.ndarray:
    arr = state[name]
    return np.frombuffer(base64.b64decode(arr["base64"]), dtype=np.dtype(arr["dtype"]).newbyteorder("<")).reshape(
        arr["shape"])


def _rows(state: dict, prefix: str = "feature") -> list[dict[int, float]]:
    off, idx, val = (_array(state, f"{prefix}_{k}") for k in ("offsets", "indices", "values"))
    return [{int(i): float(v) for i, v in zip(idx[off[t]:off[t + 1]], val[off[t]:off[t + 1]])}
            for t in range(len(off) - 1)]


def _by_hand(lm, ids: list[int], sae: ew.SAE, layer: int) -> np.ndarray:
    """(tokens, d_sae): a ReLU SAE's activations written from its definition, on HF's hidden states."""
    with torch.no_grad():
        x = lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[layer + 1][0]
        return torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc).numpy()


@pytest.mark.parametrize("site", [None, "blocks.0.hook_resid_post"])
def test_the_page_holds_the_features_of_the_analysed_text(model_dir, sae_dir, tmp_path, site):  # noqa: F811
    page = tmp_path / "page.html"
    extra = ["--sae-site", site] if site else []
    assert cli.main(["render", "--model", str(model_dir), "--prompt", PROMPT, "--sae", str(sae_dir), *extra,
                     "--out", str(page)]) == 0
    views = _views(page)
    assert [v["bundle"] for v in views][:2] == ["explorer", "feature_explorer"]
    state = views[1]["state"]
    assert state["d_sae"] == 40 and state["attribution_target"] == ""
    assert _array(state, "attribution_indices").size == 0
    on_page = _rows(state)

    lm = ew.from_pretrained(str(model_dir))
    sae = ew.SAE.load(sae_dir)
    out = lm.analyze(PROMPT, saes=[(sae, site) if site else sae])
    (features,) = out.features.values()
    assert state["tokens"] == list(out.tokens) and len(on_page) == out.n_tokens
    expected = [{int(i): float(v) for i, v in zip(ix, vx) if i >= 0}
                for ix, vx in zip(features.indices, features.values)]
    assert on_page == expected  # the same arrays, entry by entry
    dense = _by_hand(lm, list(out.token_ids), sae, layer=0 if site else 1)
    assert sum(map(len, on_page)) > 0, "a page with active features in it"
    for t, row in enumerate(on_page):
        assert set(row) == set(np.flatnonzero(dense[t] > 0).tolist())
        np.testing.assert_allclose([row[i] for i in sorted(row)], dense[t][sorted(row)], rtol=1e-4, atol=1e-5)


def test_attribution_adds_the_first_generated_tokens_feature_attribution(model_dir, sae_dir, tmp_path):  # noqa: F811
    page = tmp_path / "page.html"
    assert cli.main(["render", "--model", str(model_dir), "--prompt", PROMPT, "--generate", "2", "--attribution",
                     "grad_x_input", "--sae", str(sae_dir), "--out", str(page)]) == 0
    views = _views(page)
    assert [v["bundle"] for v in views][:2] == ["explorer", "feature_explorer"]
    state = views[1]["state"]
    lm = ew.from_pretrained(str(model_dir))
    sae = ew.SAE.load(sae_dir)
    n_prompt = len(lm.encode(PROMPT))
    out = lm.generate(PROMPT, max_new_tokens=2, saes=[sae])
    assert state["tokens"] == list(out.tokens) and state["selected_token"] == n_prompt
    fa = out.feature_attribution(sae, positions=[n_prompt])
    expected = [{int(i): float(v) for i, v in zip(ix, vx) if i >= 0} for ix, vx in zip(fa.indices,
                                                                                       fa.attributions[0])]
    got = _rows(state, "attribution")
    assert len(got) == out.n_tokens and sum(map(len, got)) > 0
    for row, want in zip(got, expected):
        assert set(row) == set(want)
        np.testing.assert_allclose([row[i] for i in sorted(row)], [want[i] for i in sorted(row)], rtol=1e-4,
                                   atol=1e-6)
    assert f"token {n_prompt} " in state["title"]


def test_bad_sae_options_are_refused_before_any_model_loads(tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(ew, "from_pretrained", no_model)
    monkeypatch.setattr(ew, "demo_model", no_model)
    page = str(tmp_path / "x.html")
    assert cli.main(["render", "--prompt", "Hi", "--sae", str(tmp_path / "nowhere"), "--out", page]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert cli.main(["render", "--prompt", "Hi", "--sae-site", SITE, "--out", page]) == 2
    assert "give the dictionary with --sae" in capsys.readouterr().err
    assert cli.main(["render", "--prompt", "Hi", "--model", str(tmp_path), "--sae", "demo", "--out", page]) == 2
    err = capsys.readouterr().err
    assert "--sae demo is the bundled model's dictionary" in err and "--sae FOLDER|HUB_ID" in err
    assert cli.main(["render", "--prompt", "Hi", "--sae", str(tmp_path), "--out", page]) == 2  # a folder, no SAE
    assert "ecco-widgets:" in capsys.readouterr().err
