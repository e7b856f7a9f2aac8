"""Issue 31: defects a careless and a hostile user found, each with a test that failed before its fix.

Grouped by where they are: tuned-lens files, batch inputs, one-token texts, saved results, generation options, export.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ecco_widgets as ew
from ecco_widgets.analysis.tuned_lens_files import write_lens
from zoo import build


class _RunsCode:
    """Unpickling this calls print: a stand-in for a pickle that runs code."""

    def __reduce__(self):
        return (print, ("CODE RAN FROM A LENS FILE",))


# --------------------------------------------------------------------------- tuned-lens files (items 2 and 13)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_tuned_lens_with_non_finite_weights_is_refused(tmp_path, bad):
    weights = torch.zeros(3, 4, 4)
    weights[1, 2, 0] = bad
    folder = write_lens(tmp_path / "lens", weights, torch.zeros(3, 4), {"num_hidden_layers": 3})
    with pytest.raises(ew.NonFiniteError, match=r"weights hold NaN or infinite values \(translators \[1\]"):
        ew.TunedLens.load(folder)
    with pytest.raises(ew.NonFiniteError, match=r"biases hold NaN"):
        ew.TunedLens(torch.zeros(2, 4, 4), torch.full((2, 4), float("nan")))


def test_tuned_lens_pickle_that_runs_code_is_refused_plainly(tmp_path, capsys):
    folder = write_lens(tmp_path / "lens", torch.zeros(1, 2, 2), torch.zeros(1, 2), {"num_hidden_layers": 1})
    torch.save({"0.weight": _RunsCode(), "0.bias": torch.zeros(2)}, folder / "params.pt")
    with pytest.raises(ew.InputError, match=r"Refused to read .*params\.pt: it holds more than tensors") as info:
        ew.TunedLens.load(folder)
    assert "weights_only=False" not in str(info.value)
    assert "CODE RAN" not in capsys.readouterr().out


def test_tuned_lens_config_that_is_a_list_and_ragged_weights(tmp_path):
    folder = write_lens(tmp_path / "lens", torch.zeros(2, 3, 3), torch.zeros(2, 3), {"num_hidden_layers": 2})
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ew.InputError, match=r"config\.json holds a JSON list; a tuned-lens config is a JSON object"):
        ew.TunedLens.load(folder)
    folder = write_lens(tmp_path / "ragged", torch.zeros(2, 3, 3), torch.zeros(2, 3), {"num_hidden_layers": 2})
    torch.save({"0.weight": torch.zeros(3, 3), "0.bias": torch.zeros(3), "1.weight": torch.zeros(4, 4),
                "1.bias": torch.zeros(4)}, folder / "params.pt")
    with pytest.raises(ew.InputError, match=r"weights must all be \(d, d\) tensors"):
        ew.TunedLens.load(folder)


# --------------------------------------------------------------------------- batch inputs (item 4)


@pytest.fixture(scope="module")
def gpt2():
    return ew.from_pretrained(build("gpt2"))


@pytest.mark.parametrize("prompts, message", [
    ("The cat sat", r"prompts is one str \('The cat sat'\), which would run one prompt per character"),
    (b"The cat", r"prompts is one bytes"),
    ({"a": "The cat", "b": "A dog"}, r"prompts is a dict, which would run its keys"),
])
def test_batch_refuses_a_string_or_a_dict_of_prompts(gpt2, prompts, message, tmp_path):
    with pytest.raises(ew.InputError, match=message):
        ew.batch(gpt2, prompts, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the command line on small inputs


@pytest.fixture(scope="module")
def two_layer_folder(tmp_path_factory, demo_lm):
    """A random 2-layer Llama with the bundled model's tokenizer, saved as a folder (what `--model DIR` reads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = demo_lm.tokenizer
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    folder = tmp_path_factory.mktemp("two_layers")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _render(folder, tmp_path, *options):
    from ecco_widgets import cli

    page = tmp_path / "page.html"
    return cli.main(["render", "--model", str(folder), "--out", str(page), *options]), page


def _views(page):
    import re

    return json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', page.read_text(),
                                re.S).group(1))


@pytest.mark.slow
def test_render_defaults_fit_a_short_text(two_layer_folder, tmp_path, capsys):
    """Issue 30: `--activations` on a short text exited 2 (n_components=8 is not possible); the default now takes
    what the text allows and says so, every view renders."""
    code, page = _render(two_layer_folder, tmp_path, "--prompt", "the cat sees the", "--generate", "3",
                         "--activations")
    assert code == 0, capsys.readouterr().err
    views = _views(page)
    factors = next(v for v in views if v["bundle"] == "factor_explorer")
    n = len(factors["state"]["tokens"])
    assert factors["state"]["factors"]["shape"][0] == n - 1
    assert f"{n - 1} factors, the most these {n} tokens allow" in factors["state"]["title"]


@pytest.mark.slow
@pytest.mark.parametrize("options, message", [
    (["--activations", "--factors", "8"], r"--factors 8 is more than this text can give"),
    (["--position", "9"], r"--position"),
    (["--watch", " cabinetry, are"], r"is not one token: it splits into"),
])
def test_render_options_are_checked_before_the_analysis(two_layer_folder, tmp_path, capsys, monkeypatch, options,
                                                         message):
    """Item 16: --factors, --position and --watch were checked only after the analysis ran."""
    import re

    from ecco_widgets.models.causal_lm import LanguageModel

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr(LanguageModel, "analyze_ids", no_analysis)
    code, _ = _render(two_layer_folder, tmp_path, "--prompt", "the cat sees the", *options)
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.slow
def test_one_token_prompt_renders_what_exists(two_layer_folder, tmp_path, capsys, demo_lm):
    """Item 9: a one-token prompt ended in a ViewValueError traceback."""
    code, page = _render(two_layer_folder, tmp_path, "--prompt", "Hello")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "is one token: there is no next token to rank" in err
    assert [v["bundle"] for v in _views(page)] == ["explorer", "layer_predictions"]
    out = demo_lm.analyze("Hello")
    with pytest.raises(ew.NotAvailableError, match=r"one token: there is no next token to rank"):
        out.rankings()
