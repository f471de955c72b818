"""What every command shares: settings, console, JSON output, failing with a clear message."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console

from riskops.settings import Settings, load_settings

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def get_settings(ctx: typer.Context) -> Settings:
    """Settings are built once per invocation, in the root callback, and passed down."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    return root.obj


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)
