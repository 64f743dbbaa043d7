"""Rules, lists, the review queue's cases and the audit trail.

- predictions keep what decided: the model's own decision, the final one (`decision`), who
  decided it (`decided_by`: 'model' or a rule id), the live ruleset version and every rule hit
  (live and shadow, with the values that fired it), so a decision can be explained after the
  rules have changed.
- lists and list_entries: named, typed lists (customer, terminal, device, ip, country,
  merchant_category, string) whose entries carry a reason, a source, who added them and an
  optional expiry.
- rulesets: numbered, immutable versions of a list of rules; ruleset_live: which one is live.
- review_cases: one per transaction the queue holds (every review decision, and block ones when
  FRAUDSVC_REVIEW_BLOCKED asks), opened in the scoring write; claims expire.
- audit_log: every change to rules and lists, and every analyst action: what, when, who.
- labels remember who gave an analyst's verdict.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "rules, lists, review cases and the audit trail"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    """ALTER TABLE predictions
           ADD COLUMN model_decision varchar(8),
           ADD COLUMN decided_by varchar(64),
           ADD COLUMN ruleset_version integer,
           ADD COLUMN rule_hits jsonb""",
    "UPDATE predictions SET model_decision = decision, decided_by = 'model'",
    "ALTER TABLE predictions ALTER COLUMN model_decision SET NOT NULL",
    "ALTER TABLE predictions ALTER COLUMN decided_by SET NOT NULL",
    """ALTER TABLE predictions ADD CONSTRAINT predictions_model_decision_values
           CHECK (model_decision IN ('allow', 'review', 'block'))""",
    "ALTER TABLE labels ADD COLUMN labelled_by varchar(64)",
    """CREATE TABLE lists (
           name varchar(64) PRIMARY KEY,
           kind varchar(32) NOT NULL CHECK (kind IN ('customer', 'terminal', 'device', 'ip',
               'country', 'merchant_category', 'string')),
           description text NOT NULL DEFAULT '',
           created_at timestamptz NOT NULL DEFAULT now(),
           created_by varchar(64) NOT NULL,
           updated_at timestamptz NOT NULL DEFAULT now()
       )""",
    """CREATE TABLE list_entries (
           list_name varchar(64) NOT NULL REFERENCES lists (name) ON DELETE CASCADE,
           value varchar(256) NOT NULL,
           reason text NOT NULL DEFAULT '',
           source varchar(64) NOT NULL DEFAULT 'api',
           added_by varchar(64) NOT NULL,
           added_at timestamptz NOT NULL DEFAULT now(),
           expires_at timestamptz,
           PRIMARY KEY (list_name, value)
       )""",
    """CREATE TABLE rulesets (
           version serial PRIMARY KEY,
           description text NOT NULL DEFAULT '',
           rules jsonb NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now(),
           created_by varchar(64) NOT NULL
       )""",
    """CREATE TABLE ruleset_live (
           singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
           version integer NOT NULL REFERENCES rulesets (version),
           published_at timestamptz NOT NULL DEFAULT now(),
           published_by varchar(64) NOT NULL
       )""",
    """CREATE TABLE review_cases (
           transaction_id varchar(64) PRIMARY KEY
               REFERENCES predictions (transaction_id) ON DELETE CASCADE,
           opened_at timestamptz NOT NULL DEFAULT now(),
           status varchar(8) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
           claimed_by varchar(64),
           claimed_until timestamptz,
           closed_by varchar(64),
           closed_at timestamptz,
           verdict varchar(8) CHECK (verdict IN ('fraud', 'genuine')),
           note text
       )""",
    "CREATE INDEX review_cases_open ON review_cases (opened_at) WHERE status = 'open'",
    "CREATE INDEX review_cases_closed ON review_cases (closed_at) WHERE status = 'closed'",
    """CREATE TABLE audit_log (
           id bigserial PRIMARY KEY,
           at timestamptz NOT NULL DEFAULT now(),
           actor varchar(64) NOT NULL,
           action varchar(64) NOT NULL,
           subject varchar(256) NOT NULL,
           details jsonb NOT NULL DEFAULT '[]'
       )""",
    "CREATE INDEX audit_log_subject ON audit_log (subject, at)",
    # a list or ruleset change reaches every web process within a second (LISTEN/NOTIFY)
    """CREATE FUNCTION fraudsvc_notify_rules() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           PERFORM pg_notify('fraudsvc_rules', TG_TABLE_NAME);
           RETURN NULL;
       END $$""",
    """CREATE TRIGGER lists_changed AFTER INSERT OR UPDATE OR DELETE ON lists
       FOR EACH STATEMENT EXECUTE FUNCTION fraudsvc_notify_rules()""",
    """CREATE TRIGGER list_entries_changed AFTER INSERT OR UPDATE OR DELETE ON list_entries
       FOR EACH STATEMENT EXECUTE FUNCTION fraudsvc_notify_rules()""",
    """CREATE TRIGGER ruleset_live_changed AFTER INSERT OR UPDATE OR DELETE ON ruleset_live
       FOR EACH STATEMENT EXECUTE FUNCTION fraudsvc_notify_rules()""",
]


async def _rules() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_rules)
    return manager
