"""Human text for alert annotations and notifications, rendered with Jinja2.

Jinja2 here writes *text only*; rule and config structure is built as data elsewhere. The output
is itself a Go template (vmalert/Prometheus annotations, Alertmanager notification templates),
so Jinja2 uses [[ ]] / [% %] delimiters and Go's {{ }} passes through untouched.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import jinja2


def go_text(text: str) -> str:
    """`text` placed where a Go template reads literal text: unchanged unless it holds `{{` (which
    would start an action), then one action printing a Go string literal with the same characters
    (a JSON string is a valid Go interpreted string literal)."""
    return text if "{{" not in text else "{{ " + json.dumps(text, ensure_ascii=False) + " }}"


def go_comment(text: str) -> str:
    """`text` inside a Go template comment `{{/* ... */}}`, which ends at the first `*/`."""
    return text.replace("*/", "* /")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("generators", "templates"),
        block_start_string="[%", block_end_string="%]",
        variable_start_string="[[", variable_end_string="]]",
        comment_start_string="[#", comment_end_string="#]",
        undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )
    # Settings and paths are pasted into Go templates: every such value goes through one of these.
    env.filters["go_text"] = go_text
    env.filters["go_comment"] = go_comment
    return env


def annotation_texts(**context) -> dict[str, dict[str, str]]:
    """alertname -> {"summary": ..., "description": ...} from the blocks of templates/annotations.j2."""
    template = environment().get_template("annotations.j2")
    # Top-level [% set %] values (shared phrases) are exported by the module; blocks then see them.
    shared = {k: v for k, v in template.make_module(context).__dict__.items() if not k.startswith("_")}
    context = {**context, **shared}
    out: dict[str, dict[str, str]] = {}
    for name, block in template.blocks.items():
        alert, _, part = name.partition("__")
        text = "".join(block(template.new_context(context))).strip()
        out.setdefault(alert, {})[part] = " ".join(text.split())  # one line: stable YAML, readable mail
    return out


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def template_names() -> list[str]:
    return sorted(p.name for p in resources.files("generators").joinpath("templates").iterdir())
