"""Java properties files, written deterministically."""

from __future__ import annotations

from collections.abc import Mapping


def to_properties(values: Mapping[str, str | int | bool]) -> str:
    lines = []
    for key in sorted(values):
        value = values[key]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if "\n" in text:
            raise ValueError(f"property {key!r} has a newline in its value")
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"
