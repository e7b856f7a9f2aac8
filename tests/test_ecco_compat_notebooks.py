"""Ecco's own notebooks run through ``from ecco_widgets import ecco`` (issue 29), and their views render in Chromium.

Every code cell of the ten notebooks in tests/data/ecco_notebooks runs, changed only as tests/ecco_notebooks.py
lists (the import line, ``!pip`` lines, model names -> local models, vocabulary-dependent token ids / positions).
The one cell that cannot run is CANNOT_RUN's, with its reason. Each cell whose last line calls a view returns a
view, and every such view renders on an offline page with no console error. Marked slow: the local models use the
bundled SmolLM2's tokenizer and ``gpt2`` is SmolLM2 itself.
"""

from __future__ import annotations

import ast
import re

import pytest

from ecco_notebooks import CANNOT_RUN, EDITED_IDS, EDITS, NOTEBOOKS, build_models, cell_source, code_cells, \
    run_notebook
from ecco_widgets.views.base import EccoView

pytestmark = pytest.mark.slow

NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
VIEW_CALLS = {"rankings", "rankings_watch", "layer_predictions", "primary_attributions", "saliency", "explore"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("ecco_models"))


@pytest.fixture(scope="module")
def runs(models):
    """Each notebook run once for the module: {name: {cell index: value}}."""
    cache: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in cache:
            cache[name] = run_notebook(name, models)
        return cache[name]

    return get


def _view_call(source: str) -> str | None:
    """The method name when a cell's last line is a call of one of Ecco's view methods."""
    body = ast.parse(source).body
    if body and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, ast.Call):
        func = body[-1].value.func
        if isinstance(func, ast.Attribute) and func.attr in VIEW_CALLS:
            return func.attr
    return None


def test_the_ten_notebooks_are_here():
    assert len(NAMES) == 10 and (NOTEBOOKS / "LICENSE").read_text().startswith("BSD 3-Clause License")


def test_only_the_listed_edits_change_the_cells(models):
    """Besides the import line, the pip lines and model names, the cells run as saved; every EDIT applies."""
    for name in NAMES:
        applied = {old for old, _, _ in EDITS.get(name, [])
                   if any(old in source for _, source in code_cells(name))}
        assert applied == {old for old, _, _ in EDITS.get(name, [])}, name
        for _, source in code_cells(name):
            text = cell_source(name, source, models)
            assert not re.search(r"^\s*import ecco\s*$", text, flags=re.M) and "!pip" not in text


def test_the_edited_token_ids_are_the_same_words(models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["distilgpt2"])
    for words, ids in EDITED_IDS.items():
        assert tok(words)["input_ids"] == ids, words


@pytest.mark.parametrize("name", NAMES)
def test_every_cell_runs(name, runs, models):
    results = runs(name)
    cells = code_cells(name)
    assert sorted(results) == [i for i, _ in cells]
    n_views = 0
    for index, source in cells:
        if (name, index) in CANNOT_RUN:
            assert isinstance(results[index], CANNOT_RUN[(name, index)][0])
            continue
        if _view_call(cell_source(name, source, models)):
            assert isinstance(results[index], EccoView), (name, index, type(results[index]))
            n_views += 1
    assert n_views >= 1 or name == "Ecco_CCA_Similarity.ipynb"


def test_cca_notebook_numbers(runs):
    """The CCA notebook's similarities are numbers in [0, 1], and the embedding is most like the first layer."""
    results = runs("Ecco_CCA_Similarity.ipynb")
    embed_shape, layer_shape, n_layers = results[7]
    assert embed_shape == layer_shape and embed_shape[0] == 384 and n_layers == 6
    assert 0 <= results[11] <= results[9] <= 1 and 0 <= results[13] <= 1


@pytest.fixture(scope="module")
def page(browser_context):
    """New pages of the run's one Chromium (tests/conftest.py: a second sync_playwright() in this thread fails)."""
    from browser._harness import Probe

    return lambda: Probe(browser_context.new_page())


@pytest.mark.browser
@pytest.mark.parametrize("name", [n for n in NAMES if n != "Ecco_CCA_Similarity.ipynb"])
def test_every_view_renders_in_chromium(name, runs, page, tmp_path):
    views = [v for v in runs(name).values() if isinstance(v, EccoView)]
    probe = page()
    try:
        probe.open_export(views, tmp_path / "views.html", title=name)
        for i, view in enumerate(views):
            root = probe.page.query_selector(f"#ew-view-{i} .ew-root")
            assert root is not None and root.get_attribute("data-ew-view") == view._bundle
            box = root.bounding_box()
            assert box and box["width"] > 50 and box["height"] > 30, (name, i, type(view).__name__)
        probe.assert_clean()
    finally:
        probe.page.close()
