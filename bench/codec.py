"""The state codec against the hand-written codec it replaced, in one process.

The hand-written codec (``tenure/domain/codec.py`` at :data:`OLD_COMMIT`, read with
``git show``) and today's table-driven one (:mod:`tenure.domain.state_codec`) encode and
decode the raw states of the same simulated population: the devices and person states the
projector persists, the person states of the assembled world (with device contributions)
and the small per-batch device deltas the projector writes to its delta log. The inputs
are timed in chunks of :data:`CHUNK`: the old function on a chunk and the new one (in
alternating order), ``repeats`` times; a function's time is the sum over chunks of its
minimum (short runs keep the minimum honest on a busy machine). ``ratio`` is the largest
new/old ratio of the five functions (at most 1.0: the table-driven codec is not slower than
the hand-written one). No servers are needed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from bench.old_code import module_at
from bench.result import Result
from tenure.domain import state_codec
from tenure.domain.events import parse_event
from tenure.domain.neighbourhood import RawWorld, group_by_key, raw_fold
from tenure.domain.world import fold
from tenure.simulation import SimulationParameters, simulate
from tenure.storage.raw_states import DEVICES

NAME = "codec"
DEFAULT_SIZE = 300
"""People who arrive on their own in the simulated population."""
DEFAULT_REPEATS = 25
OLD_COMMIT = "f475562"
"""The last commit with the hand-written codec (``tenure/domain/codec.py``)."""
DELTA_BATCH = 400
"""Events per simulated projector batch (the deltas of ``encode_device_delta``)."""

FUNCTIONS: tuple[str, ...] = (
    "encode_device_state",
    "encode_device_delta",
    "decode_device_state",
    "encode_person_state",
    "decode_person_state",
)


def old_codec(commit: str = OLD_COMMIT) -> ModuleType:
    """The hand-written codec of ``commit``, imported from ``git show`` as a module."""
    return module_at(commit, "tenure/domain/codec.py", "tenure_old_codec")


def population(people: int) -> dict[str, list[Any]]:
    """The inputs of each function: states of a simulated population and their bytes."""
    events = [
        parse_event(d.envelope) for d in simulate(SimulationParameters(people=people)).deliveries
    ]
    raw = raw_fold(events)
    world = fold(events)
    deltas: list[Any] = []
    for start in range(0, len(events), DELTA_BATCH):
        routed = group_by_key(events[start : start + DELTA_BATCH])  # as the apply stage does
        batch = RawWorld(devices={k: DEVICES.fold(k, v) for k, v in routed.devices.items()})
        deltas.extend(batch.devices.values())
    devices = list(raw.devices.values())
    persons = list(raw.person_states.values()) + list(world.person_states.values())
    return {
        "encode_device_state": devices,
        "encode_device_delta": deltas,
        "decode_device_state": [state_codec.encode_device_state(d) for d in devices],
        "encode_person_state": persons,
        "decode_person_state": [state_codec.encode_person_state(p) for p in persons],
    }


CHUNK = 8
"""Inputs timed together: short runs (about a millisecond) that a busy machine seldom
interrupts, so the minimum of each is close to its undisturbed time."""


def _seconds(function: Callable[[Any], object], inputs: Sequence[Any]) -> float:
    started = time.perf_counter()
    for value in inputs:
        function(value)
    return time.perf_counter() - started


def _interleaved(
    run: int,
    before: Callable[[Any], object],
    after: Callable[[Any], object],
    inputs: Sequence[Any],
    times_old: list[float],
    times_new: list[float],
) -> None:
    """Time the old and the new function once each, the old first on even runs."""
    if run % 2:
        times_new.append(_seconds(after, inputs))
        times_old.append(_seconds(before, inputs))
    else:
        times_old.append(_seconds(before, inputs))
        times_new.append(_seconds(after, inputs))


Timings = dict[str, tuple[float, float]]
"""Per function, seconds of (old, new) over all its inputs."""


def compare(old: ModuleType, inputs: dict[str, list[Any]], repeats: int) -> tuple[Timings, Timings]:
    """The seconds of each function, old and new interleaved: for each chunk of
    :data:`CHUNK` inputs the minimum of ``repeats`` runs, summed; and the minimum of
    ``repeats`` runs over all the inputs at once (more exposed to a busy machine)."""
    best: Timings = {}
    whole: Timings = {}
    gc.disable()
    try:
        for name in FUNCTIONS:
            before, after = getattr(old, name), getattr(state_codec, name)
            values = inputs[name]
            for value in values:  # the same results, and both warmed up
                if before(value) != after(value):
                    raise AssertionError(f"{name}: the codecs disagree on {value!r:.200}")
            total_old = total_new = 0.0
            for start in range(0, len(values), CHUNK):
                chunk = values[start : start + CHUNK]
                times_old: list[float] = []
                times_new: list[float] = []
                for run in range(repeats):
                    _interleaved(run, before, after, chunk, times_old, times_new)
                total_old += min(times_old)
                total_new += min(times_new)
            best[name] = (total_old, total_new)
            times_old, times_new = [], []
            for run in range(repeats):  # the whole population per run, as first measured
                _interleaved(run, before, after, values, times_old, times_new)
                gc.collect()
            whole[name] = (min(times_old), min(times_new))
    finally:
        gc.enable()
    return best, whole


def run(people: int = DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS) -> Result:
    """Time the five codec functions, old and new interleaved, on one population."""
    old = old_codec()
    inputs = population(people)
    best, whole = compare(old, inputs, repeats)
    ratios = {name: round(new / old_s, 3) for name, (old_s, new) in best.items()}
    whole_ratios = {name: round(new / old_s, 3) for name, (old_s, new) in whole.items()}
    return Result(
        name=NAME,
        params={
            "people": people,
            "repeats": repeats,
            "inputs": {name: len(values) for name, values in inputs.items()},
            "old_commit": OLD_COMMIT,
        },
        measured={
            "us_per_call": {
                name: round(1e6 * new / len(inputs[name]), 2) for name, (_, new) in best.items()
            },
            "ratios": ratios,
        },
        baseline={
            "what": f"tenure/domain/codec.py at {OLD_COMMIT}, same inputs, interleaved",
            "us_per_call": {
                name: round(1e6 * old_s / len(inputs[name]), 2) for name, (old_s, _) in best.items()
            },
        },
        ratio=max(ratios.values()),
        notes={
            "whole_population_ratios": whole_ratios,
            "whole_population_meaning": "new/old, minimum of the repeats of one run over all"
            " the inputs (the first measurement's method; preemption on a busy machine"
            " inflates these runs, so the chunked ratios above are the ones to read)",
        },
        ratio_meaning="largest new/old time of the five functions (min of repeats; lower is"
        " better, <= 1.0: not slower)",
    )
