"""``from ecco_widgets import ecco`` against Ecco 0.1.2 itself: the numbers Ecco computed on the same seeded models
(recorded by tests/ecco_reference.py into tests/data/ecco_reference.npz), and the lens's final norm checked against
definitions written here. Marked slow: the models use the bundled SmolLM2's tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecco_reference import GPT2_CONFIG, PROMPT, WATCH, analysis_inputs, build
from ecco_widgets import ecco
from ecco_widgets.errors import InputError, NotAvailableError, UnsupportedModelError

pytestmark = pytest.mark.slow
REFERENCE = Path(__file__).parent / "data" / "ecco_reference.npz"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return build(tmp_path_factory.mktemp("ecco_ref"))


@pytest.fixture(scope="module")
def lm(folders):
    return ecco.from_pretrained(str(folders["gpt2_6"]), model_config=GPT2_CONFIG, activations=True, gpu=False,
                                verbose=False)


@pytest.fixture(scope="module")
def output(lm):
    return lm.generate(PROMPT, generate=3, do_sample=False, attribution=["ig", "grad_x_input"])


def _hf_hidden(lm, ids) -> torch.Tensor:
    """transformers' own hidden states (n_layers + 1, n, d): the last one after ln_f."""
    with torch.no_grad():
        return torch.stack(lm.model(torch.as_tensor(ids)[None], output_hidden_states=True).hidden_states)[:, 0]


def _ranks(logits: torch.Tensor, token: int) -> np.ndarray:
    """1-based rank of ``token`` in each row of logits, by definition (count of strictly larger logits + 1)."""
    return ((logits > logits[..., token: token + 1]).sum(-1) + 1).numpy()


def test_same_tokens_as_ecco(output, ref):
    assert output.token_ids.shape == (1, 8) and output.token_ids[0].tolist() == ref["token_ids"].tolist()
    assert output.n_input_tokens == 5 and len(output.tokens[0]) == 8


@pytest.mark.parametrize("method, atol", [("grad_x_input", 1e-5), ("ig", 1e-4)])
def test_attributions_equal_ecco(output, ref, method, atol):
    rows = output.attribution[method]
    assert [len(r) for r in rows] == [5, 6, 7]
    for i, row in enumerate(rows):
        np.testing.assert_allclose(row, ref[f"attribution_{method}_{i}"], atol=atol)
        assert abs(row.sum() - 1) < 1e-5


def test_activations_equal_ecco(output, ref):
    acts = output.activations["decoder"]
    assert acts.shape == ref["activations"].shape == (1, 6, 256, 7)
    np.testing.assert_allclose(acts, ref["activations"], atol=1e-5)


