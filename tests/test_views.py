"""Python side of the views: array serializer, validation, construction (no browser)."""

from __future__ import annotations

import ast
import base64
import importlib
import inspect
import json
import pathlib

import numpy as np
import pytest

import ecco_widgets.views as views
import ecco_widgets.views.bundles as bundles_module
from ecco_widgets.views import (
    AttentionView,
    EccoView,
    FactorExplorer,
    LayerPredictions,
    LensComparison,
    NeuronHeatmap,
    RankGrid,
    RankWatch,
    SaliencyView,
)
from ecco_widgets.views import BUNDLES
from ecco_widgets.views.arrays import (
    ALLOWED_DTYPES,
    array_from_json,
    array_to_base64,
    array_to_json,
    normalize_array,
)
from ecco_widgets.views.base import ViewValueError

ROOT = pathlib.Path(__file__).resolve().parents[1]
REGISTRY = json.loads((ROOT / "ecco_widgets" / "views" / "registry.json").read_text(encoding="utf-8"))
ALL_VIEWS = [getattr(views, entry["class"]) for entry in REGISTRY["views"]]
REAL_STATIC = bundles_module.STATIC_DIR


def _bundles_built() -> bool:
    return all((REAL_STATIC / f"{b}.js").is_file() for b in BUNDLES.values())


def test_every_bundle_is_built_and_committed():
    missing = [b for b in [*BUNDLES.values(), *REGISTRY["extra_bundles"]] if not (REAL_STATIC / f"{b}.js").is_file()]
    assert not missing, f"missing bundles {missing}: run `make js` (cd js && npm run build)"


# --------------------------------------------------------------------------- the registry


def test_registry_entries_have_source_module_class_and_bundle():
    assert REGISTRY["views"], "registry.json lists no views"
    for key in ("bundle", "module", "class"):
        values = [e[key] for e in REGISTRY["views"]]
        assert len(set(values)) == len(values), f"duplicate {key} in registry.json: {values}"
    for entry in REGISTRY["views"]:
        assert (ROOT / "js" / "src" / f"{entry['bundle']}.js").is_file(), f"js/src/{entry['bundle']}.js is missing"
        assert (ROOT / "ecco_widgets" / "views" / f"{entry['module']}.py").is_file(), entry
        cls = getattr(importlib.import_module(f"ecco_widgets.views.{entry['module']}"), entry["class"])
        assert issubclass(cls, EccoView)
        assert cls._bundle == entry["bundle"], f"{cls.__name__}._bundle != registry bundle {entry['bundle']!r}"
        assert getattr(views, entry["class"]) is cls and entry["class"] in views.__all__
    for bundle in REGISTRY["extra_bundles"]:
        assert (ROOT / "js" / "src" / f"{bundle}.js").is_file(), f"js/src/{bundle}.js is missing"


def test_every_js_entry_is_in_the_registry():
    listed = {e["bundle"] for e in REGISTRY["views"]} | set(REGISTRY["extra_bundles"])
    entries = {p.stem for p in (ROOT / "js" / "src").glob("*.js")}  # top level only: lib/ is not an entry
    assert entries - listed == set(), f"js/src entries missing from ecco_widgets/views/registry.json: {entries - listed}"


def test_bundles_follow_the_registry():
    assert BUNDLES == {e["class"]: e["bundle"] for e in REGISTRY["views"]}
    assert set(views.__all__) == {*BUNDLES, "EccoView", "ViewValueError"}


def test_every_view_module_is_in_the_registry():
    infrastructure = {"__init__", "arrays", "base", "bundles", "chat_marks", "explorer_panels", "export", "figure",
                      "hosts"}
    modules = {p.stem for p in (ROOT / "ecco_widgets" / "views").glob("*.py")} - infrastructure
    assert modules == {e["module"] for e in REGISTRY["views"]}


