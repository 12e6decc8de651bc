"""Alembic environment and revisions of the control schema (run through `control_db.migrate`)."""
