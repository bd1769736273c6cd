"""Probe persons for the freshness benchmark, and the sustained simulated ingest load.

A probe is a ``device.activated`` fact about a person nobody has seen, posted to the ingest
API; it is *visible* when ``GET /v1/persons/{id}`` answers 200. Its id sorts first
(``000-…``), last (``zzz-…``) or at a random place among the load's person ids (``sim-`` and
the hex of a uuid4, the simulator's own id shape), because the order in which the derive
stage claims keys must not decide how long a person waits.

The load is :mod:`tenure.simulation` populations (a fresh seed per chunk, so ids never
repeat) posted as fast as the ingest API answers by a few client threads, each waiting for
its reply before the next request (a closed loop: the offered rate is what the API holds),
or at most ``rate`` events per second (the senders wait for their turn on one shared clock:
the offered rate is then ``rate`` while the API holds it).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tenure.simulation import SimulationParameters, simulate

ORDERS = ("first", "last", "random")
"""Where a probe's person id sorts among the load's ids."""
CHUNK_PEOPLE = 1000
"""Arrivals per generated population chunk (~40,000 events over a simulated year)."""
REFUSED_PAUSE_S = 0.25
"""A sender that got a 503 (or no answer) waits this long before its next request."""
POLL_BACKOFF = 0.1
POLL_BACKOFF_AFTER_S = 5.0
"""A probe not yet visible is polled again after the poll interval until it is this old (the
max target, so every visibility up to it is late by at most one interval and one ``GET``),
then after ``max(poll interval, POLL_BACKOFF * its age)``: a long wait does not flood the
query service with requests. Each probe also records when its last unanswered ``GET`` was
sent (:attr:`Probe.unseen_at`), so a result states its own resolution."""
QUEUED_REQUESTS = 64
"""Requests the load's generator process keeps ready (filled before the load starts)."""
GENERATOR_START_S = 120.0
"""How long the generator process may take to fill its queue the first time."""
PROBE_ATTEMPTS = 5
"""A probe request answered 503 (or not at all) is sent again, at most this many times."""


def probe_person_id(order: str) -> str:
    """A new person id that sorts ``first``, ``last`` or at ``random`` among the load's."""
    token = uuid.uuid4().hex
    if order == "first":
        return f"000-fresh-{token[:16]}"
    if order == "last":
        return f"zzz-fresh-{token[:16]}"
    if order == "random":
        return f"sim-{token[:16]}"
    raise ValueError(f"order must be one of {ORDERS}")


