"""Read YAML into plain Python data plus a map from data path to source line.

The validator works on plain data (so the HTTP service can validate JSON with the same code);
this module keeps the YAML line numbers that error messages need. It builds the data straight
from libyaml's parse events: PyYAML's node/constructor layer costs 5x more than parsing, and a
10,000-device inventory must load well under a second.

Anchors and aliases work for scalars, sequences and mappings (`weekdays: &wd [...]`, then `*wd`);
each alias use is a copy, and all alias uses together may add at most MAX_ALIAS_NODES nodes, so a
small document cannot expand into gigabytes ("billion laughs"). Errors are raised as the caller's
ConfigError subclass (`read_yaml(..., error=SettingsError)`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from inventory.errors import ConfigError, InventoryError, Problem, bounded, quote

Path_ = tuple[str | int, ...]
Locator = Callable[[Path_], str]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DEPTH = 50
# Nodes an alias may add by repeating its anchor, summed over the document. A real config repeats a
# weekday list or a mapping a few times (tens of nodes); a 1.3 KB "billion laughs" document repeats
# nine levels of ten aliases (10^9 nodes). Aliased values are copied, so this also bounds memory.
MAX_ALIAS_NODES = 10_000


class _AliasBudgetExceeded(Exception):
    pass


class _Scalars:
    """YAML 1.1 scalar resolution (PyYAML's own resolver and constructor), memoised by text."""

    def __init__(self):
        self._resolver = yaml.resolver.Resolver()
        self._constructor = yaml.constructor.SafeConstructor()
        self._cache: dict[tuple[str, str | None, bool], object] = {}
        self._plain: dict[str, object] = {}  # untagged plain scalars, the common case

    def value(self, event: ScalarEvent) -> object:
        tag = event.tag
        if tag is None:
            if not event.implicit[0]:
                return event.value  # a quoted scalar is a string
            try:
                return self._plain[event.value]
            except KeyError:
                pass
        return self._resolve(event)

    def _resolve(self, event: ScalarEvent) -> object:
        plain = event.implicit[0]
        tag = None if event.tag in (None, "!") else event.tag
        key = (event.value, tag, plain)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if tag is None:
            tag = self._resolver.resolve(yaml.ScalarNode, event.value, (plain, False))
        try:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
            value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError):
            value = event.value
        if isinstance(value, list | dict | set):  # e.g. !!set on a scalar: keep text, never share
            value = event.value
        self._cache[key] = value
        if event.tag is None and plain:
            self._plain[event.value] = value
        return value


