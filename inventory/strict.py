"""The strict-config kit every loader is built on (inventory, exporter config, generator settings).

- One checker (`Checker`) collects every problem as `Problem(location, message, path)`; printed
  as `FILE:LINE: dotted.path: message` (inventory/errors.py). Messages say what is wrong with the
  field; the place comes from the path.
- One duration grammar (`parse_duration`), Prometheus style: one or more `<number><unit>` terms,
  units `d`, `h`, `m`, `s`, `ms`, largest first, each at most once: `1h30m`, `2d`, `1.5s`, `500ms`.
  A plain number is seconds (`2`, `0.5`), everywhere, so files written for the older loaders
  (exporter `timeout: 3`, SNMP `timeout: 2`) stay valid. The value must be a whole number of
  milliseconds. `Duration.text` keeps the text as written when Prometheus, vmalert and Alertmanager
  all accept it (integers only), else a canonical form (`1.5s` -> `1s500ms`, `90` -> `1m30s`).
- Defaults live once, in the dataclasses: `Checker.build` only passes the fields a file sets, so
  anything absent (or invalid) keeps the dataclass default.
- One source-order sort (`in_source_order`), one base error (`ConfigError`, per-loader subclasses).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inventory.errors import ConfigError, Problem, bounded, describe_value, quote
from inventory.located import Locator, Path_
from inventory.model import LABEL_NAME_RE, NAME_RE
from inventory.secrets import Secret, reference_problem

MAX_TEXT = 128
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TERM_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|d|h|m|s)")
_PLAIN_RE = re.compile(r"^[0-9]{1,15}(?:\.[0-9]{1,9})?$")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_UNIT_ORDER = ("d", "h", "m", "s", "ms")
# What Prometheus (model.ParseDuration), vmalert and Alertmanager all read: integers, units in order.
_PROMETHEUS_RE = re.compile(r"^(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?$")
DURATION_GRAMMAR = "like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s ms, largest first; a plain number is seconds)"


class Invalid:
    """Returned by a field parser whose value was wrong (the problem is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID = Invalid()


def parse_duration(value: object) -> float | None:
    """Seconds, or None if `value` is not a duration in the grammar above."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        ms = value * 1000  # negative: a range check says what is allowed
        if not math.isfinite(ms):
            return None
    elif isinstance(value, str) and _PLAIN_RE.match(value):
        ms = float(value) * 1000  # a quoted plain number is seconds too
    elif isinstance(value, str) and value and len(value) <= 64:
        pos, ms, last = 0, 0.0, -1
        for match in _TERM_RE.finditer(value):
            if match.start() != pos:
                return None
            rank = _UNIT_ORDER.index(match.group(2))
            if rank <= last:
                return None  # units largest first, each once
            last = rank
            ms += float(match.group(1)) * _UNIT_MS[match.group(2)]
            pos = match.end()
        if pos != len(value) or last < 0:
            return None
    else:
        return None
    if abs(ms - round(ms)) > 1e-6:
        return None  # below a millisecond: no consumer can express it
    return round(ms) / 1000


def format_duration(seconds: float) -> str:
    """Canonical Prometheus text: `1m30s`, `1s500ms`, `0s`."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit in _UNIT_ORDER:
        count, ms = divmod(ms, _UNIT_MS[unit])
        if count:
            out += f"{count}{unit}"
    return out


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration emitted into generated configs (vmalert, Alertmanager) as `text`."""

    text: str  # e.g. "2s"; always in the form Prometheus, vmalert and Alertmanager accept

    @classmethod
    def parse(cls, value: object) -> Duration | None:
        seconds = parse_duration(value)
        if seconds is None:
            return None
        if isinstance(value, str) and _PROMETHEUS_RE.match(value):
            return cls(value)
        return cls(format_duration(seconds))

    @property
    def seconds(self) -> float:
        return parse_duration(self.text)

    def __str__(self) -> str:
        return self.text


def label_value_problem(value: str) -> str | None:
    """Why a label value is unusable, or None. Values go into Prometheus labels, alert texts and chat
    messages: control characters (NUL, CR, LF, tab) break those, and an empty value or one with edge
    spaces looks like another value (or, to Prometheus, like no label at all)."""
    if not value:
        return "must not be empty"
    if _CONTROL_RE.search(value):
        return "must not contain control characters (NUL, CR, LF, tab, ...)"
    if value != value.strip():
        return "must not start or end with spaces"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters, got {describe_value(value)}"
    return None


def read_config_file(path: str, error: type[ConfigError], what: str) -> str:
    """The text of a config file, or `error` naming the file (never a traceback)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise error([Problem(path, f"cannot read {what}: {exc}")]) from None


def in_source_order(problems: Iterable[Problem]) -> list[Problem]:
    """Sorted by line for "file:line" locations; stable, so same-line problems and JSON paths keep
    the order they were found in."""
    def line(p: Problem) -> int:
        tail = p.location.rpartition(":")[2]
        return int(tail) if tail.isdigit() else 0
    return sorted(problems, key=line)


def field_default(cls, name: str) -> object:
    """The default written in dataclass `cls` for field `name` (for messages and cross-checks)."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()


class Checker:
    """Collects problems; each parser returns the clean value, or INVALID after recording why."""

    def __init__(self, locate: Locator):
        self.locate = locate
        self.problems: list[Problem] = []

    # -- recording --------------------------------------------------------------------------

    def error(self, path: Path_, message: str, code: str = "") -> None:
        self.problems.append(Problem(self.locate(path), message, path, code))

    def raise_if_any(self, error: type[ConfigError]) -> None:
        if self.problems:
            raise error(in_source_order(self.problems))

    def count(self) -> int:
        return len(self.problems)

    # -- structure --------------------------------------------------------------------------

    def mapping(self, value: object, path: Path_, allowed: Iterable[str], what: str = "a mapping",
                null_ok: bool = True) -> dict | None:
        """The mapping (null = empty when `null_ok`), unknown keys reported; None if not a mapping."""
        if value is None and null_ok:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"{'' if path else 'the document '}must be {what}, got {describe_value(value)}")
            return None
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                self.error(path + (key if isinstance(key, str) else str(key),),
                           f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def seq(self, value: object, path: Path_, what: str = "a list", null_ok: bool = True,
            non_empty: bool = False) -> list | None:
        if value is None and null_ok:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            self.error(path, f"must be {what}, got {describe_value(value)}")
            return None
        return value

    def build(self, cls, m: dict, path: Path_, base=None, **parsers: Callable[[object, Path_], object]):
        """`cls` (or `base` replaced) with the fields `m` sets, each through its parser; absent or
        invalid fields keep the default written in the dataclass (or `base`'s value)."""
        kw = {}
        for key, parse in parsers.items():
            if key in m:
                value = parse(m[key], path + (key,))
                if value is not INVALID:
                    kw[key] = value
        return dataclasses.replace(base, **kw) if base is not None else cls(**kw)

    def secret(self, m: dict, name: str, path: Path_) -> Secret | None | Invalid:
        """`NAME_env` or `NAME_file` in `m` (at most one): a reference, never a value."""
        given = [k for k in ("env", "file") if f"{name}_{k}" in m]
        if len(given) > 1:
            self.error(path, f"give only one of {name}_env and {name}_file")
            return INVALID
        if not given:
            return None
        kind = given[0]
        ref = m[f"{name}_{kind}"]
        problem = reference_problem(kind, ref)
        if problem:
            if isinstance(ref, str):
                problem = problem.replace(repr(ref), quote(ref))
            self.error(path + (f"{name}_{kind}",), problem)
            return INVALID
        return Secret(kind, ref)

    # -- scalars ----------------------------------------------------------------------------

    def text(self, value: object, path: Path_, max_len: int = MAX_TEXT) -> str | Invalid:
        """A non-empty string of at most `max_len` characters: no control characters (NUL, CR, LF,
        tab: they break label values and the text formats they go into), no edge spaces."""
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"must be a non-empty string, got {describe_value(value)}")
            return INVALID
        if len(value) > max_len:
            self.error(path, f"must be at most {max_len} characters, got {describe_value(value)}")
        elif _CONTROL_RE.search(value):
            self.error(path, f"must not contain control characters, got {describe_value(value)}")
        elif value != value.strip():
            self.error(path, f"must not start or end with spaces, got {describe_value(value)}")
        else:
            return value
        return INVALID

    def text_list(self, value: object, path: Path_) -> tuple[str, ...]:
        items = self.seq(value, path, "a list of strings", null_ok=False)
        if items is None:
            return ()
        out = (self.text(v, path + (i,)) for i, v in enumerate(items))
        return tuple(v for v in out if v is not INVALID)

    def name(self, value: object, path: Path_, what: str = "") -> str | Invalid:
        """A name (devices, profiles, receivers, ...): `what` says which when the path ends in a key."""
        if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > MAX_TEXT:
            self.error(path, f"{what + ' ' if what else ''}must match [a-z0-9][a-z0-9._-]* (at most {MAX_TEXT} characters), "
                             f"got {describe_value(value)}")
            return INVALID
        return value

    def label_name(self, value: object, path: Path_) -> str | Invalid:
        if not isinstance(value, str) or not LABEL_NAME_RE.match(value) or value.startswith("__"):
            self.error(path, f"must be a label name [a-z_][a-z0-9_]* (not starting __), got {describe_value(value)}")
            return INVALID
        return value

    def boolean(self, value: object, path: Path_) -> bool | Invalid:
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, got {describe_value(value)}")
            return INVALID
        return value

    def integer(self, value: object, path: Path_, low: int, high: int) -> int | Invalid:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(path, f"must be a whole number from {low} to {high}, got {describe_value(value)}")
            return INVALID
        return value

    def number(self, value: object, path: Path_, low: float, high: float) -> float | Invalid:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            self.error(path, f"must be a number from {low:g} to {high:g}, got {describe_value(value)}")
            return INVALID
        return float(value)

    def choice(self, value: object, path: Path_, allowed: Iterable[str]) -> str | Invalid:
        allowed = tuple(allowed)
        if not isinstance(value, str) or value not in allowed:
            self.error(path, f"must be one of {', '.join(allowed)}, got {describe_value(value)}")
            return INVALID
        return value

    def seconds(self, value: object, path: Path_, low: float = 0.0, high: float = 86400.0,
                inclusive: bool = False) -> float | Invalid:
        """A duration in seconds, above `low` (at least `low` when `inclusive`) and at most `high`."""
        seconds = parse_duration(value)
        if seconds is None:
            self.error(path, f"must be a duration {DURATION_GRAMMAR}, got {describe_value(value)}")
            return INVALID
        if not (low <= seconds if inclusive else low < seconds) or seconds > high:
            above = f"from {format_duration(low)}" if inclusive else f"above {format_duration(low)}"
            self.error(path, f"must be a duration {above} to {format_duration(high)}, got {describe_value(value)}")
            return INVALID
        return seconds

    def duration(self, value: object, path: Path_, low: float = 0.0, high: float = 366 * 86400.0) -> Duration | Invalid:
        """A Duration (text for generated configs) from `low` to `high` seconds inclusive."""
        seconds = self.seconds(value, path, low=0.0, high=high, inclusive=True)
        if seconds is INVALID:
            return INVALID
        if seconds < low:
            self.error(path, f"must be at least {format_duration(low)}, got {describe_value(value)}")
            return INVALID
        return Duration.parse(value)

    def network(self, value: object, path: Path_) -> ipaddress.IPv4Network | ipaddress.IPv6Network | Invalid:
        """A CIDR without host bits (`198.18.0.0/15`)."""
        if not isinstance(value, str):
            self.error(path, f"must be a CIDR like 198.18.0.0/15, got {describe_value(value)}")
            return INVALID
        try:
            return ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            self.error(path, f"invalid CIDR {quote(value)}: {bounded(str(exc))}")
            return INVALID

    def ip(self, value: object, path: Path_) -> ipaddress.IPv4Address | ipaddress.IPv6Address | Invalid:
        """A unicast host address literal (no prefix, no zone)."""
        try:
            addr = ipaddress.ip_address(value) if isinstance(value, str) else None
        except ValueError:
            addr = None
        if addr is None or getattr(addr, "scope_id", None) is not None:
            self.error(path, f"must be an IPv4 or IPv6 address (no prefix or zone), got {describe_value(value)}")
            return INVALID
        if addr.is_unspecified or addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
            self.error(path, f"{addr.compressed} is not a unicast host address")
            return INVALID
        return addr


__all__ = ["DURATION_GRAMMAR", "INVALID", "MAX_TEXT", "Checker", "ConfigError", "Duration", "Invalid",
           "field_default", "format_duration", "in_source_order", "label_value_problem", "parse_duration", "quote"]
