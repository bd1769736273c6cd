"""Producer SDK over HTTP: send CloudEvents to the ingest service, batched, retried, typed.

``AsyncTenureHttpProducer`` (asyncio) and ``TenureHttpProducer`` (threads; it runs the async
one on its own event loop) queue events and send them as CloudEvents batched-mode requests
(``application/cloudevents-batch+json``) to ``POST /v1/events``:

- **batching**: a request holds at most ``max_batch_events`` events and ``max_batch_bytes``
  bytes; queued events are sent after ``flush_interval_s`` at the latest;
- **retries**: a 503 (the broker is down), 502/504/429 or a connection error is retried,
  waiting what ``Retry-After`` says (capped at ``max_backoff_s``) or else an exponential
  backoff with jitter, until ``deadline_s`` after the first attempt;
- **idempotent ids**: an event without ``id`` gets one (a UUID) when it is queued, and every
  retry resends the same bytes, so an event an earlier attempt already delivered is answered
  ``duplicate``, which counts as delivered;
- **typed results**: each event's future resolves to :class:`~tenure.sdk.results.Accepted`,
  ``Duplicate``, ``Rejected`` (field and reason) or ``Undelivered`` (the SDK gave up).

It imports only httpx and the standard library: no server dependency (FastAPI, psycopg,
Kafka clients) is needed to use it.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tenure.sdk.results import Accepted, Duplicate, EventResult, Rejected, Undelivered

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
"""The CloudEvents batched content mode the SDK sends."""
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""HTTP statuses after which the same request is sent again."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often one request is retried."""

    deadline_s: float = 60.0
    """Give up on a request this long after its first attempt (the events are Undelivered)."""
    initial_backoff_s: float = 0.2
    """The first wait when the service gave no ``Retry-After``; doubled at every attempt."""
    max_backoff_s: float = 10.0
    """The longest wait between attempts, ``Retry-After`` included."""

    def wait(self, failed_attempts: int, retry_after: str | None = None) -> float:
        """Seconds to wait after ``failed_attempts`` failures (``Retry-After`` wins if given)."""
        told = parse_retry_after(retry_after)
        if told is not None:
            return min(told, self.max_backoff_s)
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (failed_attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(slots=True)
class _Queued:
    id: str | None
    source: str | None
    body: bytes
    future: asyncio.Future[EventResult]


@dataclass(slots=True)
class _Batch:
    events: list[_Queued] = field(default_factory=list)
    size: int = 2  # the brackets of the JSON array

    def fits(self, body: bytes, max_events: int, max_bytes: int) -> bool:
        return len(self.events) < max_events and self.size + len(body) + 1 <= max_bytes


def with_id(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as a dict, with a fresh UUID ``id`` if it had none (retries keep it)."""
    out = dict(event)
    if not out.get("id"):
        out["id"] = uuid.uuid4().hex
    return out


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"HTTP {response.status_code}"


def _answers(batch: list[_Queued], response: httpx.Response, attempts: int) -> list[EventResult]:
    """The per-event results of a final (non-retried) answer."""
    status = response.status_code
    if status not in (200, 422):
        reason = f"the ingest service refused the request: {_error_of(response)}"
        return [Undelivered(q.id, q.source, reason, status, attempts) for q in batch]
    by_index: dict[int, Mapping[str, Any]] = {}
    results = response.json().get("results", [])
    for item in results if isinstance(results, list) else []:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            by_index[item["index"]] = item
    out: list[EventResult] = []
    for index, queued in enumerate(batch):
        item = by_index.get(index)
        kind = item.get("status") if item else None
        if item is None or kind not in ("accepted", "duplicate", "rejected"):
            reason = "the ingest service answered no result for this event"
            out.append(Undelivered(queued.id, queued.source, reason, status, attempts))
        elif kind == "rejected":
            reason = _text(item.get("reason")) or "rejected"
            event_id, source = _text(item.get("id")), _text(item.get("source"))
            out.append(Rejected(event_id, source, _text(item.get("field")), reason, attempts))
        else:
            event_id = _text(item.get("id")) or queued.id or ""
            source = _text(item.get("source")) or queued.source or ""
            kind_of = Accepted if kind == "accepted" else Duplicate
            out.append(kind_of(event_id, source, attempts))
    return out


class AsyncTenureHttpProducer:
    """Send events to the ingest service over HTTP from asyncio code (see module docstring).

    Use as ``async with AsyncTenureHttpProducer(url, token) as producer:``; leaving the block
    flushes. ``url`` is the ingest service's base URL, ``token`` a producer token.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_batch_events: int = 500,
        max_batch_bytes: int = 1_000_000,
        flush_interval_s: float = 0.05,
        max_in_flight: int = 4,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if max_batch_events < 1 or max_batch_bytes < 3:
            raise ValueError("max_batch_events and max_batch_bytes must be positive")
        self.endpoint = url.rstrip("/") + "/v1/events"
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval_s = flush_interval_s
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": BATCH_CONTENT_TYPE}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._batch = _Batch()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> AsyncTenureHttpProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, event: Mapping[str, Any]) -> asyncio.Future[EventResult]:
        """Queue one event (a structured-mode CloudEvent dict); the future gets its result.

        Raises ``TypeError`` if the event is not JSON-serialisable.
        """
        loop = asyncio.get_running_loop()
        complete = with_id(event)
        body = json.dumps(complete, separators=(",", ":"), ensure_ascii=False).encode()
        queued = _Queued(
            _text(complete.get("id")), _text(complete.get("source")), body, loop.create_future()
        )
        if len(body) + 2 > self.max_batch_bytes:
            reason = f"the event is {len(body)} bytes; a request holds {self.max_batch_bytes}"
            queued.future.set_result(Undelivered(queued.id, queued.source, reason))
            return queued.future
        if not self._batch.fits(body, self.max_batch_events, self.max_batch_bytes):
            self._dispatch()
        self._batch.events.append(queued)
        self._batch.size += len(body) + 1
        if len(self._batch.events) >= self.max_batch_events:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self.flush_interval_s, self._dispatch)
        return queued.future

    async def send_all(self, events: Iterable[Mapping[str, Any]]) -> list[EventResult]:
        """Send events now and wait for every result (in the order of ``events``)."""
        futures = [await self.send(e) for e in events]
        self._dispatch()
        return list(await asyncio.gather(*futures))

    async def flush(self) -> None:
        """Send what is queued and wait until every request sent so far is answered."""
        self._dispatch()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Flush, then close the HTTP client (if the producer made it)."""
        await self.flush()
        if self._owns_client:
            await self._client.aclose()

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._batch.events:
            return
        batch, self._batch = self._batch.events, _Batch()
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[_Queued]) -> None:
        try:
            async with self._slots:
                results = await self._post(batch)
        except BaseException as exc:  # never leave a future unresolved
            results = [
                Undelivered(q.id, q.source, f"the SDK failed: {exc!r}", None, 0) for q in batch
            ]
            if isinstance(exc, asyncio.CancelledError):
                self._resolve(batch, results)
                raise
        self._resolve(batch, results)

    @staticmethod
    def _resolve(batch: list[_Queued], results: list[EventResult]) -> None:
        for queued, result in zip(batch, results, strict=True):
            if not queued.future.done():
                queued.future.set_result(result)

    async def _post(self, batch: list[_Queued]) -> list[EventResult]:
        """Send one request until it gets a final answer or the deadline passes."""
        loop = asyncio.get_running_loop()
        body = b"[" + b",".join(q.body for q in batch) + b"]"
        deadline = loop.time() + self.retry.deadline_s
        attempts = 0
        status: int | None = None  # the last HTTP status answered, if any
        while True:
            attempts += 1
            timeout = max(0.1, min(self.timeout_s, deadline - loop.time()))
            try:
                response = await self._client.post(
                    self.endpoint, content=body, headers=self._headers, timeout=timeout
                )
            except httpx.TransportError as exc:
                reason = f"cannot reach the ingest service: {exc!r}"
                wait = self.retry.wait(attempts)
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    return _answers(batch, response, attempts)
                status, reason = response.status_code, _error_of(response)
                wait = self.retry.wait(attempts, response.headers.get("retry-after"))
            if loop.time() + wait > deadline:
                reason = f"gave up after {attempts} attempts: {reason}"
                return [Undelivered(q.id, q.source, reason, status, attempts) for q in batch]
            await asyncio.sleep(wait)


class TenureHttpProducer:
    """The HTTP producer for synchronous code: ``AsyncTenureHttpProducer`` on its own thread.

    ``send`` returns a ``concurrent.futures.Future`` of the event's result; ``send_all``
    waits for all of them. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, url: str, token: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tenure-http-producer", daemon=True
        )
        self._thread.start()

        async def make() -> AsyncTenureHttpProducer:
            return AsyncTenureHttpProducer(url, token, **options)

        self._producer = self._run(make())

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __enter__(self) -> TenureHttpProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, event: Mapping[str, Any]) -> ThreadFuture[EventResult]:
        """Queue one event; the returned future resolves to its result."""

        async def result() -> EventResult:
            future = await self._producer.send(event)
            outcome: EventResult = await future
            return outcome

        return asyncio.run_coroutine_threadsafe(result(), self._loop)

    def send_all(self, events: Iterable[Mapping[str, Any]]) -> list[EventResult]:
        """Send events and wait for every result (in the order of ``events``)."""
        results: list[EventResult] = self._run(self._producer.send_all(list(events)))
        return results

    def flush(self) -> None:
        """Send what is queued and wait for the answers."""
        self._run(self._producer.flush())

    def close(self) -> None:
        """Flush, close the HTTP client and stop the producer's thread."""
        if not self._loop.is_running():
            return
        try:
            self._run(self._producer.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
