"""The field tables of the state documents: shapes of values, fields, layouts.

A document (a device, a person, an identity graph) and every record inside it (an
activation, an order, a device contribution...) is declared once, as a :class:`Layout`: the
domain type it builds and its :class:`Field` s in order, each with the :class:`Shape` of its
value (how the value is written and read back). The canonical encoder, the decoder, the
set of keys a decoder accepts and the projector's fast delta encoder are all driven by these
tables, and ``tests/unit/domain/test_state_codec_layout.py`` checks that every table names
exactly the fields of its domain type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import attrgetter, call
from typing import Any, Final, Generic, TypeVar

from tenure.domain.events import EventId
from tenure.domain.lattice import DaySpan, frozen_map
from tenure.domain.state_codec.json_values import (
    SCHEMA_VERSION,
    Json,
    canonical_bytes,
    check_header,
    dumps,
    loads,
    malformed,
    read_bool,
    read_date,
    read_int,
    read_list,
    read_object,
    read_opt_str,
    read_str,
    read_time,
    sorted_list,
    write_time,
)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True, slots=True)
class Shape(Generic[T]):
    """How one kind of value is written to JSON and read back.

    ``fast``: a JSON value orjson writes in one call that :attr:`parse` reads back, not
    canonical (sets in their own order, times as orjson writes them): the projector's delta
    log. ``None``: the value has no fast form (use :attr:`encode`). :data:`AS_IS` (the
    value itself): orjson writes a string, a UTC time or an event id tuple as parse reads it.
    """

    encode: Callable[[T], Json]
    parse: Callable[[Json, str], T]
    fast: Callable[[T], Json] | None = None


def AS_IS(value: T) -> T:
    """The fast form of a value orjson writes as :class:`Shape.parse` reads it: itself."""
    return value


def _opt(shape: Shape[T]) -> Shape[T | None]:
    def encode(value: T | None) -> Json:
        return None if value is None else shape.encode(value)

    def parse(value: Json, where: str) -> T | None:
        return None if value is None else shape.parse(value, where)

    fast = shape.fast
    if fast is None or fast is AS_IS:
        return Shape(encode, parse, fast)
    return Shape(encode, parse, lambda value: None if value is None else fast(value))


def _event_id(event_id: EventId) -> list[str]:
    return [event_id[0], event_id[1]]


def _read_event_id(value: Json, where: str) -> EventId:
    source, ident = read_list(value, where, 2)
    return (read_str(source, where), read_str(ident, where))


def _span(span: DaySpan) -> list[str]:
    return [write_time(span.first_at), write_time(span.last_at)]


def _read_span(value: Json, where: str) -> DaySpan:
    first, last = read_list(value, where, 2)
    return DaySpan(read_time(first, where), read_time(last, where))


TEXT: Final[Shape[str]] = Shape(AS_IS, read_str, AS_IS)
OPT_TEXT: Final[Shape[str | None]] = Shape(AS_IS, read_opt_str, AS_IS)
INT: Final[Shape[int]] = Shape(AS_IS, read_int, AS_IS)
BOOL: Final[Shape[bool]] = Shape(AS_IS, read_bool, AS_IS)
TIME: Final[Shape[datetime]] = Shape(write_time, read_time, AS_IS)
OPT_TIME: Final = _opt(TIME)
EVENT_ID: Final[Shape[EventId]] = Shape(_event_id, _read_event_id, AS_IS)
SPAN: Final[Shape[DaySpan]] = Shape(_span, _read_span, attrgetter("first_at", "last_at"))
STR_SET: Final[Shape[frozenset[str]]] = Shape(
    sorted, lambda v, where: frozenset(read_str(item, where) for item in read_list(v, where)), list
)
"""A set of strings: a list sorted by code point."""


def set_of(item: Shape[T]) -> Shape[frozenset[T]]:
    """A set of values: a list sorted by the canonical bytes of each item."""
    fast = item.fast
    return Shape(
        lambda values: sorted_list(values, item.encode),
        lambda value, where: frozenset(item.parse(v, where) for v in read_list(value, where)),
        None if fast is None else (lambda values: [fast(v) for v in values]),
    )


def tuple_of(item: Shape[T]) -> Shape[tuple[T, ...]]:
    """A tuple of values: a list in the tuple's own order."""
    return Shape(
        lambda values: [item.encode(v) for v in values],
        lambda value, where: tuple(item.parse(v, where) for v in read_list(value, where)),
    )


