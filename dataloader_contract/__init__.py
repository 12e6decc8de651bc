"""The contract the three packages share: the load request, the load result and the vocabularies.

Pure Python (no pyarrow, deltalake, psycopg or dagster), imported by `control_db`, `pipes_workers`
and `dataloader_defs` alike; it imports none of them.

- `vocabulary`: the closed sets of names (strategies, statuses, db types, kv scopes, error kinds,
  delete modes) and the `db_config_value` keys per db type.
- `errors`: the load exceptions, each with its `kind` (what the retry analysis decides from).
- `request`: `LoadRequest`, `SourceConfig`, `table_uri` (the lake's layout).
- `result`: `LoadResult` and its parts, what the worker reports and the lifecycle records.
"""
