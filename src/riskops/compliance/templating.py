"""The jinja2 environments of the compliance templates (``riskops/compliance/templates``)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


@cache
def environment(*, html: bool) -> jinja2.Environment:
    """The template environment; HTML autoescapes, Markdown and text do not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("riskops.compliance", "templates"),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = md_cell
    return env


def render(name: str, **context: Any) -> str:
    """Render template ``name`` (HTML escaping when its name ends in ``.html.j2``)."""
    return environment(html=name.endswith(".html.j2")).get_template(name).render(**context)