def _imported_modules(node: ast.AST) -> list[str]:
    """Absolute names of what an import statement inside ecco_widgets/views/ imports."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        package = ["ecco_widgets", "views"][: max(0, 3 - node.level)] if node.level else []
        return [".".join([*package, node.module] if node.module else package)]
    return []


def test_views_import_nothing_else_from_ecco_widgets():
    """views/ is a leaf: it may use ecco_widgets.errors, nothing else of the package (not even lazily)."""
    allowed = ("ecco_widgets.views", "ecco_widgets.errors")
    for path in (ROOT / "ecco_widgets" / "views").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported_modules(node):
                if name == "ecco_widgets" or name.startswith("ecco_widgets."):
                    assert name in allowed or name.startswith(tuple(f"{a}." for a in allowed)), (
                        f"{path.name}:{node.lineno} imports {name}"
                    )


def test_rows_views_keep_their_signatures():
    sig = inspect.signature(FactorExplorer)
    assert list(sig.parameters) == [
        "tokens", "factors", "factor_labels", "selected_factor", "n_input_tokens", "raw_tokens", "kwargs"
    ]
    assert list(inspect.signature(AttentionView).parameters)[:4] == ["tokens", "attention", "head_labels", "selected_token"]
    with pytest.raises(TypeError, match="activations"):
        NeuronHeatmap(tokens=["a"])
    h = NeuronHeatmap(["a", "b"], np.ones((1, 2)), title="t")  # positional tokens and array
    assert h.title == "t" and h.neuron_labels == ["#0"]


# --------------------------------------------------------------------------- synthetic data

TOKENS = ["The", " cat", " sat", " on", " the", " mat"]
N = len(TOKENS)


def make_view(cls, rng=None):
    rng = rng or np.random.default_rng(0)
    if cls is SaliencyView:
        return SaliencyView(
            tokens=TOKENS,
            targets=[3, 4, 5],
            n_input_tokens=3,
            attributions={"ig": rng.random((3, N)), "grad_x_input": rng.normal(size=(3, N))},
        )
    if cls is RankGrid:
        return RankGrid(
            tokens=TOKENS,
            ranks=rng.integers(1, 5000, size=(4, N - 1)),
            n_input_tokens=3,
            topk_vocab=[" a", " b", " c"],
            topk_index=rng.integers(0, 3, size=(4, N - 1, 3)),
            topk_probs=rng.random((4, N - 1, 3)) / 3,
        )
    if cls is RankWatch:
        return RankWatch(tokens=TOKENS, watch_tokens=[" is", " are"], ranks=rng.integers(1, 100, size=(4, 2)))
    if cls is LayerPredictions:
        return LayerPredictions(
            position=5,
            context_token=" mat",
            topk_vocab=[".", ",", " and"],
            topk_index=rng.integers(0, 3, size=(4, 3)),
            topk_probs=rng.random((4, 3)) / 3,
        )
    if cls is FactorExplorer:
        return FactorExplorer(tokens=TOKENS, factors=rng.random((3, N)), n_input_tokens=3)
    if cls is NeuronHeatmap:
        return NeuronHeatmap(tokens=TOKENS, activations=rng.normal(size=(8, N)))
    if cls is AttentionView:
        att = np.tril(rng.random((2, N, N)))
        return AttentionView(tokens=TOKENS, attention=att / att.sum(-1, keepdims=True))
    if cls is views.Explorer:
        return views.Explorer(tokens=TOKENS, n_input_tokens=3, ranks=rng.integers(1, 50, size=(4, N - 1)),
                              targets=[3, 4, 5], attributions={"ig": rng.random((3, N))})
    if cls is LensComparison:
        return LensComparison(TOKENS, ["logit", "tuned"], rng.integers(1, 50, size=(2, 4, N - 1)), n_input_tokens=3,
                              target_probs=rng.random((2, 4, N - 1)), kl_to_final=rng.random((2, 4, N - 1)) * 3)
    if cls is views.PatchingGrid:
        return views.PatchingGrid(TOKENS, TOKENS[:2] + [" dog"] + TOKENS[3:], rng.normal(size=(4, N)),
                                  answer=" mat", foil=" rug")
    if cls is views.HeadPatchingGrid:
        return views.HeadPatchingGrid(TOKENS, TOKENS[:2] + [" dog"] + TOKENS[3:], rng.normal(size=(4, 3, 2)),
                                      positions=[2, N - 1], answer=" mat", foil=" rug")
    if cls is views.PromptPairView:
        return views.PromptPairView(TOKENS, TOKENS[:2] + [" dog"] + TOKENS[3:], [[i, i] for i in range(N)],
                                    [int(i == 2) for i in range(N)], rng.integers(1, 9, size=(4, N)),
                                    rng.integers(1, 9, size=(4, N)), rng.normal(size=(4, N)))
    if cls is views.LogitAttributionView:
        return views.LogitAttributionView(rng.normal(size=(4, 3)), rng.normal(size=4), tokens=TOKENS, position=N - 1,
                                          target=" mat", attention=rng.random((4, 3, N)))
    if cls is views.FeatureExplorer:
        return views.FeatureExplorer(TOKENS, rng.permutation(40)[:N * 2].reshape(N, 2), rng.random((N, 2)) + 0.1,
                                     d_sae=40, labels={0: "zero"}, n_input_tokens=3)
    if cls is views.FeatureDashboardView:  # 3 features, top 2 contexts of 3 tokens, 4 samples, 5 histogram bins
        return views.FeatureDashboardView(
            feature_ids=[2, 5, 9], labels=["two", "", "nine"], strings=TOKENS, fire_counts=[3, 0, 5], n_tokens=N,
            top_values=[[2.0, 1.0], [0, 0], [3.0, 0.5]], top_docs=[[0, 1], [-1, -1], [1, 1]],
            top_positions=[[1, 2], [-1, -1], [0, 3]], top_tokens=rng.integers(-1, N, size=(3, 2, 3)),
            top_acts=rng.random((3, 2, 3)), hist=[[0, 1, 2, 0, 0], [0] * 5, [1, 0, 0, 2, 2]],
            hist_edges=[0.25, 0.5, 1.0, 2.0], sample={"values": rng.random((3, 4)), "docs": np.zeros((3, 4)),
            "positions": np.ones((3, 4)), "tokens": rng.integers(0, N, size=(3, 4, 3)),
            "acts": rng.random((3, 4, 3))}, promoted={"promoted": (rng.integers(0, N, size=(3, 2)), rng.random((3, 2))),
            "suppressed": (rng.integers(0, N, size=(3, 2)), -rng.random((3, 2)))})
    if cls is views.ContextMixingView:  # 2 layers, tokens 4 and 5 explained
        layers = rng.random((2, 2, N)) * (np.arange(N) < np.array([[4], [5]]))
        return views.ContextMixingView(TOKENS, [4, 5], layers, np.cumsum(layers, axis=0), method="rollout")
    if cls is views.BatchSummary:
        return views.BatchSummary(layer_labels=["0", "1", "2", "3"], share_rank1=rng.random(4),
                                  first_layer_counts=rng.integers(0, 5, size=5), mean_kl=rng.random(4))
    raise AssertionError(cls)


# --------------------------------------------------------------------------- serializer


@pytest.mark.parametrize("dtype", ALLOWED_DTYPES)
def test_serializer_roundtrip_allowed_dtypes(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) % 100).astype(dtype)
    out = array_to_json(arr)
    assert set(out) == {"view", "dtype", "shape"}
    assert isinstance(out["view"], memoryview)
    sent = dtype if np.dtype(dtype).kind == "f" else "uint8"  # integers narrow to the smallest dtype
    assert out["dtype"] == sent
    assert out["shape"] == [2, 3, 4]
    back = np.frombuffer(out["view"], dtype=np.dtype(sent).newbyteorder("<")).reshape(out["shape"])
    np.testing.assert_array_equal(back, arr)
    np.testing.assert_array_equal(array_from_json(out), arr)


@pytest.mark.parametrize(
    "src,expected",
    [("int64", "uint8"), ("uint64", "uint8"), ("int32", "uint8"), ("float16", "float32"), ("bool", "uint8")],
)
def test_serializer_converts(src, expected):
    arr = np.array([[1, 0, 3], [4, 5, 1]]).astype(src)
    out = array_to_json(arr)
    assert out["dtype"] == expected
    back = np.frombuffer(out["view"], dtype=expected).reshape(out["shape"])
    np.testing.assert_array_equal(back, arr.astype(expected))


def test_serializer_int64_out_of_range():
    with pytest.raises(ValueError, match="do not fit in a 32-bit integer"):
        array_to_json(np.array([2**40], dtype=np.int64))


@pytest.mark.parametrize(
    "values,expected",
    [([0, 255], "uint8"), ([-1, 100], "int8"), ([0, 256], "uint16"), ([-1, 40000], "int32"),
     ([-200, 200], "int16"), ([0, 70000], "uint32"), ([-(2**31), 5], "int32")],
)
def test_integers_travel_in_the_narrowest_dtype(values, expected):
    arr = np.array(values, dtype=np.int64)
    out = array_to_json(arr)
    assert out["dtype"] == expected
    np.testing.assert_array_equal(np.frombuffer(out["view"], dtype=np.dtype(expected).newbyteorder("<")), arr)


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a", "b"]), np.array([object()], dtype=object)])
def test_serializer_rejects_dtype(bad):
    with pytest.raises(ValueError, match="not supported"):
        array_to_json(bad)


def test_serializer_non_contiguous_and_big_endian():
    base_arr = np.arange(60, dtype=np.float32).reshape(6, 10)
    for arr in (base_arr[:, ::3], base_arr.T, base_arr[::2, 1:7]):
        assert not arr.flags.c_contiguous
        out = array_to_json(arr)
        assert out["shape"] == list(arr.shape)
        assert len(out["view"].tobytes()) == arr.size * 4
        np.testing.assert_array_equal(np.frombuffer(out["view"], "<f4").reshape(arr.shape), arr)
    big = np.arange(5, dtype=">i4") * 1000
    out = array_to_json(big)
    assert out["dtype"] == "uint16"
    assert out["view"].tobytes() == (np.arange(5, dtype="<u2") * 1000).tobytes()
    bigf = np.arange(5, dtype=">f4")
    assert array_to_json(bigf)["view"].tobytes() == np.arange(5, dtype="<f4").tobytes()


def test_serializer_empty_and_scalar():
    out = array_to_json(np.zeros((0, 0, 0), np.int32))
    assert out["shape"] == [0, 0, 0] and out["view"].tobytes() == b""
    out = array_to_json(np.float32(2.5))
    assert out["shape"] == [] and np.frombuffer(out["view"], "<f4")[0] == 2.5
    assert array_to_json(None) is None


def test_base64_form():
    arr = np.arange(12, dtype=np.int64).reshape(3, 4) * 10_000
    out = array_to_base64(arr)
    assert set(out) == {"base64", "dtype", "shape"}
    assert out["dtype"] == "uint32" and out["shape"] == [3, 4]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(out["base64"]), "<u4").reshape(3, 4), arr)
    np.testing.assert_array_equal(array_from_json(out), arr)


def test_normalize_is_c_contiguous_little_endian():
    arr = normalize_array(np.ones((4, 4), dtype=">f8")[::2])
    assert arr.flags.c_contiguous
    assert arr.dtype.str == "<f8"


def test_widget_state_uses_binary_buffers():
    """The comm state carries memoryviews, which ipywidgets sends as binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    g = make_view(RankGrid)
    state = g.get_state()
    assert isinstance(state["ranks"]["view"], memoryview)
    _, paths, buffers = _remove_buffers(state)
    assert ["ranks", "view"] in paths
    i = paths.index(["ranks", "view"])
    sent = np.dtype(state["ranks"]["dtype"]).newbyteorder("<")
    np.testing.assert_array_equal(np.frombuffer(buffers[i], sent).reshape(g.ranks.shape), g.ranks)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("cls", ALL_VIEWS, ids=lambda c: c.__name__)
