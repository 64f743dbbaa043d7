"""fraudsvc: real-time fraud scoring with LightGBM, LIME explanations and an MLflow registry."""

__version__ = "0.1.0"
