"""A small declarative description of input formats: each type knows its JSON Schema (draft
2020-12) and how a loader reads a value of it from a located `Node`, so the schema and the
loaders share one source of truth for keys, types, ranges and enums."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kvmpmu.records import Record
from kvmpmu.spec.schema import Node

Schema = dict[str, Any]


class Type(Record):
    __slots__ = ("doc",)
    doc: str

    def schema(self) -> Schema:
        raise TypeError(f"{type(self).__name__} has no JSON Schema")  # every subclass has one

    def json(self) -> Schema:
        out = self.schema()
        if self.doc:
            out["description"] = self.doc
        return out


class Int(Type):
    __slots__ = ("lo", "hi", "what", "default")

    def __init__(self, lo: int, hi: int, what: str = "an integer", default: int | None = None,
                 doc: str = "") -> None:
        self.lo, self.hi, self.what, self.default, self.doc = lo, hi, what, default, doc

    def schema(self) -> Schema:
        out: Schema = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        if self.default is not None:
            out["default"] = self.default
        return out

    def read(self, node: Node) -> int:
        return node.integer(self.lo, self.hi, self.what)


class Enum(Type):
    __slots__ = ("choices", "default", "any_case")

    def __init__(self, choices: tuple[str, ...], default: str | None = None, doc: str = "",
                 any_case: bool = False) -> None:
        self.choices, self.default, self.doc = choices, default, doc
        self.any_case = any_case  # the loader reads it case-insensitively

    def schema(self) -> Schema:
        exact: Schema = {"enum": list(self.choices)}
        if self.default is not None:
            exact["default"] = self.default
        if not self.any_case:
            return exact
        return {"anyOf": [exact, {"type": "string", "pattern": any_case_pattern(self.choices)}]}

    def read(self, node: Node) -> str:
        if self.any_case and isinstance(node.value, str):
            node = Node(node.value.upper() if self.choices[0].isupper() else
                        node.value.lower(), node.loc, node.path)
        return node.choice(self.choices)


def any_case_pattern(choices: tuple[str, ...]) -> str:
    """An ECMA-262 pattern for the choices in any letter case (it has no (?i))."""
    def word(text: str) -> str:
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c)
                       for c in text)
    return "^(?:" + "|".join(word(c) for c in choices) + ")$"


class Str(Type):
    __slots__ = ("examples", "pattern")

    def __init__(self, doc: str = "", examples: tuple[str, ...] = (),
                 pattern: str | None = None) -> None:
        self.doc, self.examples = doc, examples
        self.pattern = pattern  # ECMA-262, for the schema (the loader checks it its way)

    def schema(self) -> Schema:
        out: Schema = {"type": "string"}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.examples:
            out["examples"] = list(self.examples)
        return out

    def read(self, node: Node) -> str:
        return node.string()


class Bool(Type):
    __slots__ = ("default",)

    def __init__(self, default: bool | None = None, doc: str = "") -> None:
        self.default, self.doc = default, doc

    def schema(self) -> Schema:
        out: Schema = {"type": "boolean"}
        if self.default is not None:
            out["default"] = self.default
        return out

    def read(self, node: Node) -> bool:
        return node.boolean()


class Null(Type):
    __slots__ = ()

    def __init__(self, doc: str = "") -> None:
        self.doc = doc

    def schema(self) -> Schema:
        return {"type": "null"}


class Const(Type):
    __slots__ = ("value",)

    def __init__(self, value: Any, doc: str = "") -> None:
        self.value, self.doc = value, doc

    def schema(self) -> Schema:
        return {"const": self.value}


class Anything(Type):
    __slots__ = ()

    def __init__(self, doc: str = "") -> None:
        self.doc = doc

    def schema(self) -> Schema:
        return {}


_NAMED: dict[str, Type] = {}


class Named(Type):
    """A type the schema names once in `$defs` and refers to wherever it is used (a long
    enum, say); everything else (reading, its choices) is the type's own."""

    __slots__ = ("name", "kind")

    def __init__(self, name: str, kind: Type) -> None:
        self.name, self.kind, self.doc = name, kind, ""
        _NAMED[name] = kind

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.kind, attr)

    def json(self) -> Schema:
        return {"$ref": f"#/$defs/{self.name}"}