def test_each_view_constructs(cls):
    v = make_view(cls)
    assert isinstance(v, EccoView)
    assert v.title == "" and v.theme == "auto"
    assert isinstance(v._esm, str) and len(v._esm) > 0
    r = repr(v)
    assert r.startswith(cls.__name__ + "(") and len(r) < 300
    state = v.export_state()
    assert "title" in state and "theme" in state
    assert not any(k.startswith("_") for k in state)
    for value in state.values():
        if isinstance(value, dict):
            assert set(value) == {"base64", "dtype", "shape"}
            assert value["dtype"] in ALLOWED_DTYPES
    v.close()


@pytest.mark.parametrize("cls", ALL_VIEWS, ids=lambda c: c.__name__)
def test_esm_file_exists(cls):
    path = REAL_STATIC / f"{cls._bundle}.js"
    assert path.is_file(), path
    assert cls.esm_path() == path
    v = make_view(cls)
    assert v._esm == path.read_text(encoding="utf-8")
    assert "export default" in v._esm or "export {" in v._esm
    v.close()


def test_standalone_bundle_exists():
    assert (REAL_STATIC / "standalone.js").is_file()


def test_saliency_stacks_dict_and_masks_future():
    v = make_view(SaliencyView)
    assert v.methods == ["ig", "grad_x_input"]
    assert v.method == "ig"
    assert v.attributions.shape == (2, 3, N) and v.attributions.dtype == np.float32
    for i, t in enumerate(v.targets):
        assert np.all(v.attributions[:, i, t:] == 0)
    assert v.attribution("grad_x_input").shape == (3, N)
    v.method = "grad_x_input"
    assert v.method == "grad_x_input"


