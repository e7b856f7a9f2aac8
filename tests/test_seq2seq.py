"""Encoder-decoder models (ew.seq2seq): lens ranks, activations, attention and attribution on tiny random T5 / BART,
each checked against an independent reference (HF hidden states + a hand-run head, reference hooks, captum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, BertConfig, BertForMaskedLM, GPT2Config,
                          GPT2LMHeadModel, T5Config, T5ForConditionalGeneration, T5Model)

import ecco_widgets as ew
from ecco_widgets.errors import InputError, NotAvailableError, UnsupportedModelError

SRC = [5, 6, 7, 8, 9, 1]
DEC = [0, 11, 12, 13, 14]  # decoder start token first


def _t5(tie: bool):
    torch.manual_seed(0)
    config = T5Config(d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
                      vocab_size=100, tie_word_embeddings=tie)
    return T5ForConditionalGeneration(config).eval()


def _bart():
    torch.manual_seed(1)
    config = BartConfig(d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=48, vocab_size=100,
                        max_position_embeddings=64)
    model = BartForConditionalGeneration(config).eval()
    with torch.no_grad():  # a non-zero bias, so that forgetting it would change ranks
        model.final_logits_bias.normal_(0, 1.0)
    return model


@pytest.fixture(scope="module")
def models():
    return {"t5_tied": ew.seq2seq(_t5(True), decoder_start_token_id=0),
            "t5_untied": ew.seq2seq(_t5(False), decoder_start_token_id=0),
            "bart": ew.seq2seq(_bart())}


def _ids(name):
    return (SRC, DEC) if name.startswith("t5") else ([0, 5, 6, 7, 8, 2], [2, 0, 11, 12, 13])


def _mlps(model, stack):
    """Reference list of each block's MLP down projection, named by hand per family."""
    if isinstance(model, T5ForConditionalGeneration):
        return [b.layer[-1].DenseReluDense.wo for b in getattr(model, stack).block]
    return [layer.fc2 for layer in getattr(model.model, stack).layers]


