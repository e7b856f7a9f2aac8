"""Component analyses of one recorded forward: direct logit attribution (dla.py) over the inputs recorded by a capture
plug (record.py), through norms at their frozen scale (norms.py)."""

from .dla import UNITS, DLAValues, direct_logit_attribution, top_token
from .record import ComponentRecorder, Parts, attention_outputs, find_parts

__all__ = ["UNITS", "ComponentRecorder", "DLAValues", "Parts", "attention_outputs", "direct_logit_attribution",
           "find_parts", "top_token"]
