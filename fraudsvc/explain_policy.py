"""Which scored transactions get a LIME explanation (FRAUDSVC_EXPLAIN, ..._SAMPLE_RATE).

LIME costs about a hundred times a score, so by default only flagged (review and block)
transactions are explained. A sample of allowed ones can be added for monitoring; the sample is
chosen by a hash of the transaction id, so a repeat or a replay selects the same transactions.
"""

from __future__ import annotations

import zlib

from fraudsvc.settings import ExplainSettings

FLAGGED, SAMPLED, ALL, REQUESTED = "flagged", "sampled", "all", "requested"
SAMPLE_BUCKETS = 1_000_000


def in_sample(transaction_id: str, rate: float) -> bool:
    bucket = zlib.crc32(transaction_id.encode()) % SAMPLE_BUCKETS
    return bucket < rate * SAMPLE_BUCKETS


def explain_reason(settings: ExplainSettings, transaction_id: str, decision: str) -> str | None:
    """Why this transaction is explained (flagged, sampled, all), or None."""
    if settings.policy == "none":
        return None
    if settings.policy == "all":
        return ALL
    if decision != "allow":
        return FLAGGED
    if settings.sample_rate > 0 and in_sample(transaction_id, settings.sample_rate):
        return SAMPLED
    return None