def _rank_reference(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    order = np.argsort(-logits, axis=-1, kind="stable")
    return np.array([int(np.nonzero(order[p] == t)[0][0]) + 1 for p, t in enumerate(targets)])


def _head_by_hand(model, hidden: torch.Tensor) -> torch.Tensor:
    """The decoder head written out per family (not the library's decode)."""
    if isinstance(model, T5ForConditionalGeneration):
        norm = model.decoder.final_layer_norm
        x = hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight
        if model.config.scale_decoder_outputs:  # transformers 5: T5ForConditionalGeneration.forward's condition
            x = x * model.config.d_model ** -0.5
        return model.lm_head(x)
    return model.lm_head(hidden) + model.final_logits_bias  # BART: no final decoder norm


def test_discovery(models):
    t5, t5u, bart = models["t5_tied"].seq2seq_spec, models["t5_untied"].seq2seq_spec, models["bart"].seq2seq_spec
    assert t5.scale == pytest.approx(32 ** -0.5) and t5u.scale is None
    assert t5.decoder.final_norm_names == ["decoder.final_layer_norm"] and not t5.has_logits_bias
    assert bart.decoder.final_norm_names == [] and bart.has_logits_bias and bart.scale is None
    assert (bart.encoder.n_layers, bart.decoder.n_layers) == (2, 3)
    assert t5.decoder.down_proj_names[1] == "decoder.block.1.layer.2.DenseReluDense.wo"
    assert bart.encoder.down_proj_names[0] == "model.encoder.layers.0.fc2"
    assert "Seq2SeqLanguageModel" in repr(models["bart"])


@pytest.mark.parametrize("name", ["t5_tied", "t5_untied", "bart"])
def test_ranks_match_reference(models, name):
    s2s = models[name]
    src, dec = _ids(name)
    out = s2s.analyze_ids(src, dec, attribution=())
    model = s2s.model
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([dec]), output_hidden_states=True)
    hs = ref.decoder_hidden_states  # embeddings, block outputs (in transformers 5 the last one is after the norm)
    n_layers = len(_mlps(model, "decoder"))
    assert out.ranks.shape == (n_layers, len(dec) - 1) and out.n_input_tokens == 1
    assert out.tokens == [str(i) for i in dec] and out.source_tokens == [str(i) for i in src]
    for layer in range(n_layers - 1):
        with torch.no_grad():
            logits = _head_by_hand(model, hs[layer + 1][0]).numpy()
        np.testing.assert_array_equal(out.ranks[layer], _rank_reference(logits[:-1], dec[1:]), err_msg=f"{layer}")
        np.testing.assert_allclose(out.hidden_states[layer + 1], hs[layer + 1][0].numpy(), atol=1e-5)
    # last row: exactly the model's own logits ranks
    np.testing.assert_array_equal(out.ranks[-1], _rank_reference(ref.logits[0, :-1].numpy(), dec[1:]))
    # the captured last block output (before the norm), decoded by hand, gives the model's logits
    with torch.no_grad():
        by_hand = _head_by_hand(model, torch.from_numpy(out.hidden_states[-1]))
    np.testing.assert_allclose(by_hand.numpy(), ref.logits[0].numpy(), atol=1e-4)
    probs = torch.softmax(ref.logits[0, :-1], -1)[torch.arange(len(dec) - 1), torch.tensor(dec[1:])]
    np.testing.assert_allclose(out.target_probs[-1], probs.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", ["t5_tied", "bart"])
def test_activations_match_reference_hooks(models, name):
    s2s = models[name]
    src, dec = _ids(name)
    model = s2s.model
    seen = {}
    handles = []
    for stack in ("encoder", "decoder"):
        for i, proj in enumerate(_mlps(model, stack)):
            handles.append(proj.register_forward_pre_hook(
                lambda mod, args, key=(stack, i): seen.__setitem__(key, args[0][0].detach().numpy().copy())))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([dec]))
    finally:
        for h in handles:
            h.remove()
    out = s2s.analyze_ids(src, dec, attribution=(), activations=True)
    n_enc, n_dec = len(_mlps(model, "encoder")), len(_mlps(model, "decoder"))
    assert out.activations is None  # the two stacks are never collided into one array
    assert out.encoder_activations.shape[:2] == (n_enc, len(src))
    assert out.decoder_activations.shape[:2] == (n_dec, len(dec))
    for i in range(n_enc):
        np.testing.assert_allclose(out.encoder_activations[i], seen[("encoder", i)], atol=1e-6)
    for i in range(n_dec):
        np.testing.assert_allclose(out.decoder_activations[i], seen[("decoder", i)], atol=1e-6)
    some = s2s.analyze_ids(src, dec, attribution=(), activations={"encoder": [-1], "decoder": [0, 2]}
                           if name == "bart" else [1])
    assert some.encoder_activation_layers == ([1] if name == "bart" else [1])
    np.testing.assert_allclose(some.decoder_activations[-1], seen[("decoder", some.decoder_activation_layers[-1])],
                               atol=1e-6)


def _captum_reference(model, src, dec, t, method, n_steps, target="prob"):
    """captum on two inputs (encoder embeds, decoder embeds of the prefix) for decoder token t."""
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    emb = model.get_input_embeddings()
    with torch.no_grad():
        xe = emb(torch.tensor([src])).clone()
        xd = emb(torch.tensor([dec[:t]])).clone()
    token = dec[t]

    def f(e, d):
        logits = model(inputs_embeds=e, decoder_inputs_embeds=d, use_cache=False).logits[:, -1].float()
        if target == "prob":
            return logits.softmax(-1)[:, token]
        if target == "logprob":
            return logits.log_softmax(-1)[:, token]
        return logits[:, token]

    if method == "ig":
        ig = IntegratedGradients(f)
        (ae, ad), delta = ig.attribute((xe, xd), baselines=(xe * 0, xd * 0), n_steps=n_steps,
                                       method="gausslegendre", return_convergence_delta=True)
        return ae[0].detach().numpy(), ad[0].detach().numpy(), float(delta)
    cls = InputXGradient if method == "grad_x_input" else Saliency
    ae, ad = cls(f).attribute((xe.requires_grad_(), xd.requires_grad_()))
    return ae[0].detach().numpy(), ad[0].detach().numpy(), None


