"""Interactive views (anywidget) of a language model's internals.

Each class is constructible from plain lists/arrays; see ``docs/view_contract.md``.  The views are
listed once, in ``registry.json`` (bundle, module, class); the JS build (``js/build.mjs``), the
classes exported here, :data:`BUNDLES` and the tests that loop over views all read that list.

Example:

>>> from ecco_widgets import views
>>> views.BUNDLES["RankGrid"]
'rank_grid'
>>> views.RankGrid.__module__
'ecco_widgets.views.rank_grid'
"""

from __future__ import annotations

import importlib
import json
import pathlib
from typing import Any

from .base import EccoView, ViewValueError

#: ``registry.json``: ``{"views": [{"bundle", "module", "class"}, ...], "extra_bundles": [...]}``.
REGISTRY_PATH = pathlib.Path(__file__).with_name("registry.json")
REGISTRY: dict[str, Any] = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))


def _view_classes() -> dict[str, type[EccoView]]:
    """Import each registered view module; class name -> class."""
    return {
        entry["class"]: getattr(importlib.import_module(f".{entry['module']}", __name__), entry["class"])
        for entry in REGISTRY["views"]
    }


globals().update(_view_classes())  # AttentionView, FactorExplorer, ... as attributes of this package

#: Python class name -> JS bundle name (``ecco_widgets/static/<bundle>.js``), in registry order.
BUNDLES: dict[str, str] = {entry["class"]: entry["bundle"] for entry in REGISTRY["views"]}

__all__ = sorted([*BUNDLES, "EccoView", "ViewValueError"])
