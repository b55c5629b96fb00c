"""Problems found while loading a config: collected, never raised one at a time.

One message format for every strict loader (inventory, exporter config, generator settings):
`FILE:LINE: dotted.path: message`. Data that came without lines (a JSON request body, an HTTP
answer) is located by its JSON path instead: `$.devices[3].ip: message`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# A value quoted in a message is cut to this many characters: an error about a 1 MB string (or a
# value an alias bomb built) must cost as little as an error about a short one.
MAX_QUOTED = 80


def dotted(path: tuple[str | int, ...]) -> str:
    """`("devices", 3, "ip")` -> `devices[3].ip`."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{bounded(str(part))}" if out else bounded(str(part))
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    location: str  # "file:line" for YAML, "$.devices[3].ip" for data without lines
    message: str  # what is wrong, without the place
    path: tuple[str | int, ...] = ()  # the field: ("devices", 3, "ip")
    # Machine-readable class for API clients; "" = invalid value. "duplicate" = the value clashes
    # with another item (an HTTP service answers 409 instead of 422).
    code: str = ""

    def __str__(self) -> str:
        parts = [self.location] if self.location else []
        # A JSON location already is the path; a file location gets the dotted path after it.
        if self.path and not self.location.startswith("$"):
            parts.append(dotted(self.path))
        return ": ".join(parts + [self.message])


class ConfigError(Exception):
    """A config document is invalid. `problems` lists every error found, in source order."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InventoryError(ConfigError):
    """The inventory is invalid."""


def bounded(text: str, limit: int = MAX_QUOTED) -> str:
    """`text`, or its first `limit` characters, an ellipsis and the total size."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def quote(value: object) -> str:
    """A user value inside a message: `'text'` (bounded), a number, or what kind of thing it is.
    Never the repr of a container, which an alias bomb makes as large as memory."""
    if isinstance(value, str):
        if len(value) <= MAX_QUOTED:
            return repr(value)
        return f"{value[:MAX_QUOTED]!r}… ({len(value):,} characters)"
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 256 else f"a {value.bit_length()}-bit number"
        return bounded(text)
    if isinstance(value, float):
        return repr(value)
    return describe_value(value)


def describe_value(value: object) -> str:
    """How a wrong value is named in messages: `got number 12`, `got an empty string`, ..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {quote(value)}" if value.strip() else "an empty string"
    if isinstance(value, int | float):
        return f"number {quote(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return bounded(type(value).__name__)


def report_problems(problems: list[Problem], source: str, suffix: str = "") -> None:
    """Every problem on stderr, one per line, then `N error(s) in SOURCE` (the `--check` contract)."""
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} error(s) in {source}{suffix}", file=sys.stderr)
