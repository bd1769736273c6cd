"""The field tables of the state documents, compiled once into their encoders and decoders.

A document (a device, a person, an identity graph) and every record inside it (an
activation, an order, a device contribution...) is declared once, as a :class:`Layout`: the
domain type it builds and its :class:`Field` s in order, each with the
:class:`~tenure.domain.state_codec.shapes.Shape` of its value. At import each layout writes
the Python source of its canonical encoder, its bytes encoder, its fast (delta) encoder and
its decoder from the table and compiles it (as ``dataclasses`` and ``attrs`` do), so a call
runs straight-line code: no loop over fields, no lookup of shapes, no dispatch per value.
:attr:`Layout.source` holds that source (tracebacks show its lines), and
``tests/unit/domain/test_state_codec_layout.py`` checks that every table names exactly the
fields of its domain type.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import orjson

from tenure.domain.state_codec.json_values import (
    DUMPS_OPTIONS,
    SCHEMA_VERSION,
    check_header,
    malformed,
    read_object,
)
from tenure.domain.state_codec.shapes import Names, Shape

T = TypeVar("T")

FAST_OPTIONS: Final = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
"""orjson's options for the fast forms: times written as UTC with ``Z``. (A naive time,
which no parsed event carries, would be written as UTC.)"""


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
    """The field table of one JSON object, the domain type it builds, and the functions
    compiled from the table.

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
    """The field names, in table order (the domain type's order)."""
    source: str = field(init=False)
    """The Python source of the compiled functions below."""
    to_json: Callable[[T], dict[str, Any]] = field(init=False)
    """The canonical JSON object of a value."""
    encode: Callable[[T], bytes] = field(init=False)
    """Canonical UTF-8 JSON bytes of a value (equal values give equal bytes)."""
    encode_fast: Callable[[T], bytes] = field(init=False)
    """UTF-8 JSON of a value that :attr:`decode` reads back exactly, in one orjson call and
    **not canonical** (sets in their own order, times as orjson writes them); ``TypeError``
    when a field has no fast form."""
    from_json: Callable[..., T] = field(init=False)
    """The value of a JSON object (``MalformedDocument``, a ``ValueError``, if not one)."""
    decode: Callable[[bytes | bytearray | memoryview | str], T] = field(init=False)
    """The value of encoded bytes (``ValueError`` if they do not hold one)."""

    def __post_init__(self) -> None:
        names = Names()
        source = _module_source(self, names)
        filename = f"<state_codec layout {self.where}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = dict(names.bound)
        exec(compile(source, filename, "exec"), namespace)
        header = {"v", "kind"} if self.kind else set()
        for name, value in (
            ("keys", frozenset(header | {f.name for f in self.fields if not f.omit_empty})),
            ("names", tuple(f.name for f in self.fields)),
            ("source", source),
            *((name, namespace[name]) for name in _FUNCTIONS),
        ):
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> Shape[T]:
        """This object as the value of another object's field.

        Inside a comprehension (the value is a local name) the object is written and read
        inline: one dict display, and the constructor called on the fields read from an
        object with exactly the expected keys (any other object goes to :attr:`from_json`,
        which says what is wrong). Elsewhere: calls to the compiled functions.
        """
        if self.kind or any(f.omit_empty for f in self.fields):  # a header, or statements
            return Shape(self._call_to_json, self._call_from_json)
        has_fast = all(f.shape.fast is not None for f in self.fields)
        return Shape(
            self._inline_to_json, self._inline_from_json, self._inline_fast if has_fast else None
        )

    def _call_to_json(self, value: str, names: Names) -> str:
        return f"{names.of(self.to_json, f'{self.where}_to_json')}({value})"

    def _call_from_json(self, value: str, where: str, names: Names) -> str:
        return f"{names.of(self.from_json, f'{self.where}_from_json')}({value})"

    def _inline_to_json(self, value: str, names: Names) -> str:
        if not value.isidentifier():
            return self._call_to_json(value, names)
        return _display([(f.name, f.shape.encode(f"{value}.{f.name}", names)) for f in self.fields])

    def _inline_from_json(self, value: str, where: str, names: Names) -> str:
        if not value.isidentifier():
            return self._call_from_json(value, where, names)
        keys = names.of(self.keys, f"{self.where}_keys")
        build = names.of(self.build, getattr(self.build, "__name__", "build"))
        fields = ", ".join(
            f.shape.parse(f"{value}[{f.name!r}]", self.where, names) for f in self.fields
        )
        return (
            f"({build}({fields}) if type({value}) is dict and {value}.keys() == {keys}"
            f" else {self._call_from_json(value, where, names)})"
        )

    def _inline_fast(self, value: str, names: Names) -> str:
        forms = [(f.name, f.shape.fast) for f in self.fields]
        return _display([(name, form(f"{value}.{name}", names)) for name, form in forms if form])


_FUNCTIONS: Final = ("to_json", "encode", "encode_fast", "from_json", "decode")


def _display(items: list[tuple[str, str]]) -> str:
    """The source of a dict display of ``(key, value source)`` items."""
    return "{" + ", ".join(f"{key!r}: {value}" for key, value in items) + "}"


