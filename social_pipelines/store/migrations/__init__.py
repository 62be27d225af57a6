"""The state store's Alembic migrations: `versions/` holds one revision per schema change.

`store/migrate.py` runs them at open (there is no env.py and no alembic.ini: nothing runs
them but the store itself). To change the schema:

1. change `store/schema.py`, the schema the code reads and writes;
2. add `versions/NNNN_what_it_does.py`, with `revision = "NNNN"` and `down_revision` the
   latest one, whose `upgrade()` makes the same change with `alembic.op` (types written out
   as they are stored, never imported from `schema.py`: a revision is frozen once shipped);
3. set `migrate.HEAD` to the new revision.

`social_pipelines_tests/store/test_migrations.py` fails until the three agree. Revisions
only go up: a store is never downgraded, so they have no `downgrade()`.
"""