def test_saliency_array_input_with_methods():
    arr = np.random.default_rng(1).random((2, 1, 4))
    v = SaliencyView(tokens=list("abcd"), targets=[3], attributions=arr, methods=["a", "b"], method="b")
    assert v.method == "b" and v.methods == ["a", "b"]
    v2 = SaliencyView(tokens=list("abcd"), targets=[3], attributions=arr[0])
    assert v2.methods == ["attribution"]


def test_saliency_completeness_error_rows_per_method():
    v = make_view(SaliencyView)
    assert v.completeness_error.shape == (0, 0)  # none given
    errors = np.array([0.001, 0.5, 0.02])
    v = SaliencyView(tokens=TOKENS, targets=[3, 4, 5], n_input_tokens=3, completeness_error={"ig": errors},
                     attributions={"ig": np.ones((3, N)), "grad_x_input": np.ones((3, N))})
    assert v.completeness_error.shape == (2, 3) and v.completeness_error.dtype == np.float32
    np.testing.assert_allclose(v.completeness_error[0], errors, rtol=1e-6)
    assert np.isnan(v.completeness_error[1]).all()  # grad x input has no completeness error
    base = dict(tokens=TOKENS, targets=[3, 4, 5], attributions={"ig": np.ones((3, N))})
    with pytest.raises(ViewValueError, match="unknown method 'lrp'"):
        SaliencyView(**base, completeness_error={"lrp": errors})
    with pytest.raises(ViewValueError, match="expected 3 values"):
        SaliencyView(**base, completeness_error={"ig": errors[:2]})
    with pytest.raises(ViewValueError, match=">= 0"):
        SaliencyView(**base, completeness_error={"ig": -errors})
    with pytest.raises(ViewValueError, match="expected a dict"):
        SaliencyView(**base, completeness_error=errors)