@pytest.mark.parametrize("name", ["t5_tied", "t5_untied", "bart"])
def test_attribution_matches_captum(models, name):
    s2s = models[name]
    src, dec = _ids(name)
    n_steps = 24
    methods = ("ig", "grad_x_input", "saliency") if name != "t5_untied" else ("ig",)
    target = "logprob" if name == "t5_untied" else "prob"
    out = s2s.analyze_ids(src, dec, attribution=methods, n_steps=n_steps, target=target, progress=False)
    n_src, m = len(src), len(dec)
    np.testing.assert_array_equal(out.targets, np.arange(1, m))
    for method in methods:
        raw = out.attributions_raw[method]
        assert raw.shape == (m - 1, n_src + m, 32)
        assert out.attributions(method, "sum").shape == (m - 1, n_src + m)
        for i, t in enumerate(out.targets):
            ref_e, ref_d, ref_delta = _captum_reference(s2s.model, src, dec, int(t), method, n_steps, target)
            if method == "ig":  # same completeness error as captum's convergence delta
                assert abs(out.convergence_delta("ig")[i] - ref_delta) <= 1e-3 * abs(ref_delta) + 1e-6
            ref = np.concatenate([ref_e, ref_d])
            got = raw[i, : n_src + t]
            scale = np.abs(ref).max()
            assert np.abs(got - ref).max() <= 1e-3 * scale, (method, t, np.abs(got - ref).max(), scale)
            assert not raw[i, n_src + t:].any()  # decoder positions >= target: exactly 0
    # integrated gradients: completeness (sum of attributions = f(x) - f(0)) within 2 %, where f is continuous at
    # the baseline. T5's RMS norm maps 0 to 0 but any tiny input to unit scale, so f jumps between alpha = 0 and
    # alpha = 1e-6 and no number of integration points closes the gap (measured: still 0.6-3.9x the gap at 256
    # points; captum's delta above is the same to 1e-3); there we check the jump instead.
    with torch.no_grad():
        emb = s2s.model.get_input_embeddings()
        e, d = emb(torch.tensor([src])), emb(torch.tensor([dec]))
        fx = s2s.model(inputs_embeds=e, decoder_inputs_embeds=d).logits[0]
        f0 = s2s.model(inputs_embeds=e * 0, decoder_inputs_embeds=d * 0).logits[0]
    pick = (lambda z: z.log_softmax(-1)) if target == "logprob" else (lambda z: z.softmax(-1))
    gap = (pick(fx) - pick(f0))[torch.arange(m - 1), torch.tensor(dec[1:])].numpy()
    sums = out.attributions("ig", "sum").sum(axis=1)
    np.testing.assert_allclose(sums - gap, out.convergence_delta("ig"), atol=1e-5)
    if name == "bart":
        assert np.all(np.abs(sums - gap) <= 0.02 * np.abs(gap) + 1e-6), (sums, gap)
    else:
        with torch.no_grad():
            tiny = s2s.model(inputs_embeds=e * 1e-6, decoder_inputs_embeds=d * 1e-6).logits[0]
        jump = (pick(tiny) - pick(f0))[torch.arange(m - 1), torch.tensor(dec[1:])].numpy()
        assert np.abs(jump).max() > 0.1 * np.abs(gap).max()  # the jump alone is far past 2 % of f(x) - f(0)


def test_contrast_matches_captum_on_the_difference(models):
    """contrast: f = p(token) - p(foil) at every explained position; captum on that difference, two inputs."""
    from captum.attr import InputXGradient

    s2s = models["bart"]
    src, dec = _ids("bart")
    foil = 9
    out = s2s.analyze_ids(src, dec, attribution=("grad_x_input",), contrast=foil, progress=False)
    assert out.attribution_settings["contrastive"] is True
    emb = s2s.model.get_input_embeddings()
    n_src = len(src)
    for i, t in enumerate(out.targets):
        with torch.no_grad():
            xe, xd = emb(torch.tensor([src])).clone(), emb(torch.tensor([dec[:t]])).clone()

        def f(e, d, t=int(t)):
            probs = s2s.model(inputs_embeds=e, decoder_inputs_embeds=d, use_cache=False).logits[:, -1].softmax(-1)
            return probs[:, dec[t]] - probs[:, foil]

        ae, ad = InputXGradient(f).attribute((xe.requires_grad_(), xd.requires_grad_()))
        ref = np.concatenate([ae[0].detach().numpy(), ad[0].detach().numpy()])
        got = out.attributions_raw["grad_x_input"][i, : n_src + t]
        assert np.abs(got - ref).max() <= 1e-3 * np.abs(ref).max()