class _Builder:
    def __init__(self, source: str):
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[object, int]] = {}  # name -> (value, nodes in it)
        self.scalars = _Scalars()
        self.nodes = 0  # nodes built so far, an alias counting the nodes it repeats
        self.alias_nodes = 0  # of which repeated through aliases

    def error(self, line: int, message: str, path: Path_) -> None:
        self.problems.append(Problem(f"{self.source}:{line}", message, path))

    def build(self, events) -> object:
        """Consume one document's node events from the iterator; return its data."""
        return self._node(next(events), events, (), 0)

    def _alias(self, event, path: Path_, line: int) -> object:
        if event.anchor not in self.anchors:
            self.error(line, f"unknown alias *{bounded(event.anchor)}", path)
            return None
        value, size = self.anchors[event.anchor]
        self.nodes += size
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            self.error(line, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                             f"(*{bounded(event.anchor)} repeats {size:,}); write the values out", path)
            raise _AliasBudgetExceeded
        # A copy, so each use is its own value (nothing downstream sees two paths share one list).
        return copy.deepcopy(value) if isinstance(value, list | dict) else value

    def _node(self, event, events, path: Path_, depth: int) -> object:
        line = event.start_mark.line + 1
        self.lines.setdefault(path, line)
        if isinstance(event, AliasEvent):
            return self._alias(event, path, line)
        before = self.nodes
        self.nodes += 1
        anchor = event.anchor
        if isinstance(event, ScalarEvent):
            value = self.scalars.value(event)
        elif isinstance(event, SequenceStartEvent):
            value = []
            for item in events:
                if isinstance(item, SequenceEndEvent):
                    break
                value.append(self._node(item, events, path + (len(value),), depth + 1))
        elif isinstance(event, MappingStartEvent):
            value = self._mapping(events, path, depth, line)
        else:  # pragma: no cover - the parser emits nothing else inside a document
            self.error(line, f"unexpected YAML event {type(event).__name__}", path)
            return None
        if depth > MAX_DEPTH:
            self.error(line, "nesting too deep", path)
            return None
        if anchor:
            self.anchors[anchor] = (value, self.nodes - before)
        return value

    def _mapping(self, events, path: Path_, depth: int, line: int) -> dict:
        out: dict = {}
        merged: dict = {}
        lines = self.lines
        value_of = self.scalars.value
        for key_event in events:
            kind = type(key_event)
            if kind is MappingEndEvent:
                break
            key_line = key_event.start_mark.line + 1
            if kind is not ScalarEvent:
                self.error(key_line, "mapping keys must be plain scalars", path)
                self._node(key_event, events, path + ("?",), depth + 1)  # consume the key
                self._node(next(events), events, path + ("?",), depth + 1)  # and its value
                continue
            key = value_of(key_event)
            if key == "<<" and key_event.implicit[0]:
                value = self._node(next(events), events, path, depth + 1)
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(s, dict) for s in sources):
                    self.error(key_line, "merge key << needs a mapping or a list of mappings", path)
                for source in reversed(sources):
                    if isinstance(source, dict):
                        merged.update(source)
                continue
            if key is None or not isinstance(key, str | int | float | bool):
                self.error(key_line, f"mapping key {quote(key_event.value)} must be a string or number", path)
                self._node(next(events), events, path + ("?",), depth + 1)
                continue
            if key in out:
                self.error(key_line, f"duplicate key {quote(key)}", path)
                self._node(next(events), events, path + ("?",), depth + 1)
                continue
            # A key's line is where the key is written, which is what an editor wants.
            key_path = path + (key,)
            lines[key_path] = key_line
            if not isinstance(key, str):
                lines[path + (str(key),)] = key_line  # checkers name a non-string key by its text
            value_event = next(events)
            if type(value_event) is ScalarEvent and not value_event.anchor:
                self.nodes += 1
                out[key] = value_of(value_event)  # fast path: most values are scalars
            else:
                out[key] = self._node(value_event, events, key_path, depth + 1)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out


def read_yaml(text: str, source: str, error: type[ConfigError] = InventoryError) -> tuple[object, Locator]:
    """Parse `text` (one document); return (data, locate). `error` (listing every problem) on syntax
    errors, duplicate or non-scalar keys, or aliases past the budget."""
    builder = _Builder(source)
    try:
        loader = _Loader(text)
        # Pull events straight from the C parser (yaml.parse() adds a generator layer per event).
        events = iter(loader.get_event, None)
        data = None
        documents = 0
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    line = event.start_mark.line + 1
                    raise error([Problem(f"{source}:{line}", "only one YAML document is allowed")])
                data = builder.build(events)
    except _AliasBudgetExceeded:
        raise error(builder.problems) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise error([Problem(where, f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise error([Problem(source, f"YAML error: {exc}")]) from None
    except (ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise error([Problem(source, f"cannot read YAML: {exc.__class__.__name__}: {exc}")]) from None
    if builder.problems:
        raise error(builder.problems)
    lines = builder.lines

    def locate(path: Path_) -> str:
        # The nearest ancestor that has a line: a missing field reports its parent mapping.
        for n in range(len(path), -1, -1):
            line = lines.get(path[:n])
            if line is not None:
                return f"{source}:{line}"
        return source

    return data, locate
