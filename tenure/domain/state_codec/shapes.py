"""The shapes of values in the state documents: how each kind of value is written and read.

A :class:`Shape` does not encode anything itself: it writes the *Python source* of the
expression that encodes (or reads back) one value, given the source of that value. Each
:class:`~tenure.domain.state_codec.layout.Layout` pastes its fields' expressions into
functions it compiles once, at import, so a call runs straight-line code with no lookup of
shapes and no dispatch per field (``Layout.source`` shows the result).

The expression given to a shape may be evaluated more than once (a local name, an
attribute or a subscript of one); objects the expression needs (functions, constants) are
bound to names of the generated module with :meth:`Names.of`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from tenure.domain.events import EventId
from tenure.domain.lattice import DaySpan, frozen_map
from tenure.domain.state_codec.json_values import (
    Json,
    canonical_bytes,
    read_bool,
    read_date,
    read_int,
    read_list,
    read_object,
    read_opt_str,
    read_str,
    read_time,
    write_time,
)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class Names:
    """The names of the generated module: objects its source refers to, and fresh locals."""

    def __init__(self) -> None:
        self.bound: dict[str, object] = {}
        self._by_id: dict[int, str] = {}
        self._locals = 0

    def of(self, value: object, hint: str) -> str:
        """The name ``value`` has in the generated module (bound on first use)."""
        name = self._by_id.get(id(value))
        if name is None:
            name = f"_{''.join(c if c.isalnum() else '_' for c in hint)}_{len(self.bound)}"
            self.bound[name] = value
            self._by_id[id(value)] = name
        return name

    def fresh(self, hint: str = "x") -> str:
        """A local name not used before (comprehension variables, walrus targets)."""
        self._locals += 1
        return f"{hint}{self._locals}"


Source = Callable[[str, Names], str]
"""The source of an expression from the source of a value."""
ParseSource = Callable[[str, str, Names], str]
"""The source of an expression reading a JSON value back, from the source of the value and
``where`` (the place in the document, for error messages)."""


@dataclass(frozen=True, slots=True)
class Shape(Generic[T]):
    """How one kind of value is written to JSON and read back, as source expressions.

    ``encode``: its canonical JSON value. ``parse``: the value of such a JSON value
    (``MalformedDocument`` if not one). ``fast``: a JSON value orjson writes in one call
    that ``parse`` reads back, not canonical (sets in their own order, times as orjson
    writes them), or ``None`` when the value has none: the projector's delta log.
    ``write``: what the canonical encoder to bytes hands orjson, when it differs from
    ``encode`` (an ``orjson.Fragment`` of the same bytes, written faster).
    """

    encode: Source
    parse: ParseSource
    fast: Source | None = None
    write: Source | None = None


def AS_IS(value: str, names: Names) -> str:
    """A value orjson writes (or that is canonical JSON) as it is: its own source."""
    return value


def calling(function: Callable[[Any], Json], name: str = "") -> Source:
    """The source calling ``function`` on the value."""
    return lambda value, names: f"{names.of(function, name or function.__name__)}({value})"


def reading(function: Callable[[Json, str], Any], name: str = "") -> ParseSource:
    """The source calling ``function`` on the JSON value and ``where``."""
    return lambda value, where, names: (
        f"{names.of(function, name or function.__name__)}({value}, {where!r})"
    )


def _itself(value: str, where: str, names: Names) -> str:
    return value


def checked(
    test: Callable[[str], str],
    function: Callable[[Json, str], Any],
    build: ParseSource = _itself,
) -> ParseSource:
    """Read a local name inline: ``build`` of it when ``test`` holds, else ``function``
    (which says what is wrong); any other value source calls ``function``."""
    call = reading(function)

    def parse(value: str, where: str, names: Names) -> str:
        if not value.isidentifier():
            return call(value, where, names)
        built = build(value, where, names)
        return f"({built} if {test(value)} else {call(value, where, names)})"

    return parse


def _pair(value: str) -> str:
    return f"type({value}) is list and len({value}) == 2"


def owned_map(entries: dict[Any, Any]) -> Mapping[Any, Any]:
    """A read-only view of a dict nothing else holds (``frozen_map`` without its copy)."""
    return MappingProxyType(entries) if entries else _EMPTY


_EMPTY: Final[Mapping[Any, Any]] = frozen_map()


def _read_event_id(value: Json, where: str) -> EventId:
    source, ident = read_list(value, where, 2)
    return (read_str(source, where), read_str(ident, where))


def _read_span(value: Json, where: str) -> DaySpan:
    first, last = read_list(value, where, 2)
    return DaySpan(read_time(first, where), read_time(last, where))


def opt(shape: Shape[T]) -> Shape[T | None]:
    """A value or ``None`` (``null``)."""
    fast = shape.fast

    def fast_opt(value: str, names: Names) -> str:
        assert fast is not None
        written = fast(value, names)
        return value if written == value else f"(None if {value} is None else {written})"

    return Shape(
        lambda value, names: f"(None if {value} is None else {shape.encode(value, names)})",
        lambda value, where, names: (
            f"(None if {value} is None else {shape.parse(value, where, names)})"
        ),
        None if fast is None else fast_opt,
    )


TEXT: Final[Shape[str]] = Shape(AS_IS, checked(lambda v: f"type({v}) is str", read_str), AS_IS)
OPT_TEXT: Final[Shape[str | None]] = Shape(
    AS_IS, checked(lambda v: f"({v} is None or type({v}) is str)", read_opt_str), AS_IS
)
INT: Final[Shape[int]] = Shape(AS_IS, checked(lambda v: f"type({v}) is int", read_int), AS_IS)
BOOL: Final[Shape[bool]] = Shape(AS_IS, checked(lambda v: f"type({v}) is bool", read_bool), AS_IS)
TIME: Final[Shape[Any]] = Shape(calling(write_time), reading(read_time), AS_IS)
"""A UTC time: RFC 3339 with microseconds and ``Z``."""
OPT_TIME: Final = opt(TIME)
EVENT_ID: Final[Shape[EventId]] = Shape(
    lambda value, names: f"[{value}[0], {value}[1]]",
    checked(
        lambda v: f"{_pair(v)} and type({v}[0]) is str and type({v}[1]) is str",
        _read_event_id,
        lambda v, where, names: f"({v}[0], {v}[1])",
    ),
    AS_IS,
)
"""An event id ``(source, id)``: a list of two strings."""
SPAN: Final[Shape[DaySpan]] = Shape(
    lambda value, names: (
        f"[{names.of(write_time, 'write_time')}({value}.first_at),"
        f" {names.of(write_time, 'write_time')}({value}.last_at)]"
    ),
    checked(
        _pair,
        _read_span,
        lambda v, where, names: (
            f"{names.of(DaySpan, 'DaySpan')}({names.of(read_time, 'read_time')}({v}[0], {where!r}),"
            f" {names.of(read_time, 'read_time')}({v}[1], {where!r}))"
        ),
    ),
    lambda value, names: f"({value}.first_at, {value}.last_at)",
)
"""A day span: ``[first_at, last_at]``."""
STR_SET: Final[Shape[frozenset[str]]] = Shape(
    lambda value, names: f"sorted({value})",
    lambda value, where, names: (
        f"frozenset([{TEXT.parse(x := names.fresh(), where, names)}"
        f" for {x} in {names.of(read_list, 'read_list')}({value}, {where!r})])"
    ),
    lambda value, names: f"list({value})",
)
"""A set of strings: a list sorted by code point."""


def set_of(item: Shape[T]) -> Shape[frozenset[T]]:
    """A set of values: a list sorted by the canonical bytes of each item (most sets hold
    zero or one: nothing to sort)."""

    def encode(value: str, names: Names) -> str:
        x = names.fresh()
        each = f"[{item.encode(x, names)} for {x} in {value}]"
        key = names.of(canonical_bytes, "canonical_bytes")
        return f"([] if not {value} else {each} if len({value}) < 2 else sorted({each}, key={key}))"

    def parse(value: str, where: str, names: Names) -> str:
        x = names.fresh()
        items = f"{names.of(read_list, 'read_list')}({value}, {where!r})"
        return f"frozenset([{item.parse(x, where, names)} for {x} in {items}])"

    def fast(value: str, names: Names) -> str:
        assert item.fast is not None
        x = names.fresh()
        written = item.fast(x, names)
        if written == x:
            return f"list({value})"
        return f"([{written} for {x} in {value}] if {value} else [])"  # an empty one is common

    return Shape(encode, parse, None if item.fast is None else fast)


def tuple_of(item: Shape[T]) -> Shape[tuple[T, ...]]:
    """A tuple of values: a list in the tuple's own order."""

    def encode(value: str, names: Names) -> str:
        x = names.fresh()
        return f"[{item.encode(x, names)} for {x} in {value}]"

    def parse(value: str, where: str, names: Names) -> str:
        x = names.fresh()
        items = f"{names.of(read_list, 'read_list')}({value}, {where!r})"
        return f"tuple([{item.parse(x, where, names)} for {x} in {items}])"

    return Shape(encode, parse)


