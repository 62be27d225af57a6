"""How Alembic runs the store's revisions; `store/migrate.py` is its only caller.

Online, on the connection `migrate.py` holds (inside its transaction and lock, so nothing
here begins or commits). Offline (`sql=True`), as the SQL a new store's revisions emit on a
dialect, one statement per write to the output: `migrate.py` builds that once per process
and replays it for every new store, which is far cheaper than running each revision's
operations again.
"""

from __future__ import annotations

from alembic import context

from social_pipelines.store.migrate import VERSION_TABLE

attributes = context.config.attributes
if context.is_offline_mode():
    context.configure(
        dialect_name=attributes["dialect"],
        output_buffer=attributes["output"],
        version_table=VERSION_TABLE,
        literal_binds=True,
        transactional_ddl=False,  # no BEGIN/COMMIT: the script runs in the caller's transaction
    )
else:
    context.configure(connection=attributes["connection"], version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