def keyed_by_text(value_shape: Shape[V]) -> Shape[Mapping[str, V]]:
    """A map keyed by strings: a JSON object."""
    return Shape(
        lambda entries: {k: value_shape.encode(v) for k, v in entries.items()},
        lambda value, where: frozen_map(
            {k: value_shape.parse(v, where) for k, v in read_object(value, where).items()}
        ),
    )


def keyed_by_date(value_shape: Shape[V]) -> Shape[Mapping[date, V]]:
    """A map keyed by dates: a JSON object keyed by ISO dates."""
    return Shape(
        lambda entries: {d.isoformat(): value_shape.encode(v) for d, v in entries.items()},
        lambda value, where: frozen_map(
            {
                read_date(d, where): value_shape.parse(v, where)
                for d, v in read_object(value, where).items()
            }
        ),
    )


def entries(key_shape: Shape[K], value_shape: Shape[V]) -> Shape[Mapping[K, V]]:
    """A map with composite keys: a list of ``[key, value]`` sorted by the key's bytes."""

    def encode(mapping: Mapping[K, V]) -> Json:
        pairs = [(key_shape.encode(k), v) for k, v in mapping.items()]
        pairs.sort(key=lambda pair: canonical_bytes(pair[0]))
        return [[k, value_shape.encode(v)] for k, v in pairs]

    def parse(value: Json, where: str) -> Mapping[K, V]:
        item = f"{where}[]"
        pairs = (read_list(pair, item, 2) for pair in read_list(value, where))
        return frozen_map({key_shape.parse(k, item): value_shape.parse(v, item) for k, v in pairs})

    key_fast, value_fast = key_shape.fast, value_shape.fast
    if key_fast is None or value_fast is None:
        return Shape(encode, parse)
    if key_fast is AS_IS:
        return Shape(
            encode, parse, lambda mapping: [[k, value_fast(v)] for k, v in mapping.items()]
        )
    return Shape(
        encode, parse, lambda mapping: [[key_fast(k), value_fast(v)] for k, v in mapping.items()]
    )


def pair_of(first: Shape[K], second: Shape[V]) -> Shape[tuple[K, V]]:
    """A pair: a list of two."""
    return Shape(
        lambda pair: [first.encode(pair[0]), second.encode(pair[1])],
        lambda value, where: _read_pair(first, second, value, where),
    )