def _keyed(
    value_shape: Shape[V], write_key: Source, read_key: ParseSource
) -> Shape[Mapping[Any, V]]:
    def encode(value: str, names: Names) -> str:
        k, v = names.fresh("k"), names.fresh("v")
        pair = f"{write_key(k, names)}: {value_shape.encode(v, names)}"
        return f"({{{pair} for {k}, {v} in {value}.items()}} if {value} else {{}})"

    def parse(value: str, where: str, names: Names) -> str:
        k, v = names.fresh("k"), names.fresh("v")
        pair = f"{read_key(k, where, names)}: {value_shape.parse(v, where, names)}"
        raw = f"{names.of(read_object, 'read_object')}({value}, {where!r})"
        return f"{names.of(owned_map, 'owned_map')}({{{pair} for {k}, {v} in {raw}.items()}})"

    return Shape(encode, parse)


def keyed_by_text(value_shape: Shape[V]) -> Shape[Mapping[str, V]]:
    """A map keyed by strings: a JSON object."""
    return _keyed(value_shape, AS_IS, lambda key, where, names: key)


def keyed_by_date(value_shape: Shape[V]) -> Shape[Mapping[Any, V]]:
    """A map keyed by dates: a JSON object keyed by ISO dates."""
    return _keyed(
        value_shape, lambda key, names: f"{key}.isoformat()", reading(read_date, "read_date")
    )


