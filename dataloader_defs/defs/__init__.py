"""Dagster objects of the DataLoader code location, one file per kind."""