def test_saliency_js_marks_rows_at_the_python_completeness_tolerance():
    import re

    from ecco_widgets.errors import COMPLETENESS_TOLERANCE

    source = (pathlib.Path(__file__).parents[1] / "js" / "src" / "saliency.js").read_text()
    stated = re.search(r"export const COMPLETENESS_TOLERANCE = ([0-9.e-]+);", source)
    assert stated and float(stated.group(1)) == COMPLETENESS_TOLERANCE


def test_rank_grid_defaults_and_dtypes():
    g = RankGrid(tokens=["a", "b", "c"], ranks=np.array([[3, 1], [1, 2]], dtype=np.int64))
    assert g.ranks.dtype == np.uint8
    assert g.layer_labels == ["L0", "L1"]
    assert g.topk_index.shape == (0, 0, 0) and g.topk_vocab == []
    assert g.n_input_tokens == 3 and g.raw_tokens == g.tokens
    g.selected_cell = [1, 0]
    assert g.selected_cell == [1, 0]


def test_update_revalidates():
    g = make_view(RankGrid)
    g.update(title="hello")
    assert g.title == "hello"
    with pytest.raises(ValueError, match="ranks"):
        g.update(ranks=np.ones((4, 2), np.int32))


# --------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 3))), r"n_tokens - 1 = 2"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones(2)), r"expected shape"),
        (dict(tokens=["a", "b", "c"], ranks=np.zeros((2, 2))), r"ranks start at 1"),
        (dict(tokens=["a", "b", "c"], ranks=np.full((2, 2), 1.5)), r"integer"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), layer_labels=["x"]), r"layer_labels: expected 2"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), n_input_tokens=7), r"n_input_tokens"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), raw_tokens=["x"]), r"raw_tokens"),
        (dict(tokens=["a", 3, "c"], ranks=np.ones((2, 2))), r"tokens\[1\]: expected str"),
        (dict(tokens="abc", ranks=np.ones((2, 2))), r"single string"),
        (dict(tokens=["a"], ranks=np.ones((2, 0))), r"at least 2 tokens"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), topk_vocab=["x"]), r"given together"),
        (
            dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), topk_vocab=["x"],
                 topk_index=np.zeros((2, 3, 1)), topk_probs=np.zeros((2, 3, 1))),
            r"topk_index: expected shape \(2, 2, k\)",
        ),
        (
            dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), topk_vocab=["x"],
                 topk_index=np.ones((2, 2, 1)), topk_probs=np.zeros((2, 2, 1))),
            r"index topk_vocab",
        ),
        (
            dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), topk_vocab=["x"],
                 topk_index=np.zeros((2, 2, 1)), topk_probs=np.zeros((2, 2, 2))),
            r"topk_probs: shape",
        ),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), selected_cell=[5, 0]), r"selected_cell"),
        (dict(tokens=["a", "b", "c"], ranks=np.ones((2, 2)), theme="neon"), r"theme"),
    ],
)
def test_rank_grid_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RankGrid(**kwargs)