def probe_event(person_id: str, now: datetime | None = None) -> dict[str, Any]:
    """A ``device.activated`` event about ``person_id`` (a new device), timed now."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:tenure:bench-freshness",
        "type": "device.activated",
        "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "device_id": f"dev-fresh-{uuid.uuid4().hex[:16]}",
            "person_id": person_id,
            "product": "watch",
        },
    }


@dataclass(slots=True)
class Probe:
    """One probe person: when it was posted, answered and first seen (monotonic seconds)."""

    order: str
    person_id: str
    phase: str
    posted_at: float
    answered_at: float | None = None
    visible_at: float | None = None
    unseen_at: float | None = None
    """When the last ``GET`` that found no person yet was sent: visible after this."""
    next_check: float = 0.0
    """When it is polled next (monotonic seconds)."""

    @property
    def visibility_s(self) -> float | None:
        """Seconds from just before the POST to the first 200 of ``GET /v1/persons/{id}``."""
        return None if self.visible_at is None else self.visible_at - self.posted_at

    @property
    def resolution_s(self) -> float | None:
        """How late :attr:`visibility_s` can be: seconds from sending the last ``GET`` that
        found nothing to the first 200 (``None`` until both happened: a probe visible at its
        first ``GET``, sent once the POST was answered, is only known to be visible by then)."""
        if self.visible_at is None or self.unseen_at is None:
            return None
        return self.visible_at - self.unseen_at


class Prober:
    """Posts probe rounds (one person per id order) and polls until each is visible."""

    def __init__(
        self,
        ingest_url: str,
        query_url: str,
        ingest_token: str,
        read_token: str,
        *,
        pollers: int = 4,
        poll_interval_s: float = 0.1,
    ) -> None:
        self._post = httpx.Client(headers={"Authorization": f"Bearer {ingest_token}"}, timeout=60)
        self._ingest = f"{ingest_url}/v1/events"
        self._query_url = query_url
        self._read_headers = {"Authorization": f"Bearer {read_token}"}
        self.poll_interval_s = poll_interval_s
        self.probes: list[Probe] = []
        self.poll_errors: Counter[int] = Counter()
        self.polls = 0
        """``GET /v1/persons/{id}`` requests sent so far."""
        self.get_seconds: list[float] = []
        """Each of those requests' seconds from sending to the answer."""
        self._pending: list[list[Probe]] = [[] for _ in range(pollers)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(i,), daemon=True) for i in range(pollers)
        ]
        for t in self._threads:
            t.start()

    def post_round(self, phase: str) -> list[Probe]:
        """Post one probe per id order in one request; start polling them."""
        ids = {order: probe_person_id(order) for order in ORDERS}
        body = orjson.dumps([probe_event(ids[o]) for o in ORDERS])
        posted = time.monotonic()
        round_ = [Probe(o, ids[o], phase, posted) for o in ORDERS]
        for attempt in range(PROBE_ATTEMPTS):  # a 503 (broker busy) is retried, clock running
            try:
                reply = self._post.post(
                    self._ingest, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.TransportError:
                if attempt == PROBE_ATTEMPTS - 1:
                    raise
                continue
            if reply.status_code != 503:
                break
            time.sleep(REFUSED_PAUSE_S)
        if reply.status_code != 200 or reply.json()["accepted"] != len(ORDERS):
            raise RuntimeError(f"probe refused: {reply.status_code} {reply.text[:300]}")
        answered = time.monotonic()
        with self._lock:
            for probe in round_:
                probe.answered_at = answered
                self.probes.append(probe)
                self._pending[len(self.probes) % len(self._pending)].append(probe)
        return round_

    def pending(self) -> int:
        """Probes posted and not yet visible."""
        with self._lock:
            return sum(len(p) for p in self._pending)

    def wait_visible(self, timeout_s: float) -> bool:
        """Wait until every probe posted so far is visible; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _poll(self, index: int) -> None:
        client = httpx.Client(headers=self._read_headers, timeout=30)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self._lock:
                    due = [p for p in self._pending[index] if p.next_check <= now]
                for probe in due:
                    sent = time.monotonic()
                    reply = client.get(f"{self._query_url}/v1/persons/{probe.person_id}")
                    checked = time.monotonic()
                    with self._lock:
                        self.polls += 1
                        self.get_seconds.append(checked - sent)
                        if reply.status_code == 200:
                            probe.visible_at = checked
                            self._pending[index].remove(probe)
                            continue
                        if reply.status_code == 404:
                            probe.unseen_at = sent
                        else:
                            self.poll_errors[reply.status_code] += 1
                    probe.next_check = checked + self.poll_delay_s(checked - probe.posted_at)
                self._stop.wait(self.poll_interval_s / 4)
        finally:
            client.close()

    def poll_delay_s(self, age_s: float) -> float:
        """How long a probe ``age_s`` old and not yet visible waits for its next ``GET``."""
        if age_s < POLL_BACKOFF_AFTER_S:
            return self.poll_interval_s
        return max(self.poll_interval_s, POLL_BACKOFF * age_s)

    def close(self) -> None:
        """Stop polling and close the connections."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._post.close()


def population_batches(batch: int, first_seed: int = 1000) -> Iterator[list[tuple[int, bytes]]]:
    """``(events, body)`` requests of ``batch`` events, one population chunk at a time."""
    end = datetime.now(UTC).replace(microsecond=0)
    base = replace(
        SimulationParameters(),
        people=CHUNK_PEOPLE,
        start=end - timedelta(days=365),
        erasure=False,
        source_prefix="urn:tenure:bench-freshness-load",
    )
    seed = first_seed
    while True:
        envelopes = [d.envelope for d in simulate(replace(base, seed=seed)).deliveries]
        slices = [envelopes[i : i + batch] for i in range(0, len(envelopes), batch)]
        yield [(len(s), orjson.dumps(s)) for s in slices]
        seed += 1


@dataclass(slots=True)
class LoadReport:
    """What the senders offered and what the ingest API answered (counts add up)."""

    offered: int = 0
    """Events in every request sent (``accepted + duplicates + rejected + refused``)."""
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    refused: int = 0
    """Events in requests answered with something other than per-event results (or none)."""
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _generate(batch: int, bodies: Any, stop: Any) -> None:
    """The load's generator process: requests of ``batch`` events into ``bodies`` until
    ``stop`` is set."""
    bodies.cancel_join_thread()  # exit at once when stopped, whatever is still buffered
    for chunk in population_batches(batch):
        for body in chunk:
            while not stop.is_set():
                try:
                    bodies.put(body, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return


class Load:
    """Client threads posting simulated populations to the ingest API until stopped.

    The populations are generated and encoded in a process of its own (:func:`_generate`):
    in this one that pure-Python work held the interpreter's lock for the probes' polling
    threads too, so a probe's reading could be late by a quarter of a second."""

    def __init__(
        self,
        ingest_url: str,
        token: str,
        *,
        concurrency: int,
        batch: int,
        rate: float | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.url = f"{ingest_url}/v1/events"
        self.rate = rate
        self._scheduled = 0
        """Events whose turn was handed out so far (the paced clock, with ``rate``)."""
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.concurrency = concurrency
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        spawn = multiprocessing.get_context("spawn")  # this process has threads: no fork
        self._bodies = spawn.Queue(maxsize=QUEUED_REQUESTS)
        self._generator_stop = spawn.Event()
        self._generator = spawn.Process(
            target=_generate, args=(batch, self._bodies, self._generator_stop), daemon=True
        )
        self._generator.start()
        deadline = time.monotonic() + GENERATOR_START_S  # filled before the clock starts
        while self._bodies.qsize() < QUEUED_REQUESTS:
            if not self._generator.is_alive() or time.monotonic() > deadline:
                self._stop_generator()
                raise RuntimeError("the load's generator process did not start")
            time.sleep(0.05)
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    @property
    def generator_pid(self) -> int | None:
        """The generator process's pid (its CPU is the load's too)."""
        return self._generator.pid

    def _stop_generator(self) -> None:
        self._generator_stop.set()
        self._generator.join(timeout=10)
        if self._generator.is_alive():
            self._generator.kill()
            self._generator.join(timeout=10)

    def _send(self) -> None:
        with httpx.Client(headers=self.headers, timeout=120) as client:
            while not self._stop.is_set():
                try:
                    n, body = self._bodies.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._wait_turn(n)
                try:
                    reply = client.post(self.url, content=body)
                    status = str(reply.status_code)
                    answer = reply.json() if reply.status_code in (200, 422) else None
                except (httpx.TransportError, ValueError):
                    status, answer = "no answer", None
                with self._lock:
                    r = self.report
                    r.requests += 1
                    r.offered += n
                    r.statuses[status] += 1
                    if answer is None:
                        r.refused += n
                    else:
                        r.accepted += int(answer["accepted"])
                        r.duplicates += int(answer["duplicates"])
                        r.rejected += int(answer["rejected"])
                if answer is None:
                    self._stop.wait(REFUSED_PAUSE_S)

    def _wait_turn(self, events: int) -> None:
        """With a ``rate``, wait until ``events`` more are due on the shared clock; a turn
        already past is taken at once (``rate`` is an upper bound on the offered rate)."""
        if self.rate is None:
            return
        with self._lock:
            due = self._started + self._scheduled / self.rate
            self._scheduled += events
        self._stop.wait(max(0.0, due - time.monotonic()))

    def start(self) -> None:
        """Start the generator and the sender threads (the clock starts now)."""
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._send, daemon=True) for _ in range(self.concurrency)
        ]
        for t in self._threads:
            t.start()

    def snapshot(self) -> tuple[int, int]:
        """``(offered, accepted)`` events so far."""
        with self._lock:
            return self.report.offered, self.report.accepted

    def stop(self) -> LoadReport:
        """Stop sending (requests in flight finish and are counted); return the report."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=180)
        self.report.seconds = time.monotonic() - self._started
        return self.report

    def close(self) -> None:
        """Stop the generator process (after :meth:`stop`, once its CPU time is read); on a
        failed run, without :meth:`stop`, the senders stop too."""
        self._stop.set()
        self._stop_generator()
