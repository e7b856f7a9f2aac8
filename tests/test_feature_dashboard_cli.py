"""``ecco-widgets batch --sae``: one process and ``torchrun --nproc_per_node 2`` write bitwise-identical feature
dashboards (the shards' tables merged exactly), equal to ew.feature_dashboard over the same texts in this process;
bad options are a message, not a traceback.

The model and prompts are tests/test_batch.py's (a random 3-layer Llama with a BPE tokenizer trained on pydoc
topics, saved to a folder); the dictionary is a random SAELens folder written here.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import ecco_widgets as ew
from test_batch import PROMPTS, cli, model_dir, prompts_file  # noqa: F401 (fixtures)

SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory, model_dir):  # noqa: F811
    d_in = json.loads((model_dir / "config.json").read_text())["hidden_size"]
    g = torch.Generator().manual_seed(3)
    weights = {"W_enc": torch.randn(d_in, 40, generator=g) * 0.3, "W_dec": torch.randn(40, d_in, generator=g),
               "b_enc": torch.randn(40, generator=g) * 0.2 - 0.1, "b_dec": torch.randn(d_in, generator=g) * 0.1}
    folder = tmp_path_factory.mktemp("sae")
    save_file(weights, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({
        "architecture": "standard", "d_in": d_in, "d_sae": 40, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"model_name": "tiny-llama", "hook_name": SITE}}))
    return folder


def test_one_process_and_torchrun_two_write_identical_dashboards(model_dir, prompts_file, sae_dir, tmp_path,  # noqa: F811
                                                                  monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as torchrun sets it for its workers: the same float rounding
    args = ("--model", str(model_dir), "--input", str(prompts_file), "--sae", str(sae_dir), "--dashboard-k", "4",
            "--dashboard-window", "3")
    one = cli(*args, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert "Wrote the feature dashboard" in one.stdout
    two = cli(*args, "--out", str(tmp_path / "two"), nproc=2)
    assert two.returncode == 0, two.stderr
    assert sorted(set(ew.load_batch(tmp_path / "two").frame()["rank"])) == [0, 1], "both processes wrote rows"
    a = ew.FeatureDashboard.load(tmp_path / "one" / "feature_dashboard.npz")
    b = ew.FeatureDashboard.load(tmp_path / "two" / "feature_dashboard.npz")
    assert a.n_docs == b.n_docs == len(PROMPTS) and a.n_tokens == b.n_tokens > 0
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert x.tobytes() == y.tobytes(), f"{f.name} differs between one and two processes"
        elif f.name != "source":  # the folder's path
            assert x == y, f.name
    assert (a.top_docs >= 0).sum() > 0 and a.fire_counts.sum() > 0, "a dashboard with contexts in it"
    # the same as the in-process pass over the texts (another process: values to float rounding)
    lm = ew.from_pretrained(str(model_dir))
    here = ew.feature_dashboard(lm, ew.SAE.load(sae_dir), PROMPTS, k=4, window=3, progress=False)
    for name in ("top_docs", "top_positions", "top_context_ids", "fire_counts", "feature_ids", "vocab_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(here, name), err_msg=name)
    np.testing.assert_allclose(a.top_values, here.top_values, rtol=1e-5)
    assert a.vocab_strings == here.vocab_strings


def test_bad_dashboard_options_are_a_message(model_dir, prompts_file, sae_dir, tmp_path, capsys):  # noqa: F811
    """(in this process, through the command's main: the options are refused before any model loads)"""
    from ecco_widgets.cli import main

    base = ["batch", "--model", str(model_dir), "--input", str(prompts_file), "--out", str(tmp_path / "r")]
    assert main([*base, "--sae-site", SITE]) == 2
    assert "give the dictionary with --sae" in capsys.readouterr().err
    assert main([*base, "--sae", str(sae_dir), "--dashboard-k", "0"]) == 2
    assert "--dashboard-k must be >= 1" in capsys.readouterr().err
    assert main([*base, "--sae", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
