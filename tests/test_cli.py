"""The ecco-widgets command line: help text, bad input, and a real page from the bundled model (slow)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ecco_widgets import cli


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    text = capsys.readouterr().out
    for option in ("--prompt", "--model", "--generate", "--attribution", "--activations", "--out", "--watch"):
        assert option in text


def test_watch_tokens_keep_their_leading_space():
    assert cli._watch_tokens(" is, are") == [" is", " are"]
    assert cli._watch_tokens("is,are") == ["is", " are"]
    assert cli._watch_tokens("") == []


def test_unknown_attribution_method_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["render", "--prompt", "Hi", "--attribution", "magic", "--out", str(tmp_path / "x.html")])
    assert code == 2
    assert "Unknown attribution method(s) ['magic']" in capsys.readouterr().err


@pytest.mark.slow
def test_render_writes_an_offline_page_with_every_view(tmp_path, demo_lm):
    page = tmp_path / "page.html"
    result = subprocess.run(
        [sys.executable, "-m", "ecco_widgets.cli", "render", "--prompt", "The keys to the cabinet are",
         "--generate", "3", "--attribution", "grad_x_input", "--activations", "--factors", "3",
         "--watch", " is, are", "--out", str(page)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stdout and "ecco-widgets" in result.stderr  # progress bar on stderr
    html = page.read_text()
    views = json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', html, re.S).group(1))
    assert [v["bundle"] for v in views] == ["explorer", "rank_grid", "layer_predictions", "rank_watch", "saliency",
                                           "factor_explorer"]
    explorer = views[0]["state"]
    assert explorer["selected_token"] == 6 and explorer["watch_tokens"] == [" is", " are"]  # the first explained token
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)


def test_render_adds_a_context_mixing_view_per_mixing_method(tmp_path, demo_lm):
    page = tmp_path / "mixing.html"
    result = subprocess.run(
        [sys.executable, "-m", "ecco_widgets.cli", "render", "--prompt", "The keys to the cabinet are",
         "--attribution", "rollout,grad_x_input", "--out", str(page)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    views = json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', page.read_text(),
                                 re.S).group(1))
    assert [v["bundle"] for v in views] == ["explorer", "rank_grid", "layer_predictions", "saliency", "context_mixing"]
    assert views[-1]["state"]["title"] == "Context mixing (rollout), layer by layer"


def test_bad_lens_is_refused_before_the_model_loads(tmp_path, capsys):
    assert cli.main(["render", "--prompt", "Hi", "--lens", "tuned", "--out", str(tmp_path / "x.html")]) == 2
    assert "--lens must be 'logit' or 'tuned:DIR'" in capsys.readouterr().err
    assert cli.main(["render", "--prompt", "Hi", "--lens", f"tuned:{tmp_path}", "--out", str(tmp_path / "x.html")]) == 2
    assert "lacks config.json, params.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["render", "--prompt", "Hi", "--metric", "logits", "--out", str(tmp_path / "x.html")])


@pytest.mark.slow
def test_render_through_a_tuned_lens_adds_the_comparison(tmp_path, demo_lm):
    import ecco_widgets as ew

    folder = ew.TunedLens.identity(demo_lm.spec.n_layers, 576,
                                   unembed_hash=ew.analysis.tuned_lens_files.unembedding_hash(
                                       demo_lm.spec.unembedding.weight)).save(tmp_path / "lens")
    page = tmp_path / "page.html"
    code = cli.main(["render", "--prompt", "The keys to the cabinet are", "--lens", f"tuned:{folder}",
                     "--metric", "kl", "--out", str(page)])
    assert code == 0
    html = page.read_text()
    views = json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', html, re.S).group(1))
    assert [v["bundle"] for v in views] == ["explorer", "rank_grid", "lens_compare", "layer_predictions"]


def test_view_position_defaults_to_the_last_prompt_token_and_counts_negatives_from_the_end():
    assert cli.view_position(None, n_tokens=9, n_input_tokens=6) == 5
    assert cli.view_position(-1, 9, 6) == 8
    assert cli.view_position(-9, 9, 6) == 0
    assert cli.view_position(3, 9, 6) == 3
    for bad in (9, -10):
        with pytest.raises(cli.EccoWidgetsError, match="out of range"):
            cli.view_position(bad, 9, 6)
    assert cli.build_parser().parse_args(["render", "--prompt", "a", "--out", "x", "--position", "-2"]).position == -2


def _views_of(page):
    html = page.read_text()
    return json.loads(re.search(r'<script type="application/json" id="ew-views">(.*?)</script>', html, re.S).group(1))


@pytest.mark.slow
def test_layer_and_watch_views_are_taken_after_the_prompt_by_default_and_at_position(tmp_path, demo_lm):
    prompt = "The keys to the cabinet are"
    n_prompt = len(demo_lm.tokenizer(prompt)["input_ids"])
    page = tmp_path / "page.html"
    assert cli.main(["render", "--prompt", prompt, "--generate", "3", "--watch", " is, are", "--out", str(page)]) == 0
    views = {v["bundle"]: v["state"] for v in _views_of(page)}
    lp, watch = views["layer_predictions"], views["rank_watch"]
    assert lp["position"] == watch["position"] == n_prompt - 1  # old code: the last generated token
    assert lp["context_token"] == " are" and len(watch["tokens"]) == n_prompt
    assert f'after token {n_prompt - 1} " are" (the last prompt token)' in lp["title"]
    assert f'after token {n_prompt - 1} " are"' in watch["title"]

    assert cli.main(["render", "--prompt", prompt, "--generate", "3", "--watch", " is", "--position", "-1",
                     "--out", str(page)]) == 0
    views = {v["bundle"]: v["state"] for v in _views_of(page)}
    assert views["layer_predictions"]["position"] == views["rank_watch"]["position"] == n_prompt + 2
    assert f"after token {n_prompt + 2} " in views["layer_predictions"]["title"]
    assert views["explorer"]["selected_token"] == n_prompt + 2  # --position also picks the explorer's token
    assert cli.main(["render", "--prompt", prompt, "--position", "99", "--out", str(page)]) == 2


@pytest.mark.slow
def test_the_explorer_opens_on_the_first_explained_token(tmp_path, demo_lm):
    """Issue 30: the demo page's explorer opened on the last prompt token, whose panel read "token 5 is not
    explained"; it opens on the first generated token now, and its title names it."""
    prompt = "The keys to the cabinet are"
    n_prompt = len(demo_lm.tokenizer(prompt)["input_ids"])
    page = tmp_path / "page.html"
    assert cli.main(["render", "--prompt", prompt, "--generate", "2", "--attribution", "grad_x_input",
                     "--out", str(page)]) == 0
    explorer = {v["bundle"]: v["state"] for v in _views_of(page)}["explorer"]
    assert explorer["selected_token"] == n_prompt and list(explorer["targets"]["shape"]) == [2]
    assert f"(at first token {n_prompt} " in explorer["title"]
