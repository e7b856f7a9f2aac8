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