def _first_bytes(pair: tuple[Json, Any]) -> bytes:
    """The sort key of an encoded ``(key, value)`` pair: the canonical bytes of the key."""
    return canonical_bytes(pair[0])


def entries(key_shape: Shape[K], value_shape: Shape[V]) -> Shape[Mapping[K, V]]:
    """A map with composite keys: a list of ``[key, value]`` sorted by the key's bytes."""

    def encode(value: str, names: Names) -> str:
        k, v = names.fresh("k"), names.fresh("v")
        one = f"[[{key_shape.encode(k, names)}, {value_shape.encode(v, names)}] for {k}, {v} in {value}.items()]"  # noqa: E501
        k2, v2 = names.fresh("k"), names.fresh("v")
        keyed = f"[({key_shape.encode(k2, names)}, {v2}) for {k2}, {v2} in {value}.items()]"
        k3, v3 = names.fresh("k"), names.fresh("v")
        order = names.of(_first_bytes, "first_bytes")
        many = (
            f"[[{k3}, {value_shape.encode(v3, names)}]"
            f" for {k3}, {v3} in sorted({keyed}, key={order})]"
        )
        return f"([] if not {value} else {one} if len({value}) < 2 else {many})"

    def parse(value: str, where: str, names: Names) -> str:
        item = f"{where}[]"
        p, k, v = names.fresh("p"), names.fresh("k"), names.fresh("v")
        read_list_ = names.of(read_list, "read_list")
        checked_pair = f"({p} if {_pair(p)} else {read_list_}({p}, {item!r}, 2))"
        pairs = f"[{checked_pair} for {p} in {read_list_}({value}, {where!r})]"
        pair = f"{key_shape.parse(k, item, names)}: {value_shape.parse(v, item, names)}"
        return f"{names.of(owned_map, 'owned_map')}({{{pair} for {k}, {v} in {pairs}}})"

    def fast(value: str, names: Names) -> str:
        assert key_shape.fast is not None and value_shape.fast is not None
        k, v = names.fresh("k"), names.fresh("v")
        pair = f"[{key_shape.fast(k, names)}, {value_shape.fast(v, names)}]"
        return f"([{pair} for {k}, {v} in {value}.items()] if {value} else [])"

    has_fast = key_shape.fast is not None and value_shape.fast is not None
    return Shape(encode, parse, fast if has_fast else None)


def pair_of(first: Shape[K], second: Shape[V]) -> Shape[tuple[K, V]]:
    """A pair: a list of two."""

    def parse(value: str, where: str, names: Names) -> str:
        p = names.fresh("p")
        read = f"({p} := {names.of(read_list, 'read_list')}({value}, {where!r}, 2))"
        a, b = first.parse(f"{p}[0]", where, names), second.parse(f"{p}[1]", where, names)
        return f"({read} and ({a}, {b}))"  # a list of two is true

    return Shape(
        lambda value, names: (
            f"[{first.encode(f'{value}[0]', names)}, {second.encode(f'{value}[1]', names)}]"
        ),
        parse,
    )


def written_first_by(shape: Shape[T], fragment: Callable[[T], Any]) -> Shape[T]:
    """``shape`` whose canonical bytes come from ``fragment`` (an ``orjson.Fragment`` of the
    same bytes, or ``None`` to fall back to ``shape.encode``)."""
    return Shape(
        shape.encode,
        shape.parse,
        shape.fast,
        lambda value, names: (
            f"({names.of(fragment, fragment.__name__)}({value}) or {shape.encode(value, names)})"
        ),
    )
