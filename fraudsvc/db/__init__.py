"""PostgreSQL through Piccolo: the engine, tables, migrations and the queries (rows stay here)."""
