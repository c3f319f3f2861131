"""Read one YAML policy file and check its shape, keeping the line of every key.

A file is composed into YAML nodes, not plain values, so that each fault can name its
line and column. The shape is declared with the small spec classes below (a JSON-Schema
subset: records with required keys and no unknown keys, lists, choices, patterns, dates);
checking collects every fault instead of stopping at the first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from santelake.policy.errors import Fault, FaultKind


@dataclass
class Document:
    """A policy file's values, the position of each key path (``datasets[0].table``) and its faults."""

    path: Path
    data: Any = None
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def where(self, key: str) -> tuple[int, int]:
        """Line and column of ``key``, else of its nearest enclosing key that has one."""
        while key:
            if key in self.positions:
                return self.positions[key]
            key = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", key) if re.search(r"[.\[]", key) else ""
        return self.positions.get("", (1, 1))

    def fault(self, kind: FaultKind, key: str, message: str, **extra: Any) -> Fault:
        line, column = self.where(key)
        return Fault(self.path, line, column, kind, key, message, **extra)

    def add(self, kind: FaultKind, key: str, message: str) -> None:
        self.faults.append(self.fault(kind, key, message))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return int(node.start_mark.line) + 1, int(node.start_mark.column) + 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Spec:
    """What a node must be; ``check`` returns its plain value, or None after adding faults."""

    expected = "a value"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        raise NotImplementedError

    def fail(self, doc: Document, path: str, message: str) -> None:
        doc.add(FaultKind.SCHEMA, path, message)


class Text(Spec):
    def __init__(self, pattern: str | None = None, hint: str = "") -> None:
        self.pattern = re.compile(pattern) if pattern else None
        self.expected = hint or "text"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value.strip():
            return self.fail(doc, path, f"expected {self.expected}")
        if self.pattern and not self.pattern.fullmatch(node.value):
            return self.fail(doc, path, f"{node.value!r} is not {self.expected}")
        return node.value


class Scalar(Spec):
    """Text, a whole number or a date, as YAML reads it (``75`` in quotes stays text)."""

    expected = "text, a number or a date"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        value = _scalar(node)
        if not isinstance(value, str | int | dt.date) or isinstance(value, bool):
            return self.fail(doc, path, f"expected {self.expected}")
        return value


class Whole(Spec):
    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.expected = f"a whole number >= {minimum}"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        value = _scalar(node)
        if not isinstance(value, int) or isinstance(value, bool) or value < self.minimum:
            return self.fail(doc, path, f"expected {self.expected}")
        return value


class Day(Spec):
    expected = "a date, YYYY-MM-DD"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        value = _scalar(node)
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            return self.fail(doc, path, f"expected {self.expected}")
        return value


class Choice(Spec):
    def __init__(self, choices: Sequence[str]) -> None:
        self.choices = tuple(choices)
        self.expected = "one of " + ", ".join(self.choices)

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        value = _scalar(node)
        if value not in self.choices:
            return self.fail(doc, path, f"{value!r} is not {self.expected}")
        return value


class Items(Spec):
    """A list; ``unique`` reports repeated items."""

    def __init__(self, item: Spec, *, minimum: int = 0, exactly: int | None = None, unique: bool = False) -> None:
        self.item = item
        self.minimum = minimum
        self.exactly = exactly
        self.unique = unique
        self.expected = f"a list of {item.expected}"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            return self.fail(doc, path, f"expected {self.expected}")
        values = []
        seen: set[Any] = set()
        for index, child in enumerate(node.value):
            child_path = f"{path}[{index}]"
            doc.positions[child_path] = _mark(child)
            value = self.item.check(doc, child, child_path)
            if self.unique and value is not None and not isinstance(value, dict | list):
                if value in seen:
                    self.fail(doc, child_path, f"{value!r} is listed twice")
                seen.add(value)
            values.append(value)
        if self.exactly is not None and len(values) != self.exactly:
            return self.fail(doc, path, f"expected exactly {self.exactly} items, found {len(values)}")
        if len(values) < self.minimum:
            return self.fail(doc, path, f"expected at least {self.minimum} item(s)")
        return values


class Record(Spec):
    """A mapping with known keys only; ``one_of`` groups keys of which exactly one must be set."""

    def __init__(self, keys: Mapping[str, Spec], required: Sequence[str] = (),
                 one_of: Sequence[Sequence[str]] = (), hint: str = "a mapping") -> None:
        self.keys = dict(keys)
        self.required = tuple(required)
        self.one_of = tuple(tuple(group) for group in one_of)
        self.expected = hint

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(doc, path, f"expected {self.expected} with keys {', '.join(self.keys)}")
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            key_path = _join(path, key)
            doc.positions[key_path] = _mark(key_node)
            if key in values:
                self.fail(doc, key_path, "key given twice")
                continue
            if key not in self.keys:
                self.fail(doc, key_path, f"unknown key; expected one of {', '.join(self.keys)}")
                continue
            values[key] = self.keys[key].check(doc, value_node, key_path)
        for key in self.required:
            if key not in values:
                self.fail(doc, path, f"missing required key {key!r}")
        for group in self.one_of:
            given = [key for key in group if key in values]
            if len(given) != 1:
                self.fail(doc, path, f"give exactly one of {', '.join(group)}" +
                          (f" (found {', '.join(given)})" if given else ""))
        return values


class Table(Spec):
    """A mapping of free keys (matching ``key``) to values of one spec."""

    def __init__(self, key: Text, value: Spec) -> None:
        self.key = key
        self.value = value
        self.expected = f"a mapping of {key.expected} to {value.expected}"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(doc, path, f"expected {self.expected}")
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key.check(doc, key_node, path)
            if key is None:
                continue
            key_path = _join(path, key)
            doc.positions[key_path] = _mark(key_node)
            if key in values:
                self.fail(doc, key_path, "key given twice")
                continue
            values[key] = self.value.check(doc, value_node, key_path)
        return values


class AnyOf(Spec):
    """A scalar read by ``scalar`` or a mapping read by ``mapping``."""

    def __init__(self, scalar: Spec, mapping: Spec) -> None:
        self.scalar = scalar
        self.mapping = mapping
        self.expected = f"{scalar.expected}, or {mapping.expected}"

    def check(self, doc: Document, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping.check(doc, node, path)
        return self.scalar.check(doc, node, path)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    except (yaml.constructor.ConstructorError, ValueError):  # 2026-13-01 raises ValueError
        return None


def read(path: Path, spec: Spec, display: Path | None = None) -> Document:
    """Parse and check one file; syntax and shape faults land in ``doc.faults``."""
    doc = Document(display or path)
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        doc.faults.append(Fault(doc.path, line, column, FaultKind.SYNTAX, "", str(exc.problem or exc)))
        return doc
    except (OSError, UnicodeDecodeError) as exc:
        doc.faults.append(Fault(doc.path, 0, 0, FaultKind.SYNTAX, "", f"cannot read the file: {exc}"))
        return doc
    if node is None:
        doc.faults.append(Fault(doc.path, 1, 1, FaultKind.SCHEMA, "", "the file is empty"))
        return doc
    doc.positions[""] = _mark(node)
    doc.data = spec.check(doc, node, "")
    return doc
