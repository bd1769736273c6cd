"""CPU cost of resolving person ids at the projector's decode boundary (no database).

``python -m bench.spikes.person_refs_decode`` decodes, resolves and prepares (folds and
encodes) 20,000 events of the projection bench's device mix in batches of 500, with plain
ids and with tokens, and times :meth:`PersonRefs.resolve` alone; the resolver's cache is warm
(as in a running worker), so no query is made. Prints one line per case (median of runs).
See docs/design/erasure.md, "Measured cost".
"""

from __future__ import annotations

import statistics
import time

import orjson

from bench.projection import device_mix
from bench.records import ingest_records
from tenure.privacy.boundary import tokenised
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.projection.apply import prepare_batch
from tenure.projection.person_refs import PersonRefs
from tenure.projection.records import IncomingRecord, parse_records
from tenure.storage.state_cache import RawCaches

EVENTS, BATCH, RUNS = 20_000, 500, 7


def main() -> None:
    """Run the cases and print their medians."""
    events = device_mix(EVENTS)
    plain = [
        IncomingRecord(r.topic, 0, i, r.key.encode(), r.value)
        for i, r in enumerate(ingest_records(events))
    ]
    pseudonymiser = Pseudonymiser(bytes(range(32)))
    registry: dict[str, str] = {}
    tokens = []
    for r in plain:
        envelope, key = tokenised(
            pseudonymiser, orjson.loads(r.value or b""), (r.key or b"").decode(), registry
        )
        tokens.append(IncomingRecord(r.topic, 0, r.offset, key.encode(), orjson.dumps(envelope)))

    def warm() -> PersonRefs:
        refs = PersonRefs()
        refs.warm(pseudonymiser, registry)
        return refs

    def whole(records: list[IncomingRecord], resolve: bool) -> float:
        caches, refs = RawCaches(), warm()
        started = time.perf_counter()
        for i in range(0, len(records), BATCH):
            parsed = parse_records(records[i : i + BATCH])
            found = refs.resolve(None, parsed.events).events if resolve else parsed.events
            prepare_batch(found, parsed.progress, caches)
        return (time.perf_counter() - started) / len(records) * 1e6

    def resolve_only(records: list[IncomingRecord]) -> float:
        batches = [
            parse_records(records[i : i + BATCH]).events for i in range(0, len(records), BATCH)
        ]
        refs = warm()
        started = time.perf_counter()
        for batch in batches:
            refs.resolve(None, batch)
        return (time.perf_counter() - started) / len(records) * 1e6

    cases = {
        "decode+prepare, plain ids, no resolve (before)": lambda: whole(plain, False),
        "decode+resolve+prepare, plain ids": lambda: whole(plain, True),
        "decode+resolve+prepare, tokens": lambda: whole(tokens, True),
        "resolve only, plain ids": lambda: resolve_only(plain),
        "resolve only, tokens": lambda: resolve_only(tokens),
    }
    for name, case in cases.items():
        runs = [case() for _ in range(RUNS)]
        print(f"{name:48s} {statistics.median(runs):6.2f} us/event (min {min(runs):.2f})")


if __name__ == "__main__":
    main()