def test_saliency_validation():
    toks = ["a", "b", "c", "d"]
    ok = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"unknown method 'nope'"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": ok}, method="nope")
    with pytest.raises(ValueError, match=r"n_targets=2, n_tokens=4"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": np.ones((2, 5))})
    with pytest.raises(ValueError, match=r"differs from"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": ok, "gx": np.ones((3, 4))})
    with pytest.raises(ValueError, match=r"targets: positions must be in 0..3"):
        SaliencyView(tokens=toks, targets=[2, 9], attributions={"ig": ok})
    with pytest.raises(ValueError, match=r"NaN"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": np.full((2, 4), np.nan)})
    with pytest.raises(ValueError, match=r"empty"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={})
    with pytest.raises(ValueError, match=r"style"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": ok}, style="fancy")
    with pytest.raises(ValueError, match=r"methods: 1 names for 2"):
        SaliencyView(tokens=toks, targets=[3], attributions=np.ones((2, 1, 4)), methods=["x"])
    v = SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": ok})
    with pytest.raises(ValueError, match="unknown method"):
        v.method = "bogus"
    with pytest.raises(ValueError, match="selected_token"):
        SaliencyView(tokens=toks, targets=[2, 3], attributions={"ig": ok}, selected_token=4)


def test_other_views_validation():
    toks = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"factors: expected shape \(\?, 3\)"):
        FactorExplorer(tokens=toks, factors=np.ones((2, 4)))
    with pytest.raises(ValueError, match="factor_labels: expected 2"):
        FactorExplorer(tokens=toks, factors=np.ones((2, 3)), factor_labels=["x"])
    with pytest.raises(ValueError, match="selected_factor"):
        FactorExplorer(tokens=toks, factors=np.ones((2, 3)), selected_factor=2)
    with pytest.raises(ValueError, match=r"activations: expected shape"):
        NeuronHeatmap(tokens=toks, activations=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"infinite"):
        NeuronHeatmap(tokens=toks, activations=np.full((5, 3), np.inf))
    with pytest.raises(ValueError, match=r"attention: expected shape \(\?, 3, 3\)"):
        AttentionView(tokens=toks, attention=np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="head_labels"):
        AttentionView(tokens=toks, attention=np.ones((2, 3, 3)), head_labels=["a"])
    with pytest.raises(ValueError, match=r"n_watch = 2"):
        RankWatch(tokens=toks, watch_tokens=["x", "y"], ranks=np.ones((3, 3)))
    with pytest.raises(ValueError, match="position"):
        RankWatch(tokens=toks, watch_tokens=["x"], ranks=np.ones((3, 1)), position=3)
    with pytest.raises(ValueError, match=r"topk_index: expected shape \(n_layers, k\)"):
        LayerPredictions(topk_vocab=["x"], topk_index=np.zeros(3), topk_probs=np.zeros(3))
    with pytest.raises(ValueError, match="topk_probs"):
        LayerPredictions(topk_vocab=["x"], topk_index=np.zeros((2, 1)), topk_probs=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LayerPredictions(topk_vocab=["x"], topk_index=np.zeros((2, 1)), topk_probs=np.full((2, 1), 3.0))


def test_attention_2d_is_one_head():
    a = AttentionView(tokens=["a", "b"], attention=np.eye(2))
    assert a.attention.shape == (1, 2, 2) and a.head_labels == ["H0"]


def test_save_html_method(tmp_path):
    v = make_view(NeuronHeatmap)
    out = v.save_html(tmp_path / "sub" / "x.html")
    assert isinstance(out, pathlib.Path) and out.is_file()
    assert 'id="ew-views"' in out.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- lens metrics (RankGrid, LensComparison)

T3 = ["a", "b", "c"]  # 2 positions
R2 = np.array([[3, 1], [1, 2]])  # 2 layers


def test_rank_grid_metrics_are_float32_traits_and_metric_is_synced():
    from ipywidgets.widgets.widget import _remove_buffers

    g = RankGrid(T3, R2, target_probs=[[0.1, 0.9], [1.0, 0.5]], kl_to_final=np.array([[2.5, 0.1], [0.0, 0.0]]),
                 entropy=[[3, 1], [0.5, 0.25]], metric="kl", first_layer=[1, -1], first_layer_k=5)
    for name in ("target_probs", "kl_to_final", "entropy"):
        arr = getattr(g, name)
        assert arr.dtype == np.float32 and arr.shape == (2, 2), name
    np.testing.assert_array_equal(g.kl_to_final, np.float32([[2.5, 0.1], [0, 0]]))
    assert g.metric == "kl" and g.first_layer_k == 5
    assert g.first_layer.tolist() == [1, -1] and g.first_layer.dtype == np.int8  # narrowest integer dtype
    assert g.trait_metadata("metric", "sync") and g.trait_metadata("first_layer_k", "sync")
    state = g.export_state()
    assert state["metric"] == "kl" and state["first_layer_k"] == 5
    assert state["target_probs"]["dtype"] == "float32" and state["target_probs"]["shape"] == [2, 2]
    assert state["first_layer"]["shape"] == [2]
    _, paths, _ = _remove_buffers(g.get_state())
    assert ["entropy", "view"] in paths and ["first_layer", "view"] in paths  # binary buffers, not JSON lists
    for metric in ("rank", "prob", "entropy", "kl"):
        g.metric = metric  # as the JS switcher writes it back
        assert g.metric == metric


def test_rank_grid_without_metrics_keeps_its_defaults():
    g = RankGrid(T3, R2)
    assert g.metric == "rank" and g.first_layer_k == 1
    assert g.target_probs.shape == (0, 0) and g.kl_to_final.shape == (0, 0) and g.entropy.shape == (0, 0)
    assert g.first_layer.shape == (0,)
    with pytest.raises(ViewValueError, match=r"metric: 'prob' needs target_probs=\.\.\., which was not given"):
        g.metric = "prob"
    assert g.metric == "rank"


def test_rank_grid_clips_float_error_only():
    g = RankGrid(T3, R2, target_probs=[[1 + 5e-5, 0], [0.5, 0.5]], kl_to_final=[[-5e-5, 0], [0, 0]])
    assert g.target_probs.max() == 1.0 and g.kl_to_final.min() == 0.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(target_probs=np.ones((2, 3))), r"target_probs: expected shape \(2, 2\) \(n_layers, n_tokens - 1\)"),
        (dict(entropy=np.ones(2)), r"entropy: expected shape \(2, 2\)"),
        (dict(target_probs=[[0.5, 1.5], [0, 0]]), r"target_probs: probabilities must be in \[0, 1\], got range \[0, 1\.5\]"),
        (dict(target_probs=[[-0.1, 0], [0, 0]]), r"probabilities must be in \[0, 1\]"),
        (dict(kl_to_final=[[-0.5, 0], [0, 0]]), r"kl_to_final: values are in nats and must be >= 0, got a minimum of -0\.5"),
        (dict(entropy=[[-1, 0], [0, 0]]), r"entropy: values are in nats and must be >= 0"),
        (dict(kl_to_final=[[np.nan, 0], [0, 0]]), r"kl_to_final: contains NaN or infinite"),
        (dict(entropy=[[np.inf, 0], [0, 0]]), r"entropy: contains NaN or infinite"),
        (dict(entropy=[[1e300, 0], [0, 0]]), r"entropy: .*too large for float32"),
        (dict(target_probs=[["a", "b"], ["c", "d"]]), r"target_probs: dtype"),
        (dict(metric="kl"), r"metric: 'kl' needs kl_to_final=\.\.\., which was not given"),
        (dict(metric="entropy", kl_to_final=np.zeros((2, 2))), r"metric: 'entropy' needs entropy=\.\.\."),
        (dict(metric="logprob"), r"metric: 'logprob' is not one of rank, prob, kl, entropy"),
        (dict(first_layer=[0, 2]), r"first_layer: layers must be in -1 \(never\) \.\. 1, got range \[0, 2\]"),
        (dict(first_layer=[-2, 0]), r"first_layer: layers must be in -1"),
        (dict(first_layer=[0, 1, 1]), r"first_layer: expected shape \(n_tokens - 1 = 2,\)"),
        (dict(first_layer=[0.5, 1]), r"first_layer: expected integer values"),
        (dict(first_layer=[0, 1], first_layer_k=0), r"first_layer_k: expected an int >= 1"),
        (dict(first_layer_k=True), r"first_layer_k: expected an int >= 1"),
    ],
)
def test_rank_grid_metric_validation(kwargs, match):
    with pytest.raises(ViewValueError, match=match):
        RankGrid(T3, R2, **kwargs)


def test_rank_grid_update_revalidates_metrics():
    g = RankGrid(T3, R2, entropy=np.ones((2, 2)), metric="entropy")
    with pytest.raises(ViewValueError, match="entropy: values are in nats"):
        g.update(entropy=-np.ones((2, 2)))
    with pytest.raises(ViewValueError, match="first_layer: layers must be in"):
        g.update(first_layer=[5, 0])


# 2 lenses x 3 layers x 4 positions, summaries worked out by hand below
LENS_TOKENS = ["a", "b", "c", "d", "e"]
LENS_RANKS = np.array([
    [[1, 7, 1, 2], [1, 1, 1, 3], [1, 1, 1, 1]],  # logit: top-1 shares 2/4, 3/4, 4/4
    [[4, 4, 4, 4], [1, 2, 2, 2], [1, 1, 1, 1]],  # tuned: 0, 1/4, 1
])
LENS_KL = np.array([
    [[1.0, 2.0, 3.0, 2.0], [0.5, 0.5, 0.0, 1.0], [0, 0, 0, 0]],  # means 2.0, 0.5, 0
    [[0.25, 0.25, 0.5, 1.0], [0.1, 0.2, 0.3, 0.2], [0, 0, 0, 0]],  # means 0.5, 0.2, 0
])


def test_lens_comparison_summaries_by_hand():
    v = LensComparison(LENS_TOKENS, ["logit", "tuned"], LENS_RANKS, kl_to_final=LENS_KL)
    assert v.summary_top1.dtype == np.float32 and v.summary_top1.shape == (2, 3)
    np.testing.assert_allclose(v.summary_top1, [[0.5, 0.75, 1.0], [0.0, 0.25, 1.0]])
    assert v.summary_mean_kl.dtype == np.float32 and v.summary_mean_kl.shape == (2, 3)
    np.testing.assert_allclose(v.summary_mean_kl, [[2.0, 0.5, 0.0], [0.5, 0.2, 0.0]], rtol=1e-6)
    # without KL there is no mean-KL summary (an empty array: "not provided")
    w = LensComparison(LENS_TOKENS, ["logit", "tuned"], LENS_RANKS)
    assert w.summary_mean_kl.shape == (0, 0)
    np.testing.assert_allclose(w.summary_top1, [[0.5, 0.75, 1.0], [0.0, 0.25, 1.0]])
    # new ranks (from Python) recompute the summary
    v.update(ranks=np.ones((2, 3, 4), np.int32))
    np.testing.assert_allclose(v.summary_top1, np.ones((2, 3)))


def test_lens_comparison_traits():
    v = LensComparison(LENS_TOKENS, ["logit", "tuned"], LENS_RANKS, kl_to_final=LENS_KL, n_input_tokens=2,
                       target_probs=np.full((2, 3, 4), 0.5), entropy=np.ones((2, 3, 4)), metric="kl",
                       selected_cell=[2, 3], raw_tokens=["A", "B", "C", "D", "E"])
    assert v.lens_names == ["logit", "tuned"] and v.layer_labels == ["L0", "L1", "L2"]
    assert v.ranks.shape == (2, 3, 4) and v.ranks.dtype == np.uint8
    for name in ("target_probs", "kl_to_final", "entropy"):
        assert getattr(v, name).dtype == np.float32 and getattr(v, name).shape == (2, 3, 4)
    assert v.metric == "kl" and v.selected_cell == [2, 3] and v.n_lenses == 2
    state = v.export_state()
    assert {"summary_top1", "summary_mean_kl", "lens_names", "metric", "selected_cell"} <= set(state)
    assert state["summary_top1"]["dtype"] == "float32" and state["summary_top1"]["shape"] == [2, 3]
    v.metric = "entropy"
    v.selected_cell = [0, 0]
    with pytest.raises(ViewValueError, match="selected_cell"):
        v.update(selected_cell=[3, 0])
    assert list(inspect.signature(LensComparison).parameters)[:3] == ["tokens", "lens_names", "ranks"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(ranks=np.ones((3, 4))), r"ranks: expected shape \(n_lenses, n_layers, n_tokens - 1 = 4\)"),
        (dict(ranks=np.ones((2, 3, 5))), r"n_tokens - 1 = 4"),
        (dict(ranks=np.zeros((2, 3, 4))), r"ranks start at 1"),
        (dict(lens_names=["logit"]), r"lens_names: 1 names for 2 lenses"),
        (dict(lens_names=["x", "x"]), r"lens_names: names must be distinct"),
        (dict(lens_names="logit"), r"single string"),
        (dict(layer_labels=["a"]), r"layer_labels: expected 3 labels"),
        (dict(kl_to_final=np.ones((2, 3, 3))), r"kl_to_final: expected shape \(2, 3, 4\) \(n_lenses, n_layers"),
        (dict(target_probs=np.full((2, 3, 4), 2.0)), r"target_probs: probabilities must be in \[0, 1\]"),
        (dict(entropy=-np.ones((2, 3, 4))), r"entropy: values are in nats and must be >= 0"),
        (dict(metric="prob"), r"metric: 'prob' needs target_probs=\.\.\."),
        (dict(selected_cell=[3, 0]), r"selected_cell: \[3, 0\] is outside the grid \(3 layers x 4 positions\)"),
        (dict(tokens=["a"], ranks=np.ones((2, 3, 0))), r"at least 2 tokens"),
    ],
)
def test_lens_comparison_validation(kwargs, match):
    args = {"tokens": LENS_TOKENS, "lens_names": ["logit", "tuned"], "ranks": LENS_RANKS, **kwargs}
    with pytest.raises(ViewValueError, match=match):
        LensComparison(**args)


