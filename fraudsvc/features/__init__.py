"""Features declared once (`declaration`), computed by a batch path over whole files (`batch`,
polars) and an online path for one transaction (`online`, from the aggregates the database reads
out of time buckets: `spans`). `default.DECLARATION` is what training uses unless told otherwise.
"""

from fraudsvc.features.batch import batch_features, feature_matrix
from fraudsvc.features.declaration import Declaration, Span
from fraudsvc.features.default import DECLARATION
from fraudsvc.features.online import online_vector
from fraudsvc.features.spans import SpanValue

__all__ = [
    "DECLARATION",
    "Declaration",
    "Span",
    "SpanValue",
    "batch_features",
    "feature_matrix",
    "online_vector",
]