@pytest.mark.parametrize("name", ["t5_tied", "bart"])
def test_occlusion_matches_a_direct_loop(models, name):
    """Occlusion over source and decoder prefix: each drop by a forward written here, one occluded token each."""
    s2s = models[name]
    src, dec = _ids(name)
    out = s2s.analyze_ids(src, dec, attribution=("occlusion",), progress=False)
    drops = out.attributions("occlusion", "sum")  # (m - 1, n_src + m)
    emb = s2s.model.get_input_embeddings()
    n_src = len(src)
    with torch.no_grad():
        e, d = emb(torch.tensor([src])), emb(torch.tensor([dec]))

        def prob(e_, d_, t):
            logits = s2s.model(inputs_embeds=e_, decoder_inputs_embeds=d_[:, :t], use_cache=False).logits[0, -1]
            return float(logits.float().softmax(-1)[dec[t]])

        for i, t in enumerate(range(1, len(dec))):
            full = prob(e, d, t)
            for j in range(n_src + t):
                e_, d_ = e.clone(), d.clone()
                if j < n_src:
                    e_[0, j] = 0
                else:
                    d_[0, j - n_src] = 0
                assert abs(drops[i, j] - (full - prob(e_, d_, t))) <= 1e-5 + 1e-4 * abs(full), (t, j)
            assert not drops[i, n_src + t:].any()  # decoder tokens at or after the target: exactly 0


def _toy_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for i, word in enumerate("the a cat dog sat on mat house is big small red blue green one two".split()):
        vocab[word] = 3 + i
    for i in range(len(vocab), 100):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def test_generate_text_views_and_persistence(models, tmp_path):
    s2s = ew.seq2seq(models["t5_tied"].model, tokenizer=_toy_tokenizer(), decoder_start_token_id=0)
    out = s2s.generate("the cat sat on the mat", max_new_tokens=4, activations=True, attention=True, n_steps=8,
                       generation_kwargs={"min_new_tokens": 4}, progress=False)
    assert isinstance(out, ew.Seq2SeqOutput)
    assert out.source_tokens[:2] == ["the", "cat"] and out.source_tokens[-1] == "</s>"
    assert out.token_ids[0] == 0 and out.n_tokens == 5 and out.ranks.shape == (2, 4)
    assert set(out.attributions_raw) == {"ig", "grad_x_input"}  # the default methods
    # views
    grid = out.rankings()
    assert grid.ranks.shape == (2, 4) and list(grid.tokens) == out.tokens
    sal = out.primary_attributions()
    n_src = out.n_source
    assert list(sal.tokens) == out.source_tokens + out.tokens and sal.n_input_tokens == n_src
    np.testing.assert_array_equal(sal.targets, out.targets + n_src)
    np.testing.assert_allclose(sal.attributions[0], out.attributions("ig", "l2_normalized"), atol=1e-6)
    lp = out.layer_predictions(position=2, topk=3)
    assert lp.topk_probs.shape == (2, 3)
    for stack, n in (("encoder", n_src), ("decoder", out.n_tokens)):
        nmf = out.run_nmf(n_components=2, stack=stack)
        assert nmf.factors.shape == (2, n)
        assert len(out.top_neurons(0, k=3, stack=stack)) == 3
        out.neuron_heatmap(0, [0, 1], stack=stack)
    assert out.encoder_attention.shape == (2, 2, n_src, n_src)
    assert out.decoder_attention.shape == (2, 2, 5, 5) and out.cross_attention.shape == (2, 2, 5, n_src)
    np.testing.assert_allclose(out.cross_attention.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(out.decoder_attention[0, 0], 1), 0)
    for kind, n in (("encoder", n_src), ("decoder", 5), ("cross", n_src + 5)):
        assert out.attention(1, kind=kind).attention.shape == (2, n, n)
    assert s2s.model.config._attn_implementation == "sdpa"  # switched to eager only during the call
    assert out.watch_ranks([3, 4], position=1).shape == (2, 2)
    # teacher-forced text
    forced = s2s.analyze("the cat sat", "a dog", attribution=())
    assert forced.tokens == ["<pad>", "a", "dog", "</s>"]
    # save / load / copy
    path = out.save(tmp_path / "s2s")
    back = ew.load(path)
    assert isinstance(back, ew.Seq2SeqOutput) and back.source_tokens == out.source_tokens
    for name in ("ranks", "encoder_activations", "decoder_activations", "cross_attention", "source_ids", "targets"):
        np.testing.assert_array_equal(getattr(back, name), getattr(out, name))
    np.testing.assert_array_equal(back.attributions("ig"), out.attributions("ig"))
    np.testing.assert_array_equal(back.convergence_delta("ig"), out.convergence_delta("ig"))
    clone = out.copy()
    clone.encoder_activations[:] = 0
    assert out.encoder_activations.any() and isinstance(clone, ew.Seq2SeqOutput)
    plain = ew.load(ew.Output(token_ids=np.array([1, 2]), tokens=["a", "b"], raw_tokens=["a", "b"],
                              n_input_tokens=1, ranks=np.ones((1, 1), np.int32)).save(tmp_path / "plain"))
    assert type(plain) is ew.Output  # each file comes back as the kind that was saved