# ----- issue 14 (points 3, 4, 7): sink options, focus column, layer choice -----
def test_sink_is_set_aside_by_default_where_it_helps_and_can_be_turned_off():
    toks = ["a", "b", "c"]
    att = np.tril(np.ones((2, 3, 3))) / np.arange(1, 4)[:, None]
    assert AttentionView(tokens=toks, attention=att).exclude_first is True
    assert AttentionView(tokens=toks, attention=att, exclude_first=False).exclude_first is False
    heat = NeuronHeatmap(tokens=toks, activations=np.ones((2, 3)), focus_token=2)
    assert heat.exclude_first is True and heat.focus_token == 2
    assert FactorExplorer(tokens=toks, factors=np.ones((2, 3))).excluded_tokens == []
    state = heat.get_state()
    assert state["exclude_first"] is True and state["focus_token"] == 2


def test_layer_predictions_layers_are_checked_and_normalised():
    kw = dict(topk_vocab=[" a"], topk_index=[[0]] * 4, topk_probs=[[0.5]] * 4)
    assert LayerPredictions(**kw).layers == []
    assert LayerPredictions(**kw, layers=[3, -4, 3]).layers == [0, 3]
    for bad in ([4], [-5], [], [True], ["1"]):
        with pytest.raises(ViewValueError, match="layers"):
            LayerPredictions(**kw, layers=bad)


def test_out_layer_predictions_passes_layers_to_the_view():
    from ecco_widgets.results import Output

    L, n, k = 6, 4, 3
    out = Output(token_ids=np.arange(n), tokens=list("abcd"), raw_tokens=list("abcd"), n_input_tokens=3,
                 ranks=np.ones((L, n - 1), np.int32), topk_ids=np.tile(np.arange(k), (L, n, 1)),
                 topk_probs=np.full((L, n, k), 0.2, np.float32), vocab_text={0: " x", 1: " y", 2: " z"})
    view = out.layer_predictions(position=2, topk=k, layers=[0, -1, 3])
    assert isinstance(view, LayerPredictions) and view.layers == [0, 3, 5]
    assert view.topk_index.shape == (L, k)  # every layer travels; the view shows the chosen ones
