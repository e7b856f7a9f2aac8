"""ew.demo_sae(): the bundled model's dictionary, trained at first use into the cache, then loaded from it."""

from __future__ import annotations

import json

import pytest
import torch

import ecco_widgets as ew
from ecco_widgets.errors import InputError

SMALL = {"width": 64, "k": 4, "tokens": 1024, "epochs": 1.0, "batch_size": 256, "context": 64, "held_out": 1}


def test_demo_sae_trains_once_into_the_cache_then_loads(demo_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("ECCO_WIDGETS_CACHE", str(tmp_path))
    sae = ew.demo_sae(demo_lm, progress=False, **SMALL)
    folders = list((tmp_path / "saes").iterdir())
    assert len(folders) == 1 and (folders[0] / "cfg.json").is_file()
    cfg = json.loads((folders[0] / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == "blocks.15.hook_resid_post" and cfg["d_sae"] == 64
    evaluation = cfg["metadata"]["evaluation"]  # held-out metrics computed at training time
    assert evaluation["n_tokens"] > 0 and 0 <= evaluation["dead"] <= 1 and evaluation["ce_recovered"] is not None
    forwards = []
    handle = demo_lm.model.register_forward_pre_hook(lambda *a: forwards.append(1))
    try:
        again = ew.demo_sae(demo_lm, progress=False, **SMALL)
    finally:
        handle.remove()
    assert not forwards  # loaded from the cache: no harvest, no training
    assert torch.equal(again.W_enc, sae.W_enc)
    out = demo_lm.analyze("The keys to the cabinet are", saes=[again])
    assert list(out.features) and next(iter(out.features.values())).l0 == pytest.approx(4.0)


def test_demo_sae_refuses_another_model(tiny_llama_lm):
    with pytest.raises(InputError, match="bundled model's dictionary"):
        ew.demo_sae(tiny_llama_lm)
