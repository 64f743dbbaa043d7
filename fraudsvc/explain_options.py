"""LIME's options: what the FRAUDSVC_LIME_* settings set, and what an explanation records.

A light module (no LIME, no LightGBM) so that the settings can hold the options; the defaults
are the setting `make bench` chose (its `lime` section, summarised in the README's Performance
section).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Discretizer = Literal["none", "quartile", "decile", "entropy"]
Target = Literal["log_odds", "probability"]
DISCRETIZERS: tuple[Discretizer, ...] = ("none", "quartile", "decile", "entropy")
TARGETS: tuple[Target, ...] = ("log_odds", "probability")


@dataclass(frozen=True)
class LimeOptions:
    num_samples: int = 2000
    """Perturbed samples per explanation (and per stability seed)."""
    num_features: int = 10
    """Features reported."""
    discretizer: Discretizer = "none"
    """none: continuous features stay continuous; else LIME's discretizer of that name."""
    sample_around_instance: bool = True
    """Without a discretizer: draw continuous features around the transaction's values (True)
    or around the background's means (False). A discretizer ignores it."""
    kernel_width_factor: float = 0.75
    """Kernel width = factor x sqrt(number of features perturbed); LIME's default is 0.75."""
    target: Target = "log_odds"
    """What the local model fits: the model's log-odds (LIME in regression mode on LightGBM's
    raw score) or the fraud probability (LIME in classification mode)."""
    stability_seeds: int = 2
    """Extra explanations with other seeds whose top features are compared with the shown
    explanation's (0: no stability figure)."""
