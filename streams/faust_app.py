"""faust's place in Tenure: the stream workers' process runtime, not their consumer.

Each worker (archiver, projector, SDK validator) is a faust app run by a faust worker
(``tenure.entrypoints.bootstrap.run_faust_worker``). faust earns its place as what runs the
process: the service tree (start and stop order, a crashed service stops the worker),
signals, the tasks and timers beside the consume loop (the projector's derive, publish and
aggregates tasks and its convergence timer, the archiver's ledger tidy) and logging. No app
subscribes to a topic through faust: faust's per-message path costs ~230 µs of CPU per
record here (``docs/design/projector-throughput.md``). Every worker consumes with the one
batch loop, :class:`tenure.eventlog.batch_loop.BatchLoop`, registered here as a service of
its app (:func:`consume_with`), and produces with the one producer,
:class:`tenure.eventlog.publisher.EventPublisher`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from tenure.eventlog.batch_loop import BatchHandler, BatchLoop, ConsumeSettings


def faust_broker_settings() -> dict[str, Any]:
    """Faust settings every Tenure stream worker shares (see docs/brokers.md for why)."""
    return {
        "broker_session_timeout": 6.0,  # group joins take ~session_timeout/2 on Tansu
        "broker_heartbeat_interval": 1.0,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "topic_allow_declare": True,
    }


def tenure_faust_app(app_id: str, bootstrap: str, datadir: Path, **settings: Any) -> faust.App:
    """A faust app for one Tenure worker (its data dir created, memory store)."""
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        datadir=str(datadir),
        store="memory://",
        **(faust_broker_settings() | settings),
    )


def consume_with(
    app: faust.App, handler: BatchHandler[Any], settings: ConsumeSettings
) -> list[BatchLoop[Any]]:
    """Run ``handler`` on the batch loop as a service of ``app`` (started and stopped with
    it); the returned list holds the loop once the app has started it."""
    started: list[BatchLoop[Any]] = []

    class Consume(BatchLoop[Any]):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(handler, settings, **kwargs)
            started.append(self)

    app.service(Consume)
    return started