def _read_pair(first: Shape[K], second: Shape[V], value: Json, where: str) -> tuple[K, V]:
    a, b = read_list(value, where, 2)
    return (first.parse(a, where), second.parse(b, where))


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a JSON object: the domain type's attribute of the same name.

    ``omit_empty``: written only when the value is not empty (an additive field: documents
    written before it existed read as empty, and an empty value is never written).
    """

    name: str
    shape: Shape[Any]
    omit_empty: bool = False


@dataclass(frozen=True, slots=True)
class Layout(Generic[T]):
    """The field table of one JSON object and the domain type it builds.

    ``kind`` is set for a whole document, which also carries ``"v"`` (the schema version)
    and ``"kind"``; ``where`` names the object in error messages.
    """

    build: Callable[..., T]
    where: str
    fields: tuple[Field, ...]
    kind: str | None = None
    keys: frozenset[str] = field(init=False)
    """The keys every object of this layout has (with ``"v"`` and ``"kind"`` for a document)."""
    names: tuple[str, ...] = field(init=False)
    values_of: Callable[[T], tuple[Any, ...]] = field(init=False)
    """The field values of a domain value, in table order."""
    _header: dict[str, Any] = field(init=False)
    _encoders: tuple[Callable[[Any], Json], ...] = field(init=False)
    _parsers: tuple[tuple[str, Callable[[Json, str], Any], str], ...] = field(init=False)
    _optional: frozenset[str] = field(init=False)
    _fast: tuple[Callable[[Any], Json], ...] | None = field(init=False)

    def __post_init__(self) -> None:
        header = {"v": SCHEMA_VERSION, "kind": self.kind} if self.kind else {}
        names = tuple(f.name for f in self.fields)
        optional = frozenset(f.name for f in self.fields if f.omit_empty)
        getter = attrgetter(*names)
        for name, value in (
            ("keys", frozenset(header.keys() | set(names)) - optional),
            ("names", names),
            ("values_of", getter if len(names) > 1 else lambda v: (getter(v),)),
            ("_header", header),
            ("_encoders", tuple(f.shape.encode for f in self.fields)),
            (
                "_parsers",
                tuple(
                    (f.name, f.shape.parse, f"{self.where}.{f.name}" if self.kind else self.where)
                    for f in self.fields
                ),
            ),
            ("_optional", optional),
            ("_fast", _fast_forms(self.fields)),
        ):
            object.__setattr__(self, name, value)

    def to_json(self, value: T) -> dict[str, Any]:
        """The canonical JSON object of ``value``."""
        return self._written(self._encoders, value)

    def fast_json(self, value: T) -> dict[str, Any]:
        """The fast (non-canonical) JSON object of ``value``: each field's ``fast`` form."""
        if self._fast is None:
            raise TypeError(f"{self.where} has a field with no fast form")
        return self._written(self._fast, value)

    def _written(self, forms: tuple[Callable[[Any], Json], ...], value: T) -> dict[str, Any]:
        values = self.values_of(value)
        if not self._optional:  # zip and map in C: the codec's hot loop
            document = dict(zip(self.names, map(call, forms, values), strict=True))
            return {**self._header, **document} if self._header else document
        document = self._header.copy()
        for name, form, v in zip(self.names, forms, values, strict=True):
            if v or name not in self._optional:
                document[name] = form(v)
        return document

    def from_json(self, value: Json, _: str = "") -> T:
        """The value of a JSON object; ``MalformedDocument`` (a ``ValueError``) if not one."""
        if self.kind:
            check_header(value, self.kind)
        raw = read_object(value, self.where)
        if raw.keys() != self.keys:
            read_object(raw, self.where, self.keys | (self._optional & raw.keys()))
        if not self._optional:  # the table's order is the type's: build positionally
            return self.build(*[parse(raw[name], where) for name, parse, where in self._parsers])
        parsed: dict[str, Any] = {}
        for name, parse, where in self._parsers:
            if name not in raw:
                parsed[name] = parse([], where)
            elif name in self._optional and not raw[name]:  # written only when not empty
                raise malformed(where, "a non-empty list (or no key)", raw[name])
            else:
                parsed[name] = parse(raw[name], where)
        return self.build(**parsed)

    def encode(self, value: T) -> bytes:
        """Canonical UTF-8 JSON bytes of ``value`` (equal values give equal bytes)."""
        return dumps(self.to_json(value))

    def decode(self, data: bytes | bytearray | memoryview | str) -> T:
        """The value of encoded bytes (``ValueError`` if they do not hold one)."""
        return self.from_json(loads(data, self.kind or self.where))

    @property
    def shape(self) -> Shape[T]:
        """This object as the value of another object's field."""
        if all(f.shape.fast is AS_IS for f in self.fields):  # one dict(zip()) for orjson
            names, values_of = self.names, self.values_of
            return Shape(
                self.to_json,
                self.from_json,
                lambda value: dict(zip(names, values_of(value), strict=True)),
            )
        return Shape(self.to_json, self.from_json, None if self._fast is None else self.fast_json)


def _fast_forms(fields: tuple[Field, ...]) -> tuple[Callable[[Any], Json], ...] | None:
    """Each field's fast form, or ``None`` when one has none."""
    forms = tuple(f.shape.fast for f in fields if f.shape.fast is not None)
    return forms if len(forms) == len(fields) else None
