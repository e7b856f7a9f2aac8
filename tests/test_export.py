"""Offline export: one self-contained HTML file following docs/view_contract.md."""

from __future__ import annotations

import ast
import base64
import json
import pathlib
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import ecco_widgets.views.bundles as bundles_module
from ecco_widgets.views import REGISTRY, NeuronHeatmap, RankGrid, SaliencyView
from ecco_widgets.views.export import json_for_script, save_html, to_html

REAL_STATIC = bundles_module.STATIC_DIR
#: every built bundle: the views' and the extra ones (standalone), from ecco_widgets/views/registry.json
ALL_BUNDLES = [*(e["bundle"] for e in REGISTRY["views"]), *REGISTRY["extra_bundles"]]
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "<b>bold</b>",
    "\"quotes\" & 'apos' &amp;",
    "\u202eRTL override",
    "zero\u200bwidth\u200d",
    "x" * 3000,
    "{{7*7}}",
    "<!-- comment",
    "\u2028line\u2029sep",
]


def _bundles_built() -> bool:
    return all((REAL_STATIC / f"{b}.js").is_file() for b in ALL_BUNDLES)


@pytest.fixture(autouse=True)
def _static(tmp_path_factory, monkeypatch):
    if not _bundles_built():
        stub = tmp_path_factory.mktemp("static")
        for b in ALL_BUNDLES:
            (stub / f"{b}.js").write_text(
                "export default { render({ el }) { el.textContent = 'a < b && c > d'; } };\n"
            )
        monkeypatch.setattr(bundles_module, "STATIC_DIR", stub)
    yield


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._in_script: dict | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "script":
            self._in_script = a
            self._buf = []

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script is not None:
            self.scripts.append((self._in_script, "".join(self._buf)))
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._buf.append(data)


def _parse(text: str) -> _Collector:
    c = _Collector()
    c.feed(text)
    c.close()
    return c


def _views(tokens=None):
    rng = np.random.default_rng(0)
    toks = tokens or ["The", " cat", " sat", " on", " the", " mat"]
    n = len(toks)
    grid = RankGrid(
        tokens=toks,
        ranks=rng.integers(1, 50000, size=(6, n - 1)).astype(np.int64),
        n_input_tokens=min(3, n),
        topk_vocab=toks[:3],
        topk_index=rng.integers(0, 3, size=(6, n - 1, 3)),
        topk_probs=rng.random((6, n - 1, 3)).astype(np.float16) / 3,
        title="Rank grid <b>&</b>",
    )
    sal = SaliencyView(
        tokens=toks,
        targets=[n - 2, n - 1],
        attributions={"ig": rng.random((2, n)), "gxi": rng.normal(size=(2, n))},
        n_input_tokens=min(3, n),
    )
    heat = NeuronHeatmap(tokens=toks, activations=rng.normal(size=(5, n)))
    return [grid, sal, heat]


def _decode(arr: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(arr["base64"]), dtype=np.dtype(arr["dtype"]).newbyteorder("<")).reshape(
        arr["shape"]
    )


def test_structure_follows_contract(tmp_path):
    views = _views()
    path = save_html(views, tmp_path / "out.html", title="My <page>")
    assert isinstance(path, pathlib.Path) and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    doc = _parse(text)
    divs = [a for t, a in doc.tags if t == "div" and a.get("class") == "ew-view"]
    assert [d["id"] for d in divs] == ["ew-view-0", "ew-view-1", "ew-view-2"]
    by_id = {a.get("id"): (a, body) for a, body in doc.scripts}
    assert by_id["ew-bundles"][0]["type"] == "application/json"
    assert by_id["ew-views"][0]["type"] == "application/json"
    modules = [body for a, body in doc.scripts if a.get("type") == "module"]
    assert len(modules) == 1
    standalone = (bundles_module.STATIC_DIR / "standalone.js").read_text(encoding="utf-8")
    assert modules[0].strip() == standalone.strip()
    assert len(doc.scripts) == 3  # nothing else executes
    bundles = json.loads(by_id["ew-bundles"][1])
    assert set(bundles) == {"rank_grid", "saliency", "neuron_heatmap"}
    assert bundles["rank_grid"] == (bundles_module.STATIC_DIR / "rank_grid.js").read_text(encoding="utf-8")
    entries = json.loads(by_id["ew-views"][1])
    assert [(e["target"], e["bundle"]) for e in entries] == [
        ("ew-view-0", "rank_grid"),
        ("ew-view-1", "saliency"),
        ("ew-view-2", "neuron_heatmap"),
    ]
    assert "<title>My &lt;page&gt;</title>" in text


