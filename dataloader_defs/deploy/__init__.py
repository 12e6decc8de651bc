"""Deployment pieces: the Celery run launcher DataLoader runs on (dagster-celery, with worker checks)."""
