"""The `riskops` command line (typer + rich; --json wherever a script would read the output)."""
