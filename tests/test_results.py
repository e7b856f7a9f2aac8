"""Every result kind survives save + load as the same class with every field; files of the old formats still load.

tests/data/*_v1.npz were written by the version before the results/ package (formats ecco_widgets.Output/1 and
ecco_widgets.Seq2SeqOutput/1) from the random models rebuilt here with the same seeds.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, BertConfig, BertForMaskedLM,
                          BertForSequenceClassification, GPT2Config, GPT2LMHeadModel)

import ecco_widgets as ew

DATA = Path(__file__).parent / "data"


def _gpt2_lm():
    torch.manual_seed(0)
    return ew.from_pretrained(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=60)))


def _bart():
    torch.manual_seed(0)
    return ew.seq2seq(BartForConditionalGeneration(BartConfig(
        d_model=16, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=50, max_position_embeddings=32)).eval())


def _lossless_sae(d: int) -> ew.SAE:
    """Latents +x and -x: reconstructs anything exactly (so the attach check is quiet)."""
    w = torch.cat([torch.eye(d), -torch.eye(d)], dim=1)
    return ew.SAE(W_enc=w, W_dec=w.T.contiguous(), b_enc=torch.zeros(2 * d), b_dec=torch.zeros(d))


def _outputs() -> dict[str, ew.Output]:
    bert = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=100)
    torch.manual_seed(1)
    mlm = ew.masked_lm(BertForMaskedLM(BertConfig(**bert)).eval())
    torch.manual_seed(2)
    clf = ew.classifier(BertForSequenceClassification(BertConfig(**bert, num_labels=2)).eval())
    return {
        "causal": _gpt2_lm().analyze_ids([3, 5, 7, 9, 11], n_input_tokens=3, attribution=("ig",), n_steps=4,
                                        activations=True, attention=True, progress=False,
                                        saes=[(_lossless_sae(16), "blocks.1.hook_resid_post")]),
        "masked": mlm.analyze_ids([2, 5, 7, 9, 3], mask_positions=[2], mask_token_id=4, attribution=("saliency",),
                                  activations=[1], progress=False),
        "classifier": clf.analyze_ids([2, 5, 7, 3], attribution=("grad_x_input",), progress=False),
        "seq2seq": _bart().analyze_ids([0, 5, 6, 2], [2, 0, 7, 8], attribution=("grad_x_input",),
                                       activations=True, attention=True, progress=False),
    }


def assert_same(a, b) -> None:
    """Every public dataclass field equal (arrays exactly, dicts of arrays per key)."""
    assert type(a) is type(b)
    for f in fields(a):
        if f.name.startswith("_"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
            assert np.asarray(x).dtype == np.asarray(y).dtype, f.name
        elif isinstance(x, dict) and x and isinstance(next(iter(x.values())), np.ndarray):
            assert x.keys() == y.keys(), f.name
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{f.name}[{key}]")
        else:
            assert x == y, f.name


@pytest.mark.parametrize("kind", ["causal", "masked", "classifier", "seq2seq"])
def test_save_load_gives_back_the_same_kind_with_every_field(kind, tmp_path):
    out = _outputs()[kind]
    assert kind != "causal" or out.features  # the features of saes=[...] round-trip too
    back = ew.load(out.save(tmp_path / kind))
    assert_same(back, out)
    clone = out.copy()
    assert_same(clone, out)
    for f in fields(out):
        value = getattr(out, f.name)
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, getattr(clone, f.name)), f.name


def test_kind_specific_fields_and_views_survive(tmp_path):
    outs = _outputs()
    masked = ew.load(outs["masked"].save(tmp_path / "m"))
    assert isinstance(masked, ew.MaskedLMOutput) and masked.mask_positions.tolist() == [2] and masked.has_head
    with pytest.raises(ew.NotAvailableError, match="token at its own position"):
        masked.rankings()  # the kind's own behaviour, not a plain Output's RankGrid
    clf = ew.load(outs["classifier"].save(tmp_path / "c"))
    assert isinstance(clf, ew.ClassifierOutput) and clf.labels == outs["classifier"].labels
    assert clf.primary_attributions().causal is False


def test_files_of_the_old_formats_still_load():
    old = ew.load(DATA / "output_v1.npz")
    fresh = _gpt2_lm().analyze_ids([3, 5, 7, 9, 11], n_input_tokens=3, attribution=("grad_x_input",),
                                   activations=True, progress=False)
    assert type(old) is ew.Output
    np.testing.assert_array_equal(old.ranks, fresh.ranks)
    np.testing.assert_allclose(old.attributions("grad_x_input"), fresh.attributions("grad_x_input"), rtol=1e-5,
                               atol=1e-8)
    # (the files were written on another CPU: float32 kernels differ in the last bits across CPUs, e.g. 5e-9 on
    # activations of 1e-3 between AMD EPYC and Intel Xeon, so these use the attributions' tolerance)
    np.testing.assert_allclose(old.activations, fresh.activations, rtol=1e-5, atol=1e-8)
    assert old.tokens == fresh.tokens and old.attribution_settings["methods"] == ["grad_x_input"]
    s2s = ew.load(DATA / "seq2seq_v1.npz")
    fresh = _bart().analyze_ids([0, 5, 6, 2], [2, 0, 7, 8], attribution=("grad_x_input",), activations=True,
                                progress=False)
    assert type(s2s) is ew.Seq2SeqOutput and s2s.source_ids.tolist() == [0, 5, 6, 2]
    np.testing.assert_array_equal(s2s.ranks, fresh.ranks)
    np.testing.assert_allclose(s2s.encoder_activations, fresh.encoder_activations, rtol=1e-5, atol=1e-8)
    assert ew.load_seq2seq(DATA / "seq2seq_v1.npz").n_encoder_layers == 1


def test_a_file_of_an_unknown_format_is_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, __meta__=np.array('{"format": "something/9"}'))
    with pytest.raises(ew.InputError, match="this version reads"):
        ew.load(path)
