"""Problems found while loading: collected, never raised one at a time."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    location: str  # "file:line" for YAML, "$.devices[3].ip" for JSON
    message: str
    path: tuple[str | int, ...] = ()
    # Machine-readable class for API clients; "" = invalid value. "duplicate" = the value clashes
    # with another item (an HTTP service answers 409 instead of 422).
    code: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class InventoryError(Exception):
    """The inventory is invalid. `problems` lists every error found, in source order."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def describe_value(value: object) -> str:
    """How a wrong value is named in messages: `got number 12`, `got an empty string`, ..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value!r}" if value.strip() else "an empty string"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def report_problems(problems: list[Problem], source: str, suffix: str = "") -> None:
    """Every problem on stderr, one per line, then `N error(s) in SOURCE` (the `--check` contract)."""
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} error(s) in {source}{suffix}", file=sys.stderr)
