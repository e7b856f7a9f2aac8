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
    assert [v["bundle"] for v in views] == ["rank_grid", "layer_predictions", "rank_watch", "saliency",
                                           "factor_explorer"]
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
