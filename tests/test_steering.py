"""Steering (issue 26): ``lm.generate(prompt, steer={sae: {feature: value}})`` against hooks written HERE: the clamped
latent read back at every position (the steered analysis' block output encoded by the encoder written here), the
steered continuation equal to a greedy generation under a splice written here, an empty steer equal to the plain
output, the added mode shifting the site by value x decoder row; checked before any forward; saved / loaded, shown
in a PromptPairView.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.features import SAE
from ecco_widgets.errors import InputError
from ecco_widgets.views import PromptPairView
from test_foundation import WORDS, ToyTokenizer

D = 64
PROMPT = " ".join(WORDS[3:9])
BLOCK = {"gpt2": "transformer.h.1", "llama": "model.layers.1"}
pytestmark = pytest.mark.filterwarnings("ignore::ecco_widgets.errors.SiteWarning")


def _lm(family: str = "llama"):
    return ew.from_pretrained(zoo.build(family), tokenizer=ToyTokenizer(WORDS))


def invertible_sae(beta: float = 50.0) -> SAE:
    """encode(x) = x Q^T + beta (every latent on), decode(a) = a Q - beta 1 Q: decode(encode(x)) = x, and a
    latent set to c reads back c when the reconstruction is encoded again."""
    q = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(0)))[0]
    return SAE(W_enc=q.T.contiguous(), W_dec=q.contiguous(), b_enc=torch.zeros(D), b_dec=-beta * q.sum(0))


def encode_here(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    return torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)


def random_sae(seed: int = 0, transcoder: bool = False) -> SAE:
    g = torch.Generator().manual_seed(seed)
    return SAE(W_enc=torch.randn(D, 96, generator=g) * 0.3, W_dec=torch.randn(96, D, generator=g) * 0.3,
               b_enc=torch.randn(96, generator=g) * 0.1, b_dec=torch.randn(D, generator=g) * 0.05,
               architecture="topk", k=12, transcoder=transcoder, apply_b_dec_to_input=not transcoder)


def test_a_clamped_latent_reads_back_its_value_at_every_position():
    lm, sae, j, c = _lm(), invertible_sae(), 5, 7.0
    result = lm.generate(PROMPT, max_new_tokens=6, steer={(sae, "blocks.1.hook_resid_post"): {j: c}})
    plain, steered = result.require_outputs()
    n = len(steered.token_ids)
    block_out = torch.from_numpy(steered.hidden_states[2])  # block 1's output, as the steered analysis held it
    read = encode_here(sae, block_out)
    np.testing.assert_allclose(read[:, j].numpy(), np.full(n, c), rtol=0, atol=1e-4)
    # over the prompt (the same tokens in both) the other latents are the plain run's, and latent j was moved
    n_prompt = len(lm.encode(PROMPT))
    before = encode_here(sae, torch.from_numpy(plain.hidden_states[2][:n_prompt]))
    others = [i for i in range(D) if i != j]
    np.testing.assert_allclose(read[:n_prompt, others].numpy(), before[:, others].numpy(), rtol=0, atol=1e-4)
    assert (before[:, j] - c).abs().min() > 1e-2

    # the continuation: greedy generation under a clamp written here (block 1's output + (c - a_j) * row j)
    def clamp(m, args, output):
        h = output[0] if isinstance(output, tuple) else output
        delta = (c - encode_here(sae, h)[..., j:j + 1]) * sae.W_dec[j]
        return (h + delta, *output[1:]) if isinstance(output, tuple) else h + delta

    hook = lm.model.get_submodule(BLOCK["llama"]).register_forward_hook(clamp)
    try:
        ids = torch.tensor([lm.encode(PROMPT)])
        with torch.no_grad():
            want = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                     pad_token_id=0)[0].tolist()
    finally:
        hook.remove()
    assert result.token_ids_steered.tolist() == want


def test_an_empty_steer_gives_the_plain_output_exactly():
    lm = _lm()
    sae = random_sae()
    result = lm.generate(PROMPT, max_new_tokens=8, steer={(sae, "blocks.1.hook_resid_post"): {}})
    plain = lm.generate(PROMPT, max_new_tokens=8)
    assert result.token_ids_steered.tolist() == result.token_ids_plain.tolist() == plain.token_ids.tolist()
    assert np.array_equal(result.ranks_steered, plain.ranks) and np.array_equal(result.ranks_plain, plain.ranks)
    assert not result.differs.any() and result.steer == []
    assert lm.generate(PROMPT, max_new_tokens=8, steer={}).token_ids_steered.tolist() == plain.token_ids.tolist()


@pytest.mark.parametrize("family,transcoder", [("llama", False), ("gpt2", False), ("gpt2", True)],
                         ids=["llama", "gpt2", "gpt2-transcoder"])
def test_the_added_mode_shifts_the_site_by_value_times_the_decoder_row(family, transcoder):
    lm, j, value = _lm(family), 11, 3.0
    sae = random_sae(transcoder=transcoder)
    site = ("blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out") if transcoder else "blocks.1.hook_resid_post"
    result = lm.generate(PROMPT, max_new_tokens=4, steer={(sae, site): {j: ("add", value)}})
    plain, steered = result.require_outputs()
    n_prompt = len(lm.encode(PROMPT))
    # block 1's output over the prompt (same tokens in both): shifted by value x row j, whether the site is the
    # residual itself or the MLP's output that is added to it (GPT-2's centred sites are shifted in the raw stream)
    shift = steered.hidden_states[2][:n_prompt] - plain.hidden_states[2][:n_prompt]
    np.testing.assert_allclose(shift, np.tile(value * sae.W_dec[j].numpy(), (n_prompt, 1)), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(steered.hidden_states[1][:n_prompt], plain.hidden_states[1][:n_prompt])  # before it
    assert result.steer == [{"dictionary": result.steer[0]["dictionary"], "site": result.steer[0]["site"],
                             "feature": j, "mode": "add", "value": value}]


def test_checked_before_any_forward():
    lm = _lm()
    calls = []
    lm.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    sae = random_sae()
    wide = SAE(W_enc=torch.zeros(32, 8), W_dec=torch.zeros(8, 32), b_enc=torch.zeros(8), b_dec=torch.zeros(32))
    site = "blocks.1.hook_resid_post"
    cases = [({(sae, site): {96: 1.0}}, "feature 96 does not exist.*96 latents"),
             ({(sae, site): {-1: 1.0}}, "feature -1 does not exist"),
             ({(sae, site): {"3": 1.0}}, "integers"),
             ({(wide, site): {0: 1.0}}, "reads 32 values per token.*holds 64"),
             ({(sae, site): {3: ("scale", 2.0)}}, r"\('add', value\)"),
             ({(sae, site): {3: float("nan")}}, "finite number"),
             ({(sae, site): [3]}, "must be a dict"),
             ({"sae": {3: 1.0}}, "ew.SAE objects"),
             ([sae], "steer maps dictionaries"),
             ({sae: {3: 1.0}}, "name no site")]
    for steer, message in cases:
        with pytest.raises(InputError, match=message):
            lm.generate(PROMPT, max_new_tokens=3, steer=steer)
    with pytest.raises(InputError, match="greedy"):
        lm.generate(PROMPT, max_new_tokens=3, do_sample=True, steer={(sae, site): {3: 1.0}})
    with pytest.raises(InputError, match="cannot be written back"):
        lm.generate(PROMPT, max_new_tokens=3, steer={(sae, "blocks.1.ln2.hook_normalized"): {3: 1.0}})
    assert calls == []


def test_saved_loaded_and_shown_side_by_side(tmp_path):
    lm, sae = _lm(), invertible_sae()
    result = lm.generate(PROMPT, max_new_tokens=6, steer={(sae, "blocks.1.hook_resid_post"): {5: 40.0, 9: 0.0}})
    n = len(result.token_ids_plain)
    assert len(result.token_ids_steered) == n  # no end-of-text token in this vocabulary: both ran 6 steps
    differs = result.token_ids_plain != result.token_ids_steered
    assert differs.any(), "the steering changed nothing; pick a stronger value"
    back = ew.load(result.save(tmp_path / "steer"))
    assert type(back) is ew.SteeringResult and back.plain is None
    for name in ("token_ids_plain", "token_ids_steered", "ranks_plain", "ranks_steered"):
        assert np.array_equal(getattr(back, name), getattr(result, name)), name
    assert back.steer == result.steer and back.steered_text == result.steered_text
    assert [(d["feature"], d["mode"], d["value"]) for d in back.steer] == [(5, "clamp", 40.0), (9, "clamp", 0.0)]
    view = back.view()
    assert isinstance(view, PromptPairView)
    assert view.differs.tolist() == differs.astype(int).tolist()
    assert view.tokens_a == result.tokens_plain and view.tokens_b == result.tokens_steered
    with pytest.raises(ew.NotAvailableError, match="again"):
        back.require_outputs()