def _document(
    layout: Layout[Any], form: Callable[[Field], str], names: Names
) -> tuple[list[str], str]:
    """The body and the result of a function of ``value`` that returns its document: the
    header and every field's ``form`` (fields written only when not empty added after)."""
    header = [("v", repr(SCHEMA_VERSION)), ("kind", repr(layout.kind))] if layout.kind else []
    lines, items, optional = [], list(header), []
    for f in layout.fields:
        attribute = f"value.{f.name}"
        written = form(f)
        if f.omit_empty or written.count(attribute) > 1:  # read the attribute once
            local = f"f_{f.name}"
            lines.append(f"{local} = {attribute}")
            written = written.replace(attribute, local)
            if f.omit_empty:
                optional.append(f"if {local}:\n        document[{f.name!r}] = {written}")
                continue
        items.append((f.name, written))
    display = "{\n" + "".join(f"        {key!r}: {value},\n" for key, value in items) + "    }"
    if not optional:
        return lines, display
    return [*lines, f"document = {display}", *optional], "document"


def _function(name: str, argument: str, body: list[str], result: str | None) -> str:
    lines = "".join(f"    {line}\n" for line in body)
    returned = "" if result is None else f"    return {result}\n"
    return f"def {name}({argument}):\n{lines}{returned}"


def _module_source(layout: Layout[Any], names: Names) -> str:
    """The source of the layout's functions (``_FUNCTIONS``), bound names in ``names``."""

    def encoded(f: Field) -> str:
        return f.shape.encode(f"value.{f.name}", names)

    def written(f: Field) -> str:
        form = f.shape.write or f.shape.encode
        return form(f"value.{f.name}", names)

    def fast(f: Field) -> str:
        assert f.shape.fast is not None
        return f.shape.fast(f"value.{f.name}", names)

    dumps = names.of(orjson.dumps, "dumps")
    options = names.of(DUMPS_OPTIONS, "DUMPS_OPTIONS")
    body, document = _document(layout, encoded, names)
    functions = [_function("to_json", "value", body, document)]
    body, document = _document(layout, written, names)
    functions.append(_function("encode", "value", body, f"{dumps}({document}, option={options})"))
    if all(f.shape.fast is not None for f in layout.fields):
        fast_options = names.of(FAST_OPTIONS, "FAST_OPTIONS")
        body, document = _document(layout, fast, names)
        functions.append(
            _function("encode_fast", "value", body, f"{dumps}({document}, option={fast_options})")
        )
    else:
        message = f"{layout.where} has a field with no fast form"
        functions.append(_function("encode_fast", "value", [f"raise TypeError({message!r})"], None))
    functions.append(_from_json(layout, names))
    functions.append(_decode(layout, names))
    return "\n\n".join(functions)


def _from_json(layout: Layout[Any], names: Names) -> str:
    where = layout.where
    optional = frozenset(f.name for f in layout.fields if f.omit_empty)
    header = {"v", "kind"} if layout.kind else set()
    keys = names.of(frozenset(header | {f.name for f in layout.fields}) - optional, f"{where}_keys")
    read_object_ = names.of(read_object, "read_object")
    body = []
    if layout.kind:
        body.append(f"{names.of(check_header, 'check_header')}(value, {layout.kind!r})")
    else:
        body.append(f"if type(value) is not dict:\n        {read_object_}(value, {where!r})")
    allowed = f"{keys} | ({names.of(optional, f'{where}_optional')} & value.keys())"
    body.append(
        f"if value.keys() != {keys}:\n"
        f"        {read_object_}(value, {where!r}, {allowed if optional else keys})"
    )
    arguments = []
    for f in layout.fields:
        at = f"{where}.{f.name}" if layout.kind else where
        if f.omit_empty:  # written only when not empty: no key reads as empty
            local = f"f_{f.name}"
            body.append(
                f"if {f.name!r} in value:\n"
                f"        {local} = value[{f.name!r}]\n"
                f"        if not {local}:\n"
                f"            raise {names.of(malformed, 'malformed')}"
                f"({at!r}, 'a non-empty list (or no key)', {local})\n"
                f"    else:\n"
                f"        {local} = []"
            )
            arguments.append(f.shape.parse(local, at, names))
        else:
            arguments.append(f.shape.parse(f"value[{f.name!r}]", at, names))
    build = names.of(layout.build, getattr(layout.build, "__name__", "build"))
    result = f"{build}(\n" + "".join(f"        {a},\n" for a in arguments) + "    )"
    return _function("from_json", "value, where=None", body, result)


def _decode(layout: Layout[Any], names: Names) -> str:
    loads = names.of(orjson.loads, "loads")
    what = f"{layout.kind or layout.where} state"
    body = [
        f"document = {loads}(data)",
        f"if type(document) is not dict:\n"
        f"        raise {names.of(malformed, 'malformed')}({what!r}, 'a JSON object', document)",
    ]
    return _function("decode", "data", body, "from_json(document)")
