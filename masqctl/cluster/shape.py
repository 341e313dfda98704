"""Reading native documents with errors that name the document and the field.

Native documents (Kubernetes objects, ``az`` JSON) carry many fields masqctl does not use;
those are never checked. A field masqctl uses that has the wrong type is an ``InputError``
naming the document and the path to the field, for example
``configmaps.yaml items[3].data: expected a mapping of strings, got list``.
"""

from __future__ import annotations

from typing import Any

from masqctl.errors import InputError

# Codes (docs/errors.md, "Bundles and snapshots").
E_SHAPE = "E322"          # a document or field of the wrong type


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


class Doc:
    """A mapping inside a document, with where it is (``origin`` and ``path``) for errors."""

    __slots__ = ("data", "origin", "path")

    def __init__(self, data: dict, origin: str, path: str = ""):
        self.data = data
        self.origin = origin
        self.path = path

    # -- locating ---------------------------------------------------------------------------
    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def where(self, key: str | None = None) -> str:
        path = self.at(key) if key is not None else self.path
        return f"{self.origin} {path}" if path else self.origin

    def fail(self, key: str | None, message: str, hint: str | None = None) -> InputError:
        return InputError(message, input=self.where(key), code=E_SHAPE, hint=hint)

    # -- typed access -----------------------------------------------------------------------
    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def mapping(self, key: str) -> Doc | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type_name(value)}")
        return Doc(value, self.origin, self.at(key))

    def mapping_or_empty(self, key: str) -> Doc:
        return self.mapping(key) or Doc({}, self.origin, self.at(key))

    def list(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type_name(value)}")
        return value

    def mappings(self, key: str) -> list[Doc]:
        out = []
        for i, item in enumerate(self.list(key)):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", f"expected a mapping, got {type_name(item)}")
            out.append(Doc(item, self.origin, f"{self.at(key)}[{i}]"))
        return out

    def str(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "missing (a string is required)")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type_name(value)}")
        if required and not value:
            raise self.fail(key, "is empty (a name is required)")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.list(key)):
            if not isinstance(item, str):
                raise self.fail(f"{key}[{i}]", f"expected a string, got {type_name(item)}")
            out.append(item)
        return tuple(out)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of strings, got {type_name(value)}")
        for k, v in value.items():
            if not isinstance(k, str):
                raise self.fail(key, f"expected a mapping of strings, got a {type_name(k)} key {k!r}")
            if not isinstance(v, str):
                raise self.fail(f"{key}.{k}", f"expected a string, got {type_name(v)}")
        return dict(value)

    def int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {type_name(value)}")
        return value

    def bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {type_name(value)}")
        return value
