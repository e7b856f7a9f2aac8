"""No view syncs a trait whose name ipywidgets' front end reserves for a DOMWidget.

DOMWidgetModel deserializes `layout` and `style` as model references and DOMWidgetView.initialize calls
setLayout(model.get("layout")) / setStyle(model.get("style")) -> widget_manager.create_view(value): a string
there throws an uncaught "Cannot read properties of undefined (reading 'then')" in JupyterLab / Notebook 7.
"""
import ipywidgets

from ecco_widgets import views

# synced attributes DOMWidgetModel / DOMWidgetView read with a meaning of their own
RESERVED = {"layout", "style", "_dom_classes", "tabbable", "tooltip", "description", "tabindex"}


def test_no_view_syncs_a_reserved_dom_widget_name():
    base = set(ipywidgets.DOMWidget.class_trait_names(sync=True))
    for entry in views.REGISTRY["views"]:
        cls = getattr(views, entry["class"])
        own = set(cls.class_trait_names(sync=True)) - base
        assert not own & RESERVED, (cls.__name__, sorted(own & RESERVED))


def test_saliency_style_keeps_its_python_name():
    """`style` stays SaliencyView's Python name (argument, attribute, update), synced as `saliency_style`."""
    import numpy as np
    import pytest

    s = views.SaliencyView(tokens=["a", "b", "c"], targets=[2], attributions={"ig": np.ones((1, 3))}, style="detailed")
    assert (s.style, s.saliency_style, s.export_state()["saliency_style"]) == ("detailed", "detailed", "detailed")
    assert "style" not in s.export_state()
    s.update(style="minimal")
    assert s.saliency_style == "minimal"
    with pytest.raises(ValueError, match="style"):
        s.style = "fancy"
