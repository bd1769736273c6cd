"""A bounded, steady stream of events through the ingest API that keeps its own books.

The stream sends fixed batches at a fixed pace and retries a batch (the same event ids) on a
connection error, a timeout or a 503 until it gets an answer, honouring ``Retry-After``. Each
event's final outcome is the one its last answered request gave: ``accepted``, ``duplicate``
(accepted earlier, e.g. by a request whose answer was lost) or ``rejected``. An event is
acknowledged when it was accepted or is a duplicate. Every request is bounded in time and the
whole stream stops at its deadline, acknowledged or not.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class StreamBooks:
    """What the stream sent and what the ingest API answered for each event."""

    sent: list[str] = field(default_factory=list)
    outcome: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    """Requests by answer: an HTTP status, ``connect-error`` or ``timeout``."""

    @property
    def acknowledged(self) -> set[str]:
        """Ids the platform acknowledged (accepted now or before)."""
        return {i for i, o in self.outcome.items() if o in ("accepted", "duplicate")}

    def tally(self) -> Counter[str]:
        """Events by final outcome (``unanswered`` for ids never answered)."""
        counts = Counter(self.outcome.get(i, "unanswered") for i in self.sent)
        return counts

    def server_errors(self) -> int:
        """Answers in the 5xx range other than 503 (the documented "retry" answer)."""
        return sum(n for s, n in self.requests.items() if s.isdigit() and s >= "500" and s != "503")


class SteadyStream:
    """Send ``events`` in batches of ``batch`` every ``pause_s`` seconds, in a thread."""

    def __init__(
        self,
        url: Callable[[], str],
        token: str,
        events: Sequence[dict[str, Any]],
        *,
        batch: int = 10,
        pause_s: float = 0.05,
        deadline_s: float = 120.0,
    ) -> None:
        self.url = url
        self.token = token
        self.batches = [list(events[i : i + batch]) for i in range(0, len(events), batch)]
        self.pause_s = pause_s
        self.deadline_s = deadline_s
        self.books = StreamBooks()
        self.progress = 0
        """Batches answered so far."""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SteadyStream:
        """Start sending."""
        self._thread.start()
        return self

    def wait_for_progress(self, share: float, timeout_s: float = 60.0) -> None:
        """Block until ``share`` of the batches were answered."""
        deadline = time.monotonic() + timeout_s
        while self.progress < share * len(self.batches):
            assert time.monotonic() < deadline, f"stream stuck at {self.progress} batches"
            time.sleep(0.02)

    def join(self) -> StreamBooks:
        """Wait until every batch was answered (or the deadline passed); return the books."""
        self._thread.join(self.deadline_s + 30)
        return self.books

    def _run(self) -> None:
        deadline = time.monotonic() + self.deadline_s
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10.0) as client:
            for events in self.batches:
                self.books.sent.extend(e["id"] for e in events)
                while time.monotonic() < deadline:
                    wait = self._send(client, headers, events)
                    if wait is None:
                        break
                    time.sleep(wait)
                self.progress += 1
                time.sleep(self.pause_s)

    def _send(
        self, client: httpx.Client, headers: dict[str, str], events: list[dict[str, Any]]
    ) -> float | None:
        """Send one batch; ``None`` when it was answered, else seconds to wait before a retry."""
        try:
            reply = client.post(f"{self.url()}/v1/events", json=events, headers=headers)
        except httpx.TimeoutException:
            self.books.requests["timeout"] += 1
            return 0.5
        except httpx.TransportError:
            self.books.requests["connect-error"] += 1
            return 0.3
        self.books.requests[str(reply.status_code)] += 1
        if reply.status_code in (200, 422):
            for result in reply.json()["results"]:
                self.books.outcome[result["id"]] = result["status"]
            return None
        retry_after = reply.headers.get("retry-after", "")
        return float(retry_after) if retry_after.isdigit() else 0.5