def test_arrays_roundtrip_via_base64(tmp_path):
    views = _views()
    text = to_html(views)
    doc = _parse(text)
    entries = json.loads(next(body for a, body in doc.scripts if a.get("id") == "ew-views"))
    grid, sal, heat = views
    st = entries[0]["state"]
    assert st["ranks"]["dtype"] == ("uint8" if grid.ranks.max() < 256 else "uint16")  # narrowest integer dtype
    np.testing.assert_array_equal(_decode(st["ranks"]), grid.ranks)
    assert st["topk_probs"]["dtype"] == "float32"  # float16 -> float32
    np.testing.assert_array_equal(_decode(st["topk_probs"]), grid.topk_probs)
    np.testing.assert_array_equal(_decode(st["topk_index"]), grid.topk_index)
    assert st["tokens"] == grid.tokens and st["title"] == grid.title
    st = entries[1]["state"]
    np.testing.assert_array_equal(_decode(st["attributions"]), sal.attributions)
    np.testing.assert_array_equal(_decode(st["targets"]), sal.targets)
    assert st["methods"] == ["ig", "gxi"] and st["method"] == "ig"
    np.testing.assert_array_equal(_decode(entries[2]["state"]["activations"]), heat.activations)


def test_self_contained_no_network_refs():
    text = to_html(_views())
    doc = _parse(text)
    for tag, attrs in doc.tags:
        for key in ("src", "href", "action", "data", "poster"):
            val = attrs.get(key)
            if val is not None:
                assert not re.match(r"\s*(https?:)?//", val), (tag, key, val)
    # no external resource references anywhere in the markup outside the JSON/JS blobs
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S | re.I)
    for needle in ("http://", "https://", "//cdn", "src=", "href="):
        assert needle not in markup, needle
    assert "Content-Security-Policy" in text


def test_hostile_tokens_cannot_escape_json(tmp_path):
    toks = HOSTILE
    views = _views(tokens=toks)
    text = to_html(views, title="</script><script>alert(1)</script>")
    doc = _parse(text)
    # still exactly the three scripts, i.e. nothing broke out of a JSON block
    assert len(doc.scripts) == 3
    for attrs, body in doc.scripts:
        if attrs.get("type") == "application/json":
            assert not re.search(r"</script", body, re.I)
            assert "<" not in body and ">" not in body and "&" not in body
            assert "\u2028" not in body and "\u2029" not in body
    assert not any(t in ("img", "b") for t, _ in doc.tags)
    entries = json.loads(next(body for a, body in doc.scripts if a.get("id") == "ew-views"))
    for e in entries:
        assert e["state"]["tokens"] == toks
    assert entries[0]["state"]["title"] == "Rank grid <b>&</b>"


def test_json_for_script_escapes():
    s = json_for_script({"a": "</script><!--&", "b": [1.5, None]})
    assert s == '{"a":"\\u003c/script\\u003e\\u003c!--\\u0026","b":[1.5,null]}'
    assert json.loads(s) == {"a": "</script><!--&", "b": [1.5, None]}


def test_rejects_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        to_html([])
    with pytest.raises(TypeError):
        to_html([object()])
    stub = tmp_path / "static"
    stub.mkdir()
    for b in ALL_BUNDLES:
        (stub / f"{b}.js").write_text("export default {render(){}};")
    (stub / "standalone.js").write_text("document.write('</SCRIPT>');")
    monkeypatch.setattr(bundles_module, "STATIC_DIR", stub)
    with pytest.raises(ValueError, match="</script"):
        to_html(_views()[0])


def test_same_bundle_inlined_once():
    views = _views() + [_views()[0]]
    doc = _parse(to_html(views))
    bundles = json.loads(next(body for a, body in doc.scripts if a.get("id") == "ew-bundles"))
    assert sorted(bundles) == ["neuron_heatmap", "rank_grid", "saliency"]


def _module_imports(module) -> list[ast.ImportFrom]:
    """The module-level ``from ... import`` statements of a module (not those inside functions)."""
    tree = ast.parse(pathlib.Path(module.__file__).read_text(encoding="utf-8"))
    return [node for node in tree.body if isinstance(node, ast.ImportFrom)]


def test_export_uses_public_names_and_no_import_cycle():
    import ecco_widgets.views.export as export

    for node in _module_imports(export):
        assert not any(a.name.startswith("_") for a in node.names), f"export imports a private name: {ast.dump(node)}"
    # export reads views by their shape (ExportableView) and imports no view module, so base can import it (arrays,
    # for ViewValueError, imports nothing of the package)
    assert {node.module for node in _module_imports(export)} <= {"__future__", "collections.abc", "typing", "bundles",
                                                                   "arrays"}
