"""The daemon flags the generated rules' latency depends on, as one args file per daemon.

Users pass them to their own daemons (`victoria-metrics $(grep -v '^#' flags/victoria-metrics.args)
...`), and `wardops stack` reads the same files, so the figures measured on the stack hold for a
deployment. With the daemons' defaults a device page took ~30 s instead of ~5 s: VictoriaMetrics
hides the newest 30 s of samples (-search.latencyOffset) and vmalert aligns each query time down
to its evaluation interval.
"""

from __future__ import annotations

from generators.settings import Settings

# flag -> why; kept in the file as comments, so a reader of the args file sees the reason.
VICTORIA_METRICS = (
    ("-search.latencyOffset=1s",
     "samples become queryable 1 s after ingestion instead of 30 s (the smallest value 1.79.5 accepts)"),
)
VMALERT = (
    ("-datasource.queryTimeAlignment=false",
     "query at the evaluation time itself, not aligned down to the interval (up to one interval later)"),
    ("-rule.validateExpressions=true", "refuse rule files whose expressions do not parse"),
)


def vmagent_flags(settings: Settings) -> tuple[tuple[str, str], ...]:
    out = []
    if settings.inventory_url:
        out.append(("-promscrape.httpSDCheckInterval=30s",
                    "vmagent 1.79.5 reads HTTP SD refresh only from this flag, not from the scrape config"))
    return tuple(out)


def render_args(flags, header: str) -> str:
    lines = [header]
    for flag, why in flags:
        lines += [f"# {why}", flag]
    return "\n".join(lines) + "\n"


def build_flag_files(settings: Settings, header: str) -> dict[str, str]:
    """{file name: text}: one flag per line, `#` comments; empty files are still written so the
    set of files is stable."""
    return {
        "victoria-metrics.args": render_args(VICTORIA_METRICS, header),
        "vmalert.args": render_args(VMALERT, header),
        "vmagent.args": render_args(vmagent_flags(settings), header),
    }


def read_args(text: str) -> list[str]:
    """The flags of an args file (comments and blank lines dropped)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