def test_hidden_state_accessors_have_eccos_shapes_and_transformers_values(lm, output, ref):
    assert [list(s.shape) for s in output.decoder_hidden_states] == ref["step_shapes"].tolist()
    assert list(output.embedding_states.shape) == ref["embedding_shape"].tolist()
    hf = _hf_hidden(lm, output.token_ids[0])
    steps = output.decoder_hidden_states
    torch.testing.assert_close(steps[0], hf[1:, :5], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(steps[2][:, 0], hf[1:, 6], atol=1e-5, rtol=1e-5)


def test_forward_call_matches_ecco(lm, ref):
    called = lm(lm.tokenizer([PROMPT + " are"], return_tensors="pt"))
    assert called.activations["decoder"].shape == tuple(ref["call_activations_shape"])
    hidden = np.stack([h[0].numpy() for h in called._get_encoder_hidden_states()])
    np.testing.assert_allclose(hidden, ref["call_hidden"], atol=1e-5)
    assert called.embedding_states.shape == (1, 6, 64)


def test_lens_last_layer_equals_ecco_and_middle_layers_go_through_the_final_norm(lm, output, ref):
    """Ecco's middle rows are lm_head(h) without ln_f, ours lm_head(ln_f(h)); the last row is the same in both."""
    ours = output.rankings(printJson=True)["rankings"]
    assert ours.shape == ref["rankings"].shape == (6, 3)
    np.testing.assert_array_equal(ours[-1], ref["rankings"][-1])
    ids = output.token_ids[0].tolist()
    hf = _hf_hidden(lm, ids)
    head, norm = lm.model.lm_head, lm.model.transformer.ln_f
    with torch.no_grad():
        for j in range(3):
            p, token = 4 + j, ids[5 + j]
            without = _ranks(head(hf[1:-1, p]), token)  # Ecco's definition
            through = _ranks(head(norm(hf[1:-1, p])), token)  # ours
            np.testing.assert_array_equal(ref["rankings"][:-1, j], without)
            np.testing.assert_array_equal(ours[:-1, j], through)
    assert (ours[:-1] != ref["rankings"][:-1]).mean() > 0.5  # the norm changes most middle-layer ranks here


def test_rankings_watch_and_layer_predictions(output, ref):
    watch = output.rankings_watch(watch=WATCH, position=5, printJson=True)["rankings"]
    np.testing.assert_array_equal(watch[-1], ref["watch"][-1])
    rows = output.layer_predictions(position=6, topk=5, printJson=True)
    np.testing.assert_allclose(rows[-1]["probs"], ref["layer_predictions_probs"][-1], rtol=1e-4)
    assert output.layer_predictions(position=6, topk=5, layer=5, printJson=True) == [rows[-1]]
    view = output.layer_predictions(position=6, layer=5)
    assert view.position == 5 and view.layers == [5]


def test_outputs_share_no_arrays(lm, output, ref):
    """In Ecco a second generate changed the first output's activations (ref: True); here it does not."""
    assert bool(ref["first_activations_changed"])
    before = output.activations["decoder"].copy()
    lm.generate("A different and longer prompt than the first", generate=2, do_sample=False)
    np.testing.assert_array_equal(output.activations["decoder"], before)
    view = output.primary_attributions(attr_method="ig", ignore_tokens=[0, 1])
    ig = view.attributions[view.methods.index("ig")]
    assert output.attribution["ig"][2][0] > 0 and np.all(ig[:, :2] == 0) and np.allclose(ig.sum(1), 1)


def test_activations_layer_nums_and_numeric_layer_order(folders, ref):
    """Ecco collected nothing for activations_layer_nums=[0, 1] and sorted 12 layers as strings."""
    inputs_text = PROMPT + " are"
    assert int(ref["layer_nums_collected"]) == 0
    picked = ecco.from_pretrained(str(folders["gpt2_6"]), activations=True, activations_layer_nums=[0, 1],
                                  gpu=False)
    assert picked(picked.tokenizer([inputs_text], return_tensors="pt")).activations["decoder"].shape[1] == 2
    deep = ecco.from_pretrained(str(folders["gpt2_12"]), model_config=GPT2_CONFIG, activations=True, gpu=False)
    ours = deep(deep.tokenizer([inputs_text], return_tensors="pt")).activations["decoder"]
    string_order = [int(s) for s in sorted(str(i) for i in range(12))]  # 0, 1, 10, 11, 2, ...
    np.testing.assert_allclose(ours[:, string_order], ref["activations_12"], atol=1e-5)
    assert deep.native.spec.down_proj_names[10] == "transformer.h.10.mlp.c_proj"


def test_analysis_against_ecco(ref):
    a, b = analysis_inputs()
    for name in ("cka", "svcca"):
        assert abs(float(getattr(ecco.analysis, name)(a, b)) - ref[f"analysis_{name}"]) < 1e-6, name
    # CCA: ours is the mean of every canonical correlation (what Ecco's docstring says). Ecco's number (Google's
    # "mean") averaged only the leading correlations whose sum reaches 98 % of the total.
    ours = ecco.analysis.cca(a, b)
    rho = ours.correlations
    assert abs(float(ours) - rho.mean()) < 1e-12
    leading = int(np.argmax(np.cumsum(np.concatenate([[0], rho]))[:-1] / rho.sum() >= 0.98)) or len(rho)
    assert abs(rho[:leading].mean() - ref["analysis_cca"]) < 1e-6 and float(ours) < ref["analysis_cca"]
    # PWCCA: weights from the centred neurons here, from raw activations in Google's code
    assert abs(float(ecco.analysis.pwcca(a, b)) - ref["analysis_pwcca"]) < 0.05


def test_model_config_becomes_a_model_spec(folders):
    lm = ecco.from_pretrained(str(folders["gpt2_6"]), model_config=dict(GPT2_CONFIG, activations=[r"mlp\.c_fc"]),
                              activations=True, gpu=False)
    assert lm.native.spec.down_proj_names == [f"transformer.h.{i}.mlp.c_fc" for i in range(6)]
    assert lm.native.spec.embedding_name == "transformer.wte" and lm.model_config["tokenizer_config"]
    with pytest.raises(UnsupportedModelError, match="one module in each"):
        ecco.from_pretrained(str(folders["gpt2_6"]), model_config=dict(GPT2_CONFIG, activations=[r"c_"]))
    with pytest.raises(UnsupportedModelError, match="names no module"):
        ecco.from_pretrained(str(folders["gpt2_6"]), model_config=dict(GPT2_CONFIG, embedding="wte_missing"))
    with pytest.raises(InputError, match="lacks"):
        ecco.from_pretrained(str(folders["gpt2_6"]), model_config={"type": "causal"})
    with pytest.raises(InputError, match="type"):
        ecco.from_pretrained(str(folders["gpt2_6"]), model_config=dict(GPT2_CONFIG, type="decoder"))


def test_clear_errors_before_any_work(lm, output, monkeypatch):
    def no_generate(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(lm.native, "generate", no_generate)
    with pytest.raises(InputError, match="not offered"):
        lm.generate(PROMPT, generate=2, attribution=["lrp"])
    with pytest.raises(InputError, match="Unknown attribution"):
        lm.generate(PROMPT, generate=2, attribution=["magic"])
    with pytest.raises(InputError, match="max_length"):
        lm.generate(PROMPT, max_length=3)
    with pytest.raises(InputError, match="one sequence"):
        lm(lm.tokenizer(["a b", "c d"], return_tensors="pt"))
    with pytest.raises(InputError, match="never a hidden state"):
        output.layer_predictions(position=0)
    with pytest.raises(InputError, match="out of range"):
        output.rankings_watch(watch=WATCH, position=8)
    with pytest.raises(InputError, match="cannot be the same"):
        output.run_nmf(from_layer=2, to_layer=2)
    with pytest.raises(NotAvailableError, match="not found"):
        output.primary_attributions(attr_method="saliency")
    with pytest.raises(InputError, match="ignore_tokens"):
        output.primary_attributions(attr_method="ig", ignore_tokens=[99])


def test_run_nmf_layers_and_components(output):
    nmf = output.run_nmf(n_components=4, from_layer=0, to_layer=2)
    assert nmf.native.layers == [0, 1] and nmf.components.shape == (4, 8)
    assert nmf.native.excluded_positions == []  # Ecco's meaning: every token fitted
    assert type(nmf.explore()).__name__ == "FactorExplorer"


@pytest.fixture(scope="module")
def t5(folders, tmp_path_factory):
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(folders["gpt2_6"])
    torch.manual_seed(0)
    model = tf.T5ForConditionalGeneration(tf.T5Config(
        d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16, vocab_size=len(tok),
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=tok.eos_token_id)).eval()
    folder = tmp_path_factory.mktemp("t5")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return ecco.from_pretrained(str(folder), activations=True, gpu=False)


def test_encoder_decoder_positions_count_the_source_first(t5):
    """Ecco's enc-dec positions: source tokens, then decoder tokens (start token first); P = n_source + 1 is the
    first generated token, whose prediction is read at decoder position 0."""
    out = t5.generate(PROMPT, generate=2, do_sample=False, attribution=["grad_x_input"])
    n_source = len(t5.native.encode_source(PROMPT))
    assert t5.model_type == "enc-dec" and out.n_input_tokens == n_source
    assert out.token_ids.shape == (1, n_source + 3)  # source, start token, 2 generated
    assert [len(r) for r in out.attribution["grad_x_input"]] == [n_source + 1, n_source + 2]
    rows = out.layer_predictions(position=n_source + 1, topk=3, printJson=True)
    assert rows == out.native.layer_topk(0, 3)
    second = out.native.token_ids[2]
    watched = out.rankings_watch(watch=[int(second)], position=n_source + 2, printJson=True)["rankings"]
    np.testing.assert_array_equal(watched[:, 0], out.native.ranks[:, 1])
    assert set(out.activations) == {"encoder", "decoder"} and out.activations["encoder"].shape[-1] == n_source
    with pytest.raises(InputError, match="out of range"):
        out.layer_predictions(position=n_source)  # the start token is never predicted


def test_masked_lm_forward_and_refusals(folders):
    from ecco_notebooks import MINILM

    bert = ecco.from_pretrained(str(MINILM), activations=True, gpu=False)
    assert bert.model_type == "mlm" and bert.model_config["partial_token_prefix"] == "##"
    out = bert(bert.tokenizer(["The keys to the cabinet are here."], return_tensors="pt"))
    n = out.token_ids.shape[1]
    assert out.activations["encoder"].shape == (1, 6, 1536, n) and len(out._get_encoder_hidden_states()) == 6
    with pytest.raises(InputError, match="masked"):
        bert.generate("The keys", generate=1)
    with pytest.raises(InputError, match="not supported for masked LMs"):
        out.layer_predictions(position=1)


def test_attention_view(folders):
    lm = ecco.from_pretrained(str(folders["gpt2_6"]), attention=True, gpu=False)
    out = lm.generate(PROMPT, generate=1)
    view = out.attention(layer=2)
    assert type(view).__name__ == "AttentionView" and view.attention.shape == (4, 6, 6)
    with torch.no_grad(), lm.native.attention_mode(True):  # transformers' eager attention, which returns weights
        hf = lm.model(out.token_ids, output_attentions=True).attentions[2][0]
    np.testing.assert_allclose(view.attention, hf.numpy(), atol=1e-5)
