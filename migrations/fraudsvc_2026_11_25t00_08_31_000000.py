"""Foreign keys, checks and indexes that the ORM cannot express, in raw SQL."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-25T00:08:31:000000"
VERSION = "1.38.0"
DESCRIPTION = "foreign keys, checks and the indexes the online features need"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


CONSTRAINTS_AND_INDEXES = [
    # one prediction, label and explanation per transaction; deleting a transaction removes all
    """ALTER TABLE predictions ADD CONSTRAINT predictions_transaction_fk
       FOREIGN KEY (transaction_id) REFERENCES transactions (transaction_id) ON DELETE CASCADE""",
    """ALTER TABLE labels ADD CONSTRAINT labels_transaction_fk
       FOREIGN KEY (transaction_id) REFERENCES transactions (transaction_id) ON DELETE CASCADE""",
    """ALTER TABLE explanations ADD CONSTRAINT explanations_prediction_fk
       FOREIGN KEY (transaction_id) REFERENCES predictions (transaction_id) ON DELETE CASCADE""",
    # the contract and the state machine, enforced where the rows live
    """ALTER TABLE transactions ADD CONSTRAINT transactions_amount_range
       CHECK (amount >= 0 AND amount <= 1000000)""",
    """ALTER TABLE predictions ADD CONSTRAINT predictions_score_range
       CHECK (score >= 0 AND score <= 1)""",
    """ALTER TABLE predictions ADD CONSTRAINT predictions_decision_values
       CHECK (decision IN ('allow', 'review', 'block'))""",
    """ALTER TABLE explanations ADD CONSTRAINT explanations_status_values
       CHECK (status IN ('pending', 'running', 'done', 'failed'))""",
    # online features: the customer windows read (customer_id, ts, amount) from the index alone,
    # the terminal windows read (terminal_id, ts) and join labels by transaction id
    """CREATE INDEX transactions_customer_ts ON transactions (customer_id, ts) INCLUDE (amount)""",
    """CREATE INDEX transactions_terminal_ts
       ON transactions (terminal_id, ts) INCLUDE (transaction_id)""",
    # the sweep looks only at explanations that are not finished
    """CREATE INDEX explanations_open ON explanations (requested_at)
       WHERE status IN ('pending', 'running')""",
]


async def _constraints_and_indexes() -> None:
    for statement in CONSTRAINTS_AND_INDEXES:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_constraints_and_indexes)
    return manager
