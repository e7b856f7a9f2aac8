"""Interactive views (anywidget) of a language model's internals.

Each class is constructible from plain lists/arrays; see ``docs/view_contract.md``.
"""

from ._base import EccoView, ViewValueError
from .attention import AttentionView
from .factor_explorer import FactorExplorer
from .layer_predictions import LayerPredictions
from .neuron_heatmap import NeuronHeatmap
from .rank_grid import RankGrid
from .rank_watch import RankWatch
from .saliency import SaliencyView

__all__ = [
    "AttentionView",
    "EccoView",
    "FactorExplorer",
    "LayerPredictions",
    "NeuronHeatmap",
    "RankGrid",
    "RankWatch",
    "SaliencyView",
    "ViewValueError",
]

#: Python class -> JS bundle name (``ecco_widgets/static/<bundle>.js``).
BUNDLES = {cls.__name__: cls._bundle for cls in (
    SaliencyView, RankGrid, RankWatch, LayerPredictions, FactorExplorer, NeuronHeatmap, AttentionView
)}
