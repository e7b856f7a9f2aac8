"""Issue 30: every default fits a 3-token prompt, on a model with 2 layers and on the real 30-layer SmolLM2.

Before this, ``out.run_nmf()`` (8 factors by default) raised on any text of fewer than 9 tokens, so the first thing a
newcomer tried on "the cat sees" failed. Each call below is what a user types with no options; the checks are the
shapes the call must have on this input, written out here.
"""

from __future__ import annotations

import numpy as np
import pytest

import ecco_widgets as ew
from ecco_widgets.errors import InputError

pytestmark = pytest.mark.slow

PROMPT = "the cat sees"


@pytest.fixture(scope="module")
def two_layer_lm(tiny_llama_lm):
    """A random 2-layer Llama with the bundled model's tokenizer (tests/conftest.py)."""
    return tiny_llama_lm


@pytest.fixture(scope="module", params=["two_layers", "smollm2"])
def lm(request, demo_lm, two_layer_lm):
    return demo_lm if request.param == "smollm2" else two_layer_lm


@pytest.fixture(scope="module")
def out(lm):
    out = lm.analyze(PROMPT, attribution=("saliency", "grad_x_input"), activations=True, attention=True)
    assert out.n_tokens == 3, out.tokens  # the premise: a 3-token prompt
    return out


def test_nmf_default_takes_what_the_text_allows(out):
    nmf = out.run_nmf()
    # the first token is left out of the fit, so 2 rows remain: 2 factors, not the 8 a long text gets
    assert nmf.n_components == 2 and nmf.factors.shape == (2, 3)
    assert nmf.note == "2 factors, the most these 2 tokens after the first allow (the default is 8)"
    view = nmf.explore()
    assert nmf.note in view.title and len(view.factor_labels) == 2
    with pytest.raises(InputError, match="n_components=8 is not possible here"):
        out.run_nmf(n_components=8)  # an explicit number that cannot be honoured stays an error
    full = out.run_nmf(exclude_first=False)
    assert full.n_components == 3 and "3 tokens allow" in full.note


def test_nmf_default_on_a_long_text_is_eight_without_a_note(lm):
    long = lm.analyze(" ".join(["the cat sees the dog"] * 3), activations=True)
    nmf = long.run_nmf()
    assert nmf.n_components == 8 and nmf.note == ""
    assert "factors, the most" not in nmf.explore().title


def test_every_view_with_its_defaults(out):
    n_layers = out.ranks.shape[0]
    assert out.rankings().ranks.shape == (n_layers, 2)  # ranks of tokens 1 and 2, at every layer
    preds = out.layer_predictions()
    assert preds.topk_index.shape == (n_layers, 5) and preds.position == 2
    assert out.rankings_watch([" the", " a"]).ranks.shape == (n_layers, 2)
    saliency = out.primary_attributions()
    assert saliency.attributions.shape == (2, 2, 3)  # 2 methods x targets 1 and 2 x 3 tokens
    explorer = out.explore()
    assert explorer.selected_token in (1, 2)  # opens on an explained token, not one with nothing to show
    assert explorer.attention_values.shape[1:] == (3, 3) and explorer.neuron_values.shape[0] == 3
    assert out.explore(nmf=out.run_nmf()).factors.shape == (2, 3)
    assert out.attention(0).attention.shape[1:] == (3, 3)
    assert out.neuron_heatmap(0, [0, 1]).activations.shape == (2, 3)
    assert len(out.top_neurons(-1)) == 10
    assert out.first_layer_at_rank().shape == (2,)
    assert len(out.layer_topk(-1, 5)) == n_layers


def test_generate_and_patching_defaults(two_layer_lm):
    lm = two_layer_lm
    gen = lm.generate(PROMPT, max_new_tokens=2, attribution=("ig",), activations=True)
    assert gen.n_tokens == 5
    assert gen.run_nmf().n_components == 4 and gen.primary_attributions().attributions.shape == (1, 2, 5)
    result = ew.patching(lm, PROMPT, "the dog sees", " the", " a")
    assert result.effect.shape == (gen.ranks.shape[0], 3) and np.isfinite(result.effect).all()
    assert len(result.grid().layer_labels) == result.effect.shape[0]


def test_a_one_token_text_says_why_nothing_is_explained(lm):
    with pytest.raises(InputError, match=r"this text has 1 token\. Give a longer text, or generate"):
        lm.analyze("Hi", attribution=("ig",))


def test_chat_batch_and_tuned_lens_defaults(two_layer_lm, tmp_path):
    lm = two_layer_lm
    chat = lm.chat([{"role": "user", "content": "Hi"}], max_new_tokens=2, attribution=("grad_x_input",))
    assert chat.n_tokens - chat.n_input_tokens == 2 and chat.explore().selected_token >= chat.n_input_tokens
    results = ew.batch(lm, [PROMPT, "Hi"], tmp_path / "run", generate=1, attribution=("grad_x_input",),
                       activations=True)
    assert len(results) == 2 and results[0].n_tokens == 4 and results.summary_view() is not None
    lens = ew.TunedLens.fit(lm, [PROMPT])
    assert lm.analyze(PROMPT, lens=lens).ranks.shape == (2, 2)


def test_cli_refuses_attribution_of_a_one_token_text_before_the_analysis(two_layer_lm, tmp_path, capsys,
                                                                          monkeypatch):
    from ecco_widgets import cli
    from ecco_widgets.models.causal_lm import LanguageModel

    two_layer_lm.model.save_pretrained(tmp_path / "model")
    two_layer_lm.tokenizer.save_pretrained(tmp_path / "model")

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr(LanguageModel, "analyze_ids", no_analysis)
    code = cli.main(["render", "--model", str(tmp_path / "model"), "--prompt", "Hi", "--attribution", "grad_x_input",
                     "--out", str(tmp_path / "page.html")])
    assert code == 2 and "add --generate N" in capsys.readouterr().err