def test_errors(models, tmp_path):
    bart, t5 = models["bart"], models["t5_tied"]
    with pytest.raises(UnsupportedModelError, match="decoder-only"):
        ew.seq2seq(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))
    with pytest.raises(UnsupportedModelError, match="masked_lm"):
        ew.seq2seq(BertForMaskedLM(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                                              intermediate_size=32, vocab_size=50)))
    with pytest.raises(UnsupportedModelError, match="no language-model head"):
        ew.seq2seq(T5Model(T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8, vocab_size=50)))
    with pytest.raises(UnsupportedModelError, match="ew.seq2seq"):
        ew.from_pretrained(bart.model)
    with pytest.raises(InputError, match="source is empty"):
        bart.analyze_ids([], [2, 0])
    with pytest.raises(InputError, match="no tokenizer"):
        bart.generate("hello")
    with pytest.raises(InputError, match="context window of 64"):
        bart.analyze_ids(list(range(3, 68)), [2, 0])
    with pytest.raises(InputError, match="context window"):
        bart.generate_ids([0, 5, 2], max_new_tokens=100)
    with pytest.raises(InputError, match="context window of 4"):
        ew.seq2seq(t5.model, decoder_start_token_id=0, max_source_tokens=4).analyze_ids(SRC, DEC)
    with pytest.raises(InputError, match="does not exist in the encoder"):
        bart.analyze_ids([0, 5, 2], [2, 0, 7], activations=[2], attribution=())  # encoder has 2 layers
    with pytest.raises(InputError, match="unknown stack"):
        bart.analyze_ids([0, 5, 2], [2, 0, 7], activations={"middle": [0]}, attribution=())
    with pytest.raises(InputError, match="Unknown attribution method"):
        bart.analyze_ids([0, 5, 2], [2, 0, 7], attribution=("lrp",))
    with pytest.raises(InputError, match="contrast=... applies to attribution"):
        bart.analyze_ids([0, 5, 2], [2, 0, 7], attribution=(), contrast=5)
    with pytest.raises(InputError, match="start token"):
        bart.analyze_ids([0, 5, 2], [2, 0, 7], targets=[0])
    with pytest.raises(InputError, match="only the start token"):
        bart.analyze_ids([0, 5, 2], [2])
    with pytest.raises(InputError, match="decoder start token"):
        ew.seq2seq(_t5(True)).generate_ids(SRC, max_new_tokens=2)
    out = bart.analyze_ids([0, 5, 2], [2, 0, 7], attribution=("grad_x_input",), activations={"decoder": [1]})
    with pytest.raises(NotAvailableError, match="No encoder activations"):
        out.run_nmf(2, stack="encoder")
    with pytest.raises(InputError, match="stack must be"):
        out.run_nmf(2, stack="middle")
    with pytest.raises(NotAvailableError, match="No attention"):
        out.attention(0)
    with pytest.raises(NotAvailableError, match="'ig'"):
        out.attributions("ig")
    att = bart.analyze_ids([0, 5, 2], [2, 0, 7], attribution=(), attention=True)
    with pytest.raises(InputError, match="kind must be"):
        att.attention(0, kind="self")
    with pytest.raises(InputError, match="layer 5 does not exist"):
        att.attention(5, kind="cross")
    # loading by path: a folder holding an encoder-decoder model goes to seq2seq, not from_pretrained
    folder = tmp_path / "tiny_bart"
    bart.model.save_pretrained(folder)
    with pytest.raises(UnsupportedModelError, match="ew.seq2seq"):
        ew.from_pretrained(str(folder))
    loaded = ew.seq2seq(str(folder))
    assert loaded.tokenizer is None
    np.testing.assert_array_equal(loaded.analyze_ids([0, 5, 2], [2, 0, 7], attribution=()).ranks,
                                  bart.analyze_ids([0, 5, 2], [2, 0, 7], attribution=()).ranks)
