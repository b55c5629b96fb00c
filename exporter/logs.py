"""Exporter logs as Go exporters write them (--log.level, --log.format logfmt|json).

Messages in the code are logfmt already (`msg="inventory loaded" source=... devices=12`); the
formatters parse that text back into fields, so logfmt output is normalised (a message without
`msg=` gets its free text as `msg`) and json output has one key per field. One record is one line:
an exception adds `err="Class: text"`, and its traceback only at debug level, as one escaped `stack`
field, never as raw lines an operator's log shipper would split into unrelated records.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import TextIO

LEVELS = ("debug", "info", "warn", "error")
FORMATS = ("logfmt", "json")
# Go's names; "warning" (the earlier spelling of this flag) stays accepted.
_LEVEL = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR}
_NAME = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
         logging.CRITICAL: "error"}

_KV = re.compile(r'\s*([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
_WORD = re.compile(r"\s*(\S+)")
_NEEDS_QUOTES = re.compile(r'[\s="\\]')


def parse_logfmt(text: str) -> dict[str, str]:
    """`msg="a b" n=3` -> {"msg": "a b", "n": "3"}; free words (outside key=value) become `msg`."""
    fields: dict[str, str] = {}
    words: list[str] = []
    pos = 0
    while pos < len(text):
        m = _KV.match(text, pos)
        if m:
            key, value = m.group(1), m.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            fields[key] = value
            pos = m.end()
            continue
        m = _WORD.match(text, pos)
        if m is None:  # only whitespace left
            break
        words.append(m.group(1))
        pos = m.end()
    if words:
        free = " ".join(words)
        fields = {"msg": free, **fields} if "msg" not in fields else {**fields, "text": free}
    return fields


def _quote(value: str, always: bool = False) -> str:
    if value and not always and not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Formatter(logging.Formatter):
    def __init__(self, with_stack: bool):
        super().__init__()
        self.with_stack = with_stack

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        out = {"ts": ts, "level": _NAME.get(record.levelno, record.levelname.lower())}
        for key, value in parse_logfmt(record.getMessage()).items():
            out.setdefault(key, value)  # ts and level are ours
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out.setdefault("err", f"{exc.__class__.__name__}: {exc}".replace("\n", " "))
            if self.with_stack:
                out["stack"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return out


class LogfmtFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # msg is free text: always quoted, so `grep 'msg="listening"'` finds every message alike
        return " ".join(f"{k}={_quote(v, k == 'msg')}" for k, v in self.fields(record).items())


class JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False)


LOGGERS = ("wardops.exporter", "wardops.snmp")  # the process's own loggers (exporter/snmp/poller.py: the latter)


def setup_logging(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> logging.Logger:
    """The exporter's loggers, writing one line per record to `stream` (stderr); returns the main one."""
    if level not in _LEVEL:
        raise ValueError(f"--log.level must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"--log.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    with_stack = _LEVEL[level] <= logging.DEBUG
    handler.setFormatter(JsonFormatter(with_stack) if fmt == "json" else LogfmtFormatter(with_stack))
    for name in LOGGERS:
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(_LEVEL[level])
        log.propagate = False
    return logging.getLogger(LOGGERS[0])
