"""The tables. Each row is keyed by the transaction id; foreign keys, composite indexes and
checks the ORM cannot express are added by the migration in raw SQL.

- transaction_ids: every stored transaction id with its timestamp: what keeps an id unique
  across the monthly partitions of transactions (see the partitioning migration).
- transactions: the contract's fields as received (amounts as integer minor units); immutable;
  partitioned by month on `ts` (fraudsvc.db.partitions).
- predictions: partitioned like transactions (`ts` is the transaction's); what was scored,
  exactly: score, decision, thresholds, model name and version, the feature vector (float8[],
  in the spec's order) and its spec hash, reasons, correlation id.
- labels: the current verdict per transaction (chargeback, analyst, ...); corrections update it.
- explanations: one per prediction that the policy or a request selected; status pending ->
  running -> done | failed, with LIME's output (weights, local prediction and fit, on the scale
  named by `target`), the options it ran with, its stability across seeds, the features held
  missing, timings and the error text.
- feature_buckets, feature_entities: the time buckets of the online features (see buckets.py),
  kept by triggers that `fraudsvc migrate` installs from the feature declaration.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    Array,
    BigInt,
    Boolean,
    DoublePrecision,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class TransactionId(Table, tablename="transaction_ids"):
    transaction_id = Varchar(length=64, primary_key=True)
    ts = Timestamptz(default=None)


class Transaction(Table, tablename="transactions"):
    transaction_id = Varchar(length=64, primary_key=True)
    ts = Timestamptz(default=None)
    customer_id = Varchar(length=64)
    terminal_id = Varchar(length=64)
    amount_minor = BigInt()
    currency = Varchar(length=3, null=True, default=None)
    merchant_category = Varchar(length=4, null=True, default=None)
    merchant_country = Varchar(length=2, null=True, default=None)
    card_country = Varchar(length=2, null=True, default=None)
    channel = Varchar(length=16, null=True, default=None)
    device_id = Varchar(length=128, null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    attributes = JSONB(null=True, default=None)
    received_at = Timestamptz()


class Prediction(Table, tablename="predictions"):
    transaction_id = Varchar(length=64, primary_key=True)
    score = DoublePrecision()
    decision = Varchar(length=8)
    threshold_review = DoublePrecision()
    threshold_block = DoublePrecision()
    model_name = Varchar(length=128)
    model_version = Varchar(length=32)
    feature_hash = Varchar(length=64)
    features = Array(base_column=DoublePrecision())
    reasons = JSONB(null=True, default=None)
    correlation_id = Varchar(length=64)
    created_at = Timestamptz()
    ts = Timestamptz(default=None)


class Label(Table, tablename="labels"):
    transaction_id = Varchar(length=64, primary_key=True)
    is_fraud = Boolean()
    source = Varchar(length=32)
    labelled_at = Timestamptz()
    updated_at = Timestamptz()


class Explanation(Table, tablename="explanations"):
    transaction_id = Varchar(length=64, primary_key=True)
    status = Varchar(length=16, default="pending")
    reason = Varchar(length=16)
    attempts = Integer(default=0)
    method = Varchar(length=16, default="lime")
    num_samples = Integer(null=True, default=None)
    seed = Integer(null=True, default=None)
    model_name = Varchar(length=128, null=True, default=None)
    model_version = Varchar(length=32, null=True, default=None)
    num_features = Integer(null=True, default=None)
    weights = JSONB(null=True, default=None)
    local_prediction = DoublePrecision(null=True, default=None)
    intercept = DoublePrecision(null=True, default=None)
    local_fit_r2 = DoublePrecision(null=True, default=None)
    score = DoublePrecision(null=True, default=None)
    requested_at = Timestamptz()
    enqueued_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    duration_ms = DoublePrecision(null=True, default=None)
    predict_ms = DoublePrecision(null=True, default=None)
    error = Text(null=True, default=None)
    correlation_id = Varchar(length=64, null=True, default=None)
    trace_context = Text(null=True, default=None)
    target = Varchar(length=16, null=True, default=None)
    model_output = DoublePrecision(null=True, default=None)
    discretizer = Varchar(length=16, null=True, default=None)
    sample_around_instance = Boolean(null=True, default=None)
    kernel_width_factor = DoublePrecision(null=True, default=None)
    stability = DoublePrecision(null=True, default=None)
    stability_seeds = Integer(null=True, default=None)
    held_missing = JSONB(null=True, default=None)


class FeatureBucket(Table, tablename="feature_buckets"):
    entity = Text(primary_key=True)  # with key, width and start: see the migration
    key = Text()
    width = Integer()
    start = Timestamptz()
    n = BigInt()
    amount = BigInt()
    frauds = BigInt()
    latest = Timestamptz()


class FeatureEntity(Table, tablename="feature_entities"):
    name = Text(primary_key=True)
    fields = Array(base_column=Text())
    levels = Array(base_column=Integer())
    built_at = Timestamptz()
    rows = BigInt()
    seconds = DoublePrecision()


TABLES: list[type[Table]] = [
    TransactionId,
    Transaction,
    Prediction,
    Label,
    Explanation,
    FeatureBucket,
    FeatureEntity,
]
