"""Training: contract-checked data, out-of-time split, optional SMOTE, LightGBM, MLflow."""
