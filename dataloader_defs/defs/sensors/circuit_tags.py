"""Circuit breaker marks for the Dagster UI: the tag of a probe run (a load run whose table probes an
open source, see control_db.queries.circuit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import RunRequest

from dataloader_defs.defs.run_tags import attempt_of_tag

TAG_CIRCUIT_PROBE = "dataloader/circuit_probe"


def tag_probe_runs(requests: Sequence[RunRequest], probes: Mapping[str, str]) -> list[RunRequest]:
    """`requests` with `dataloader/circuit_probe=<source>` on each run that loads a probe table
    (`probes`: control_key -> source, from `queries.circuit_probes`)."""
    if not probes:
        return list(requests)
    tagged = []
    for request in requests:
        keys = [value for tag, value in request.tags.items() if attempt_of_tag(tag) is not None]
        sources = sorted({probes[key] for key in keys if key in probes})
        if sources:
            request = request.with_replaced_attrs(tags={**request.tags, TAG_CIRCUIT_PROBE: ",".join(sources)})
        tagged.append(request)
    return tagged
