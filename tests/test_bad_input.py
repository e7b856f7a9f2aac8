"""Bad input gets a clear error that says what to do, before any heavy work, and nothing is silently changed."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from transformers import BertConfig, BertForMaskedLM

import ecco_widgets as ew
from ecco_widgets import cli
from zoo import build

IDS = [5, 17, 33, 8, 61, 25, 90, 12, 47, 3, 71, 29]


@pytest.fixture(scope="module")
def lm():
    return ew.from_pretrained(build("gpt2"))


def _no_forward(lm):
    calls = []
    handle = lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("options, message", [
    (dict(attribution=("ig",), targets=[-99]), r"Target positions \[-99\] cannot be explained"),
    (dict(attribution=("ig",), targets=[2.7]), r"must be integers .*\[2\.7\]"),
    (dict(activations=[True]), r"Layer True does not exist"),
    (dict(activation_dtype="int8"), r"activation_dtype must be one of float32, float16.*'int8'"),
    (dict(lens_topk=0), r"lens_topk must be an integer from 1"),
    (dict(lens_topk=10_000), r"lens_topk must be an integer from 1 to the vocabulary size \(320\)"),
    (dict(attribution=("lrp",)), r"Unknown attribution method 'lrp'"),
    (dict(attribution=("ig",), target="loss"), r"Unknown attribution target 'loss'"),
    (dict(attribution=("ig",), n_steps=0), r"n_steps must be a positive integer"),
    (dict(n_input_tokens=40), r"n_input_tokens=40 must lie in 0\.\.12"),
])
def test_option_errors_come_before_the_forward(lm, options, message):
    calls, handle = _no_forward(lm)
    try:
        with pytest.raises(ew.InputError, match=message):
            lm.analyze_ids(IDS, **options)
    finally:
        handle.remove()
    assert not calls


def test_token_ids_are_checked_against_the_vocabulary_and_the_window(lm):
    calls, handle = _no_forward(lm)
    try:
        with pytest.raises(ew.InputError, match=r"token ids \[320, -1\] outside the vocabulary \(0\.\.319\)"):
            lm.analyze_ids([1, 2, 320, -1])
        with pytest.raises(ew.InputError, match=r"200 tokens, past the model's context window of 128"):
            lm.analyze_ids([1] * 200)
        with pytest.raises(ew.InputError, match="no tokens"):
            lm.analyze_ids([])
    finally:
        handle.remove()
    assert not calls


def test_layer_predictions_topk_must_be_positive(lm):
    out = lm.analyze_ids(IDS, progress=False)
    for k in (0, -1, 2.5):
        with pytest.raises(ew.InputError, match="topk.*positive integer"):
            out.layer_predictions(position=3, topk=k)


def test_max_new_tokens_must_be_positive():
    from test_seq2seq import _toy_tokenizer

    lm = ew.from_pretrained(build("gpt2"), tokenizer=_toy_tokenizer())
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ew.InputError, match="max_new_tokens must be a positive integer"):
            lm.generate("the cat sat", max_new_tokens=bad)


def test_a_masked_lm_folder_is_not_loaded_as_a_causal_lm(tmp_path):
    BertForMaskedLM(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               vocab_size=50)).save_pretrained(tmp_path)
    with pytest.raises(ew.UnsupportedModelError, match=r"BertForMaskedLM.*ew\.masked_lm"):
        ew.from_pretrained(str(tmp_path))


def test_an_empty_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ew.ModelLoadError, match="local folder"):
        ew.from_pretrained(str(tmp_path))


@pytest.mark.parametrize("argv, message", [
    (["--generate", "-3"], "--generate: must be 0 or more"),
    (["--factors", "0"], "--factors: must be 1 or more"),
    (["--topk", "0"], "--topk: must be 1 or more"),
])
def test_cli_refuses_bad_counts(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["render", "--prompt", "hi", "--out", str(tmp_path / "p.html"), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_checks_the_output_path_before_the_analysis(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    # a model that does not exist: had the analysis started, the error would be about the model
    for out in (blocked / "page.html", tmp_path):
        code = cli.main(["render", "--prompt", "hi", "--model", str(tmp_path / "missing"), "--out", str(out)])
        assert code == 2
        err = capsys.readouterr().err
        assert "--out" in err and "missing" not in err


# ----- ew.load of damaged files -----
@pytest.fixture(scope="module")
def saved(tmp_path_factory, lm):
    path = tmp_path_factory.mktemp("saved") / "out.npz"
    return lm.analyze_ids(IDS, attribution=("grad_x_input",), progress=False).save(path)


def _copy_members(source, target, change=None, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", compression) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, change(info.filename, data) if change else data)
    return target


def test_truncated_empty_and_foreign_files(saved, tmp_path):
    data = saved.read_bytes()
    (tmp_path / "half.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("not a zip")
    for name in ("half.npz", "empty.npz", "text.npz"):
        with pytest.raises(ew.InputError, match="not a readable ecco_widgets result.*save it again"):
            ew.load(tmp_path / name)


def test_tampered_shapes_and_objects_are_refused_before_expanding(saved, tmp_path):
    def bigger_ranks(name, data):
        if name != "ranks.npy":
            return data
        return data.replace(b"'shape': (3, 11)", b"'shape': (30000, 11000)")

    with pytest.raises(ew.InputError, match=r"ranks\.npy declares shape \(30000, 11000\).*truncated or modified"):
        ew.load(_copy_members(saved, tmp_path / "shape.npz", bigger_ranks))

    # a deflated member whose header declares the size it really expands to: 400 MiB from a file of ~0.4 MiB
    bomb = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (100 * 2**20,)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("ranks.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            zeros = bytes(1 << 20)
            for _ in range(400):
                member.write(zeros)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(ew.InputError, match=r"ranks\.npy expands \d+x.*not written by Output\.save"):
        ew.load(bomb)

    def object_meta(name, data):
        if name != "__meta__.npy":
            return data
        array = np.array([{"format": "x"}], dtype=object)
        import io

        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=True)
        return buffer.getvalue()

    with pytest.raises(ew.InputError, match="Python objects.*pickle"):
        ew.load(_copy_members(saved, tmp_path / "objects.npz", object_meta))


def test_inconsistent_fields_are_refused(saved, tmp_path):
    def fewer_tokens(name, data):
        if name != "__meta__.npy":
            return data
        array = np.lib.format.read_array(__import__("io").BytesIO(data))
        meta = json.loads(str(array))
        meta["tokens"] = meta["tokens"][:3]
        import io

        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array(json.dumps(meta)))
        return buffer.getvalue()

    with pytest.raises(ew.InputError, match=r"inconsistent \(3 tokens for 12 token ids\)"):
        ew.load(_copy_members(saved, tmp_path / "fewer.npz", fewer_tokens))
