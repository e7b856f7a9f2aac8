"""ecco_widgets: see how a Transformer language model arrives at its words.

The pipeline, one package a stage: ``models`` (loading, one class per model kind) -> ``adapter`` (the parts found
by inspection) -> ``capture`` (one hooked forward) -> ``analysis`` (lens, attribution, factors, similarity) ->
``results`` (one dataclass per kind, save / load) -> ``views`` (anywidget views, offline HTML export).

>>> import ecco_widgets as ew
>>> ew.__version__
'0.1.0'
"""

from . import analysis
from .adapter import ModelSpec
from .analysis.features import SAE, Site
from .analysis.features.labels import Labels
from .analysis.tuned_lens import TunedLens
from .analysis.tuned_lens_fit import held_out_kl
from .errors import (CompletenessWarning, EccoWidgetsError, InputError, ModelLoadError, NonFiniteError,
                     NotAvailableError, SiteWarning, UnsupportedModelError)
from .models import (LanguageModel, MaskedLanguageModel, ModelBase, Seq2SeqLanguageModel, SequenceClassifier,
                     classifier, demo_model, from_pretrained, masked_lm, seq2seq)
from .batch import BatchResults, batch, load_batch
from .batch.dashboard import feature_dashboard
from .models.demo_sae import demo_sae
from .models.lenses import compare_lenses
from .models.patching import patching
from .results import ClassifierOutput, LogitAttribution, LogitAttributions, MaskedLMOutput, NMFResult, Output, \
    PatchingResult, PromptPair, Seq2SeqOutput, compare, load
from .views import (AttentionView, Explorer, FactorExplorer, FeatureExplorer, LayerPredictions, LensComparison,
                    LogitAttributionView, NeuronHeatmap, PatchingGrid, PromptPairView, RankGrid, RankWatch,
                    SaliencyView)
from .results.feature_dashboard import FeatureDashboard
from .views import FeatureDashboardView
from .views import ContextMixingView
from .results.feature_attribution import FeatureAttribution
from .results.steering import SteeringResult
from .views.export import save_html, to_html
from .views.hosts import set_html_fallback

__version__ = "0.1.0"

#: Reads a saved Seq2SeqOutput; ``ew.load`` reads every result kind (kept for code written before it did).
load_seq2seq = load

__all__ = [
    "AttentionView", "Explorer", "FactorExplorer", "LayerPredictions", "LensComparison", "NeuronHeatmap", "RankGrid", "RankWatch", "SaliencyView",
    "analysis", "save_html", "to_html", "ClassifierOutput", "SequenceClassifier", "classifier",
    "CompletenessWarning", "EccoWidgetsError", "InputError", "LanguageModel", "MaskedLMOutput", "MaskedLanguageModel",
    "ModelBase", "ModelLoadError", "NonFiniteError", "ModelSpec", "NMFResult", "NotAvailableError", "Output",
    "UnsupportedModelError", "demo_model", "demo_sae", "from_pretrained", "load", "masked_lm", "Seq2SeqLanguageModel",
    "Seq2SeqOutput", "load_seq2seq", "seq2seq", "TunedLens", "held_out_kl", "compare_lenses",
    "BatchResults", "batch", "load_batch",
    "feature_dashboard", "FeatureDashboard", "FeatureDashboardView",
    "patching", "PatchingResult", "PatchingGrid",
    "FeatureAttribution", "SteeringResult",
    "compare", "PromptPair", "PromptPairView",
    "set_html_fallback", "LogitAttribution", "LogitAttributions", "LogitAttributionView", "SAE", "Site", "SiteWarning",
    "Labels", "FeatureExplorer", "ContextMixingView",
]