class Ref(Type):
    """A named definition (`$defs`), for shared and recursive parts."""

    __slots__ = ("name",)

    def __init__(self, name: str, doc: str = "") -> None:
        self.name, self.doc = name, doc

    def schema(self) -> Schema:
        return {"$ref": f"#/$defs/{self.name}"}


class ListOf(Type):
    __slots__ = ("item", "min_items", "max_items")

    def __init__(self, item: Type, min_items: int = 0, max_items: int | None = None,
                 doc: str = "") -> None:
        self.item, self.min_items, self.max_items, self.doc = item, min_items, max_items, doc

    def schema(self) -> Schema:
        out: Schema = {"type": "array", "items": self.item.json()}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out


class MapOf(Type):
    """A mapping of free keys (matching `keys`, a pattern, or `names` in any case) to values
    of one type."""

    __slots__ = ("value", "keys", "names")

    def __init__(self, value: Type, keys: str | None = None, doc: str = "",
                 names: tuple[str, ...] = ()) -> None:
        self.value, self.keys, self.doc, self.names = value, keys, doc, names

    def schema(self) -> Schema:
        keys = any_case_pattern(self.names) if self.names else self.keys  # made when asked
        if keys is None:
            return {"type": "object", "additionalProperties": self.value.json()}
        return {"type": "object", "patternProperties": {keys: self.value.json()},
                "additionalProperties": False}


class AnyOf(Type):
    __slots__ = ("options",)

    def __init__(self, options: tuple[Type, ...], doc: str = "") -> None:
        self.options, self.doc = options, doc

    def schema(self) -> Schema:
        return {"anyOf": [o.json() for o in self.options]}


class Obj(Type):
    """A mapping with known keys. `one_of`: groups of keys of which exactly one is given;
    `at_most_one`: groups of which at most one is; `required`: keys always given."""

    __slots__ = ("fields", "required", "one_of", "at_most_one", "extra", "keys")

    def __init__(self, fields: Mapping[str, Type], required: tuple[str, ...] = (),
                 one_of: tuple[tuple[str, ...], ...] = (),
                 at_most_one: tuple[tuple[str, ...], ...] = (), doc: str = "",
                 extra: Schema | None = None) -> None:
        self.fields, self.required, self.one_of = fields, required, one_of
        self.at_most_one, self.doc = at_most_one, doc
        self.extra = extra or {}  # further JSON Schema constraints
        self.keys = tuple(fields)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def schema(self) -> Schema:
        out: Schema = {"type": "object",
                       "properties": {k: t.json() for k, t in self.fields.items()},
                       "additionalProperties": False}
        if self.required:
            out["required"] = list(self.required)
        rules: list[Schema] = [{"oneOf": [{"required": [k]} for k in group]}
                               for group in self.one_of]
        rules += [{"not": {"anyOf": [{"required": [a, b]} for i, a in enumerate(group)
                                     for b in group[i + 1:]]}} for group in self.at_most_one]
        if rules:
            out["allOf"] = rules
        out.update(self.extra)
        return out

    def check(self, node: Node) -> Any:
        """The mapping, its keys checked against the fields (unknown keys named)."""
        return node.mapping(self.keys)


def document(title: str, root_type: Type, defs: Mapping[str, Type],
             doc: str = "") -> Schema:
    """A whole draft 2020-12 schema with the definitions its `Ref`s name."""
    out: Schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title}
    if doc:
        out["description"] = doc
    out.update(root_type.json())
    named = {name: t.json() for name, t in defs.items()}
    while True:  # the named types the schema refers to, and those they refer to
        missing = sorted(_refs(out) | _refs(named) - named.keys())
        missing = [m for m in missing if m not in named]
        if not missing:
            break
        named.update({m: _NAMED[m].json() for m in missing})
    if named:
        out["$defs"] = named
    return out


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"].removeprefix("#/$defs/")} if "$ref" in value else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()
