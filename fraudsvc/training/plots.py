"""Plots of a training run: ROC and precision-recall curves, feature importance, scores."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudsvc.decision import Thresholds


def curves(y: np.ndarray, scored: dict[str, np.ndarray], out: Path) -> tuple[Path, Path]:
    roc_path, pr_path = out / "roc_curve.png", out / "precision_recall_curve.png"
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, s in scored.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test period")
    ax.legend()
    fig.tight_layout()
    fig.savefig(roc_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, s in scored.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=name)
    ax.axhline(float(y.mean()), color="k", ls="--", lw=0.8, label="fraud rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test period")
    ax.legend()
    fig.tight_layout()
    fig.savefig(pr_path, dpi=110)
    plt.close(fig)
    return roc_path, pr_path


def importance(booster: lgb.Booster, out: Path) -> Path:
    path = out / "feature_importance.png"
    gains = booster.feature_importance(importance_type="gain")
    names = booster.feature_name()
    order = np.argsort(gains)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([names[i] for i in order], gains[order] / max(1e-12, gains.sum()))
    ax.set(xlabel="share of total gain", title="LightGBM feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def score_distribution(y: np.ndarray, s: np.ndarray, thresholds: Thresholds, out: Path) -> Path:
    path = out / "score_distribution.png"
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 51).tolist()
    ax.hist(s[y == 0], bins=bins, alpha=0.6, label="genuine", log=True)
    ax.hist(s[y == 1], bins=bins, alpha=0.6, label="fraud", log=True)
    ax.axvline(thresholds.review, color="orange", ls="--", label=f"review {thresholds.review:.3f}")
    ax.axvline(thresholds.block, color="red", ls="--", label=f"block {thresholds.block:.3f}")
    ax.set(xlabel="score", ylabel="transactions (log)", title="Scores, test period")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
