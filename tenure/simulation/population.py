"""A whole simulated population: who arrives when, and every delivery in send-time order."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenure.simulation.delivery import Delivery, deliveries_of
from tenure.simulation.identifiers import Identifiers
from tenure.simulation.life import Life
from tenure.simulation.parameters import SimulationParameters
from tenure.simulation.persona import Persona, Setting, live, usage
from tenure.simulation.schedule import after, poisson_times
from tenure.simulation.truth import Truth, measure

HOUR = timedelta(hours=1)
"""Arrivals after the span are generated an hour at a time."""

_Stream = tuple[Life, Delivery, Iterator[Delivery]]
"""A person's usage deliveries: the life, its next delivery and the rest."""


@dataclass(frozen=True, slots=True)
class Simulation:
    """A simulated span: the lives, the deliveries sent by its end and the truth."""

    parameters: SimulationParameters
    lives: tuple[Life, ...]
    deliveries: tuple[Delivery, ...]
    """Every delivery with ``send_at`` up to the end of the span, in send-time order."""
    truth: Truth

    def continuation(self, arrivals_per_hour: float) -> Iterator[Delivery]:
        """Deliveries after the span, forever, in send-time order.

        The population keeps living (the rest of each life, late syncs, resends) and new
        people keep arriving, ``arrivals_per_hour`` on average (a Poisson process), with the
        same persona shares. Usage events are streamed per person rather than held, so
        memory grows with the number of active people, not with their events. Stops only
        when nothing is left and nobody arrives.
        """
        return _Continuation(self.parameters, arrivals_per_hour).run()


class _Continuation:
    """Merges every life's remaining deliveries, and new arrivals, in send-time order."""

    def __init__(self, params: SimulationParameters, arrivals_per_hour: float) -> None:
        self.params = params
        self.rate = arrivals_per_hour
        self.setting = Setting(params, Identifiers(params.seed, params.source_prefix), None)
        self.pending: list[tuple[tuple[datetime, str, str, bool], int, Delivery | _Stream]] = []
        self.tiebreak = itertools.count()

    def _push(self, item: Delivery | _Stream) -> None:
        first = item if isinstance(item, Delivery) else item[1]
        heapq.heappush(self.pending, (first.order_key(), next(self.tiebreak), item))

    def _usage_stream(self, life: Life) -> Iterator[Delivery]:
        for happening in usage(life, self.params.seed):
            original, *resend = deliveries_of(life, happening, self.params, self.setting.ids)
            for later in resend:  # up to 10 min later: may pass the next use, so on its own
                self._push(later)
            yield original

    def _add(self, lives: list[Life]) -> None:
        for life in lives:
            for happening in life.happenings:
                for d in deliveries_of(life, happening, self.params, self.setting.ids):
                    self._push(d)
            stream = self._usage_stream(life)
            first = next(stream, None)
            if first is not None:
                self._push((life, first, stream))

    def _next(self) -> Delivery:
        """Pop the earliest delivery; a usage stream moves on to its next one."""
        _, _, item = heapq.heappop(self.pending)
        if isinstance(item, Delivery):
            return item
        life, current, stream = item
        following = next(stream, None)
        if following is not None:
            self._push((life, following, stream))
        return current

    def run(self) -> Iterator[Delivery]:
        end = self.params.end
        self._add(_population(self.setting))
        shares = self.params.shares.normalised()
        for hour in itertools.count():
            opens = end + hour * HOUR
            while self.pending and self.pending[0][0][0] < opens:
                d = self._next()
                if d.send_at > end:
                    yield d
            if self.rate <= 0:
                if not self.pending:
                    return
                continue
            rng = random.Random(f"{self.params.seed}:hour:{hour}")
            arrivals = list(poisson_times(rng, opens, opens + HOUR, self.rate * 24))
            for n, arrival in enumerate(arrivals):
                self._add(live(f"h{hour}.{n}", _draw_persona(rng, shares), arrival, self.setting))


def _draw_persona(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> Persona:
    draw, acc = rng.random(), 0.0
    for name, share in shares:
        acc += share
        if draw < acc:
            return Persona(name)
    return Persona(shares[-1][0])


def _population(setting: Setting) -> list[Life]:
    """Every life of the span's arrivals (and those they bring), plus one erasure request."""
    params = setting.parameters
    rng = random.Random(f"{params.seed}:population")
    shares = params.shares.normalised()
    lives: list[Life] = []
    span_days = float(params.days)
    for n in range(params.people):
        arrival = after(params.start, rng.uniform(0, span_days))
        lives.extend(live(f"p{n}", _draw_persona(rng, shares), arrival, setting))
    if params.erasure:
        _request_erasure(lives, params)
    return lives


def _request_erasure(lives: list[Life], params: SimulationParameters) -> None:
    """The first connected buyer whose use ended well before the end asks to be forgotten."""
    for life in lives:
        if life.persona != Persona.CONNECTED_BUYER.value:
            continue
        last = life.last_time
        if last + timedelta(days=2) < params.end:
            life.add(
                "erasure",
                "person.erasure_requested",
                after(last, 1),
                {"person_id": life.person_id},
            )
            return


def lives_of(params: SimulationParameters) -> list[Life]:
    """Every life of ``params`` with its events up to the span's end, without deliveries.

    The same lives :func:`simulate` returns, for readers who need what people did and not
    how it reached the platform (the churn evaluation).
    """
    return _population(Setting(params, Identifiers(params.seed, params.source_prefix), params.end))


def simulate(params: SimulationParameters) -> Simulation:
    """Generate the population of ``params`` and its deliveries up to the span's end.

    Pure and deterministic: the same parameters give the same deliveries, byte for byte.
    """
    setting = Setting(params, Identifiers(params.seed, params.source_prefix), params.end)
    lives = _population(setting)
    deliveries = [
        d
        for life in lives
        for happening in life.happenings
        for d in deliveries_of(life, happening, params, setting.ids)
        if d.send_at <= params.end
    ]
    deliveries.sort(key=Delivery.order_key)
    return Simulation(params, tuple(lives), tuple(deliveries), measure(params, lives, deliveries))
