"""Reading sparse dictionaries in their producers' layouts (SAELens 6.x and pre-6.0, sparsify, Gemma Scope 1 and 2):
random folders written here (tests/sae_folders.py), loaded with SAE.load, and encode / decode compared with the
producers' math written in sae_folders.py from their source. benchmarks/check_sae_formats.py runs the producers'
own packages on the same folders."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ecco_widgets.analysis.features import SAE, fvu
from ecco_widgets.errors import InputError, ModelLoadError
from sae_folders import CASES, D_IN, D_OUT, D_SAE, case_id, inputs, reference, write


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_encode_and_decode_equal_the_producers_math(case, tmp_path):
    written = write(case, tmp_path / "sae")
    sae = SAE.load(written["folder"], **written["load"])
    x = inputs()
    acts_ref, out_ref = reference(case, written, x)
    acts = sae.encode(x)
    out = sae.decode(acts, x_in=x)
    bf16 = sae.dtype == torch.bfloat16
    tol = {"atol": 1e-2, "rtol": 1e-2} if bf16 else {"atol": 1e-5, "rtol": 1e-5}
    assert acts.shape == (x.shape[0], D_SAE) and acts.dtype == acts_ref.dtype
    torch.testing.assert_close(acts, acts_ref, **tol)
    torch.testing.assert_close(out, out_ref, **tol)
    assert (acts != 0).any() and (acts == 0).any()  # the rule picked some latents and dropped others
    torch.testing.assert_close(sae(x), out)
    fmt, architecture, norm, variant = case
    transcoder = "transcoder" in architecture or "transcode" in variant
    assert sae.transcoder == transcoder and sae.format == fmt
    assert sae.d_in == D_IN and sae.d_sae == D_SAE
    assert sae.d_out == (D_OUT if transcoder and fmt != "sparsify" else D_IN)


def test_saelens_site_and_pre6_renames(tmp_path):
    new = SAE.load(write(("saelens", "transcoder", "none", ""), tmp_path / "a")["folder"])
    assert new.site["hook_name"] == "blocks.3.hook_resid_pre" and new.site["hook_name_out"] == "blocks.3.hook_mlp_out"
    old = SAE.load(write(("saelens", "topk", "none", "pre6"), tmp_path / "b")["folder"])
    assert old.architecture == "topk" and old.k == 6 and old.site["hook_name"] == "blocks.3.hook_resid_pre"
    assert old.site["model_name"] == "gpt2" and old.config["normalize_activations"] == "none"


def test_folded_scale_factor_reads_raw_activations(tmp_path):
    """expected_average_only_in: the SAE on x with the factor folded in = the unfolded SAE on x * s, decoded / s."""
    written = write(("saelens", "standard", "expected_average_only_in", ""), tmp_path / "s")
    folded = SAE.load(written["folder"], scale_factor=2.0)
    cfg = json.loads((written["folder"] / "cfg.json").read_text())
    (written["folder"] / "cfg.json").write_text(json.dumps({**cfg, "normalize_activations": "none"}))
    plain = SAE.load(written["folder"])
    x = inputs()
    torch.testing.assert_close(folded.encode(x), plain.encode(2.0 * x))
    torch.testing.assert_close(folded(x), plain(2.0 * x) / 2.0)
    assert folded.scale_factor == 2.0 and folded.normalization == "none"


def test_sparsify_repository_of_hookpoints(tmp_path):
    repo = tmp_path / "repo"
    for layer in (10, 2, 0):
        written = write(("sparsify", "topk", "none", ""), tmp_path / f"w{layer}", seed=layer)
        (written["folder"]).rename(repo / f"layers.{layer}.mlp") if repo.exists() else (
            repo.mkdir(), written["folder"].rename(repo / f"layers.{layer}.mlp"))
    many = SAE.load_many(repo)
    assert list(many) == ["layers.0.mlp", "layers.2.mlp", "layers.10.mlp"]
    assert many["layers.10.mlp"].site == {"hookpoint": "layers.10.mlp", "layer": 10}
    one = SAE.load(repo, hookpoint="layers.2.mlp")
    torch.testing.assert_close(one.W_dec, many["layers.2.mlp"].W_dec)
    with pytest.raises(InputError, match="hookpoint=.*load_many"):
        SAE.load(repo)
    with pytest.raises(InputError, match="no hookpoint folder 'layers.5.mlp'"):
        SAE.load(repo, hookpoint="layers.5.mlp")


def test_dtype_and_device_arguments(tmp_path):
    written = write(("saelens", "jumprelu", "none", ""), tmp_path / "j")
    sae = SAE.load(written["folder"], dtype="bfloat16", device="cpu")
    assert sae.dtype == torch.bfloat16 and sae.encode(inputs()).dtype == torch.bfloat16
    assert SAE.load(written["folder"], dtype=torch.float64).encode(inputs()).dtype == torch.float64


def test_fvu():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(20, 5, generator=g)
    noisy = target + 0.1 * torch.randn(20, 5, generator=g)
    expected = ((target - noisy) ** 2).sum() / ((target - target.mean(0)) ** 2).sum()
    assert fvu(target, noisy) == pytest.approx(float(expected), rel=1e-6)
    assert fvu(target, target) == 0.0
    sae = SAE(W_enc=torch.eye(5), W_dec=torch.eye(5), b_enc=torch.zeros(5), b_dec=torch.zeros(5))
    x = torch.rand(20, 5, generator=g)  # positive: relu keeps everything, the reconstruction is exact
    assert sae.fvu(x) == pytest.approx(0.0, abs=1e-12)


# ----- errors -----
def test_missing_files_and_unknown_layouts(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        SAE.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no dictionary"):
        SAE.load(tmp_path / "empty")
    (tmp_path / "cfgonly").mkdir()
    (tmp_path / "cfgonly" / "cfg.json").write_text("{}")
    with pytest.raises(InputError, match="neither sae_weights.safetensors"):
        SAE.load(tmp_path / "cfgonly")
    written = write(("saelens", "standard", "none", ""), tmp_path / "s")
    with pytest.raises(InputError, match="is a file"):
        SAE.load(written["folder"] / "cfg.json")


def test_a_hub_id_that_cannot_be_downloaded_is_a_load_error(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="could not be downloaded"):
        SAE.load("someone/some-saes/layer_3")


def test_a_hub_id_goes_through_snapshot_download(monkeypatch, tmp_path):
    """The hub path is the real code; only snapshot_download is replaced (it fetches nothing here)."""
    import huggingface_hub

    written = write(("sparsify", "topk", "none", ""), tmp_path / "snapshot")
    calls = []

    def snapshot(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, allow_patterns))
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    monkeypatch.chdir(tmp_path)
    sae = SAE.load("EleutherAI/some-saes", hookpoint="layers.2.mlp")
    assert calls == [("EleutherAI/some-saes", ["layers.2.mlp/*"])] and sae.path == written["folder"]
    sae = SAE.load("EleutherAI/some-saes/layers.2.mlp")
    assert calls[-1] == ("EleutherAI/some-saes", ["layers.2.mlp/*"]) and sae.site["layer"] == 2


def test_unknown_architecture_and_normalisation(tmp_path):
    written = write(("saelens", "standard", "none", ""), tmp_path / "s")
    cfg_path = written["folder"] / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "architecture": "matching_pursuit"}))
    with pytest.raises(InputError, match="'matching_pursuit' is not read yet"):
        SAE.load(written["folder"])
    cfg_path.write_text(json.dumps({**cfg, "normalize_activations": "covariance_whitening"}))
    with pytest.raises(InputError, match="covariance_whitening"):
        SAE.load(written["folder"])
    sp = write(("sparsify", "topk", "none", ""), tmp_path / "p")
    cfg = json.loads((sp["folder"] / "cfg.json").read_text())
    (sp["folder"] / "cfg.json").write_text(json.dumps({**cfg, "activation": "relu"}))
    with pytest.raises(InputError, match="activation 'relu'"):
        SAE.load(sp["folder"])


def test_config_and_tensor_shapes_must_agree(tmp_path):
    written = write(("saelens", "standard", "none", ""), tmp_path / "s")
    cfg_path = written["folder"] / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "d_sae": D_SAE + 1}))
    with pytest.raises(InputError, match="d_sae=49 in the config but 48 in the weights"):
        SAE.load(written["folder"])
    raw = dict(written["raw"])
    raw["b_enc"] = torch.zeros(D_SAE - 1)
    save_file(raw, str(written["folder"] / "sae_weights.safetensors"))
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="b_enc is \\(47,\\), expected \\(48,\\)"):
        SAE.load(written["folder"])
    del raw["b_enc"]
    save_file(raw, str(written["folder"] / "sae_weights.safetensors"))
    with pytest.raises(InputError, match="needs b_enc"):
        SAE.load(written["folder"])
    sp = write(("sparsify", "topk", "none", ""), tmp_path / "p")
    cfg = json.loads((sp["folder"] / "cfg.json").read_text())
    (sp["folder"] / "cfg.json").write_text(json.dumps({**cfg, "d_in": D_IN + 2}))
    with pytest.raises(InputError, match="encoder.weight"):
        SAE.load(sp["folder"])


def test_expected_average_only_in_needs_its_scale_factor(tmp_path):
    written = write(("saelens", "standard", "expected_average_only_in", ""), tmp_path / "s")
    with pytest.raises(InputError, match="scale_factor=..."):
        SAE.load(written["folder"])
    with pytest.raises(InputError, match="positive finite"):
        SAE.load(written["folder"], scale_factor=-1.0)


def test_pickles_are_read_as_tensors_only(tmp_path):
    folder = tmp_path / "pickled"
    written = write(("saelens", "standard", "none", ""), folder)
    state = {k: v.clone() for k, v in written["raw"].items()}
    (folder / "sae_weights.safetensors").unlink()
    torch.save(state, folder / "sae_weights.pt")  # a plain state dict: read with weights_only=True
    torch.testing.assert_close(SAE.load(folder).W_enc, state["W_enc"])

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "sae_weights.pt", "wb") as f:
        pickle.dump({"W_enc": Payload()}, f, protocol=2)
    with pytest.raises(InputError, match="Refused to read .*pickled objects or code"):
        SAE.load(folder)


def test_npz_with_objects_is_refused(tmp_path):
    folder = tmp_path / "gs"
    folder.mkdir()
    np.savez(folder / "params.npz", W_enc=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="without pickled objects"):
        SAE.load(folder)


def test_decode_needs_x_in_where_the_output_reads_it(tmp_path):
    skip = SAE.load(write(("saelens", "skip_transcoder", "none", ""), tmp_path / "a")["folder"])
    acts = skip.encode(inputs())
    with pytest.raises(InputError, match="skip connection"):
        skip.decode(acts)
    normed = SAE.load(write(("saelens", "standard", "layer_norm", ""), tmp_path / "b")["folder"])
    with pytest.raises(InputError, match="layer_norm normalisation is undone"):
        normed.decode(normed.encode(inputs()))
    with pytest.raises(InputError, match="must end in d_in=16"):
        normed.encode(torch.zeros(3, 5))
    with pytest.raises(InputError, match="fvu\\(x, target\\)"):
        skip.fvu(inputs())
