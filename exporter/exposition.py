"""Prometheus text exposition from immutable, pre-rendered sections.

Each protocol component renders its per-device families ONCE per completed round (off the probing
loop, in a render thread) into a `Section`: per family, the ISP-role lines and the other lines as
bytes. `Exposition.publish()` swaps a whole section in one reference assignment, so a scrape sees
either the previous round or the new one, never half; a removed device disappears with the next
published section (the inventory reload republishes at once). A scrape only concatenates bytes:
`/metrics?role=isp` takes the ISP halves, `?exclude_role=isp` the rest plus self-metrics.
Measured against a custom prometheus_client Collector in bench/icmp_round.py (docs/icmp.md).
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from exporter.contract import Family

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROLE_SPLIT = "isp"  # the one role vmagent scrapes separately (fast job)
MODULES = ("icmp", "snmp")  # /metrics?module=: one scrape job per protocol
SELF_MODULE = "icmp"  # the exporter's self-metrics go with the fast (ICMP) job


# family name -> (lines of ISP-role devices, all other lines)
Section = Mapping[str, tuple[bytes, bytes]]
EMPTY_SECTION: Section = MappingProxyType({})
# A self-metrics source: called on every scrape, returns (family name, label text, value) samples.
SampleSource = Callable[[], Iterable[tuple[str, str, float]]]


def gzip_member(data: bytes) -> bytes:
    """One gzip member. Concatenated members are one valid gzip stream (RFC 1952; Go's reader,
    used by vmagent and Prometheus, reads multistream by default), so parts compress separately."""
    co = zlib.compressobj(1, zlib.DEFLATED, 31)  # level 1: 13 MB -> 1.1 MB in ~35 ms at 10k devices
    return co.compress(data) + co.flush()


def gzip_section(section: Section) -> Section:
    return {name: (gzip_member(a) if a else b"", gzip_member(b) if b else b"") for name, (a, b) in section.items()}


@dataclass(frozen=True, slots=True)
class _Entry:
    plain: Section
    gz: Section | None  # compressed once per round, only after a scraper asked for gzip


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Mapping[str, str]) -> str:
    """`{a="1",b="2"}` in the given order (empty string for no labels)."""
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Exposition:
    """Registered families (fixed order) + published sections + self-metric sources."""

    def __init__(self):
        self._families: dict[str, Family] = {}
        self._sections: Mapping[object, _Entry] = MappingProxyType({})
        self._gz_headers: dict[str, bytes] = {}
        self.gzip_wanted = False  # set by the first scrape that accepts gzip
        self._sources: list[SampleSource] = []
        self._lock = threading.Lock()  # writers only; readers take the current mapping reference

    def register(self, families: Iterable[Family]) -> None:
        with self._lock:
            for family in families:
                self._families[family.name] = family
                self._gz_headers.pop(family.name, None)

    def _gz_header(self, family: Family) -> bytes:
        header = self._gz_headers.get(family.name)
        if header is None:  # compressed on the first gzip scrape (one-off expositions never gzip)
            header = self._gz_headers[family.name] = gzip_member(family.header())
        return header

    def add_source(self, source: SampleSource) -> None:
        with self._lock:
            self._sources.append(source)

    def publish(self, key: object, section: Section | None) -> None:
        """Replace (None: remove) the section `key`, e.g. ("icmp", "isp"). Compresses outside the lock."""
        self.publish_many({key: section})

    def publish_many(self, new: Mapping[object, Section | None]) -> None:
        """Replace several sections in one swap: a scrape sees all of them or none of them."""
        entries = {key: None if s is None else _Entry(s, gzip_section(s) if self.gzip_wanted else None)
                   for key, s in new.items()}
        with self._lock:
            sections = dict(self._sections)
            for key, entry in entries.items():
                if entry is None:
                    sections.pop(key, None)
                else:
                    sections[key] = entry
            self._sections = MappingProxyType(sections)

    def sections(self) -> Mapping[object, Section]:
        return {key: entry.plain for key, entry in self._sections.items()}

    def render(self, role: str | None = None, exclude_role: str | None = None, gzip: bool = False,
               module: str | None = None) -> list[bytes]:
        """Chunks of the exposition. role=isp: ISP device series only; exclude_role=isp: the rest.
        module=icmp|snmp: only that component's sections (keyed (module, ...)); the self-metrics
        travel with SELF_MODULE.

        gzip=True: the chunks are gzip members (Content-Encoding: gzip for their concatenation).
        """
        want_isp = exclude_role != ROLE_SPLIT
        want_other = role != ROLE_SPLIT
        # one reference: a consistent set of sections
        sections = [e for k, e in self._sections.items() if module is None or k[0] == module]
        extra: dict[str, list[str]] = {}
        if want_other and module in (None, SELF_MODULE):
            for source in list(self._sources):
                for name, labels, value in source():
                    extra.setdefault(name, []).append(f"{name}{labels} {number(value)}\n")
        out: list[bytes] = []
        for name, family in list(self._families.items()):
            chunks = []
            for entry in sections:
                part = entry.plain.get(name)
                if part is None:
                    continue
                packed = entry.gz.get(name) if gzip and entry.gz is not None else None
                for wanted, i in ((want_isp, 0), (want_other, 1)):
                    if wanted and part[i]:
                        chunks.append(part[i] if not gzip else packed[i] if packed else gzip_member(part[i]))
            if name in extra:
                text = "".join(extra[name]).encode()
                chunks.append(gzip_member(text) if gzip else text)
            if chunks:
                out.append(self._gz_header(family) if gzip else family.header())
                out.extend(chunks)
        if gzip and not out:
            # No series (e.g. ?module=snmp on an exporter without SNMP devices): zero bytes are not a
            # gzip stream, and vmagent counts the scrape as failed (up 0, ExporterDown).
            out.append(gzip_member(b""))
        return out


def samples_section(samples: Iterable[tuple[str, str, float]]) -> Section:
    """(family name, label text, value) samples -> a section (all lines in the non-ISP half)."""
    lines: dict[str, list[str]] = {}
    for name, labels, value in samples:
        lines.setdefault(name, []).append(f"{name}{labels} {number(value)}\n")
    return {name: (b"", "".join(text).encode()) for name, text in lines.items()}


def render_text(families: Iterable[Family], *sections: Section) -> bytes:
    """A one-off exposition (a /probe answer, the `wardops snmp poll` output): `sections` under the
    HELP/TYPE of `families`, in family order, rendered exactly as a scrape of /metrics would be."""
    families = tuple(families)
    unknown = {name for section in sections for name in section} - {f.name for f in families}
    if unknown:  # Exposition.render serves registered families only: these lines would vanish
        raise ValueError(f"no family registered for {', '.join(sorted(unknown))}")
    expo = Exposition()
    expo.register(families)
    for key, section in enumerate(sections):
        expo.publish(key, section)
    return b"".join(expo.render())
