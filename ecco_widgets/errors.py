"""The errors ecco_widgets raises: each one says what went wrong and what to do about it.

>>> from ecco_widgets.errors import InputError
>>> issubclass(InputError, ValueError)
True
"""


class EccoWidgetsError(ValueError):
    """Base class of every error raised on purpose by ecco_widgets."""


class InputError(EccoWidgetsError):
    """The text, a position, a layer or a token given by the user cannot be used as it is."""


class ModelLoadError(EccoWidgetsError):
    """A model or tokenizer could not be found or loaded."""


class UnsupportedModelError(EccoWidgetsError):
    """The model's structure could not be understood; pass a ModelSpec to describe it."""


class NotAvailableError(EccoWidgetsError):
    """The asked-for data was not computed for this output (e.g. attributions that were not requested)."""


class NonFiniteError(EccoWidgetsError):
    """The model produced NaN or infinite values (a NaN weight, or half-precision overflow); names where."""


# Integrated gradients' completeness tolerance, as a fraction of f(input) - f(baseline): above it IG warns
# (CompletenessWarning) and the saliency view marks the row (js/src/saliency.js states the same number).
COMPLETENESS_TOLERANCE = 0.01


class CompletenessWarning(UserWarning):
    """Integrated gradients did not converge: some rows do not sum to f(input) - f(baseline) within the tolerance."""


class SiteWarning(UserWarning):
    """A dictionary attached to a model reconstructs the analysed text badly (FVU above 0.5, or far above what its
    files state): it likely reads the wrong site or the wrong normalisation; the message names a site that fits."""
