"""The code location's defs folder (Dagster's component tree): one state-backed component, the
control tables (definitions.py)."""
