"""Contract v2: the attributes payments carry, stored with the transaction.

All optional (a five-field transaction stays valid): the original currency, the merchant category
code, the merchant's and the card's countries, the channel, the device id, the IP address (in its
canonical text form) and a small typed map of extra attributes. The API and the file contract
validate them (fraudsvc.transaction); the checks here hold the same rules where the rows live.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T00:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "contract v2: currency, merchant category and country, card country, channel, device, IP, attributes"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    """ALTER TABLE transactions
           ADD COLUMN currency char(3),
           ADD COLUMN merchant_category char(4),
           ADD COLUMN merchant_country char(2),
           ADD COLUMN card_country char(2),
           ADD COLUMN channel varchar(16),
           ADD COLUMN device_id varchar(128),
           ADD COLUMN ip varchar(45),
           ADD COLUMN attributes jsonb""",
    # no braces in these patterns: Piccolo's raw SQL is a format template ({3} would vanish)
    """ALTER TABLE transactions ADD CONSTRAINT transactions_v2_formats CHECK (
           (currency IS NULL OR currency ~ '^[A-Z][A-Z][A-Z]$')
           AND (merchant_category IS NULL OR merchant_category ~ '^[0-9][0-9][0-9][0-9]$')
           AND (merchant_country IS NULL OR merchant_country ~ '^[A-Z][A-Z]$')
           AND (card_country IS NULL OR card_country ~ '^[A-Z][A-Z]$')
           AND (channel IS NULL OR channel IN
                ('card_present', 'contactless', 'ecommerce', 'moto', 'recurring'))
           AND (attributes IS NULL OR jsonb_typeof(attributes) = 'object')
       )""",
]


async def _columns() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_columns)
    return manager
