"""`riskops monitor run NAME` and `riskops drift show NAME [--json]`."""

from __future__ import annotations

import typer

from riskops.cli.common import (
    acting_principal,
    console,
    fail,
    get_settings,
    open_platform,
    print_json,
)

monitor_app = typer.Typer(help="The monitoring loop: drift of each champion.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift results of the monitor.", no_args_is_help=True)

DEPLOYMENT = "monitor/monitor"


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model to monitor now."),
    timeout: float = typer.Option(600.0, help="Seconds to wait for the run at most."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Run the monitor now through its deployment and wait for it."""
    import datetime as dt

    from prefect.deployments import run_deployment

    from riskops.stack.local import prefect_api
    from riskops.stages.monitor import results_since

    settings = get_settings(ctx)
    started = dt.datetime.now(dt.UTC)
    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "monitor.run")
        with prefect_api(settings):
            try:
                run_ = run_deployment(name=DEPLOYMENT, parameters={"model": name}, timeout=timeout)
            except Exception as error:
                fail(f"cannot run the {DEPLOYMENT} deployment ({error}); is the stack up "
                     "(`riskops status`)?", code=1)  # fmt: skip
        state = run_.state
        if state is None or not state.is_completed():
            fail(f"monitor run {run_.name} ended {state.name if state else 'without a state'}: "
                 "see its logs in the Prefect UI", code=1)  # fmt: skip
        results = results_since(platform, name, started)
    if json_out:
        print_json({"flow_run": str(run_.id), "judged": [
            {"kind": r.kind, "worst_band": r.worst_band, "rows": r.rows, "event_id": r.event_id,
             "drifted": [f["name"] for f in r.features if f.get("band") in ("watch", "alert")]}
            for r in results
        ]})  # fmt: skip
        return
    if not results:
        console.print(f"{name}: no window judged (too few decisions, or no champion): see the "
                      f"logs of flow run {run_.name}")  # fmt: skip
        return
    for r in results:
        drifted = ", ".join(f["name"] for f in r.features if f.get("band") in ("watch", "alert"))
        console.print(f"{name} {r.kind:<10} {r.worst_band or 'not judged':<8} {drifted or '-'}")


@drift_app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """The latest comparison per kind: per feature its metrics and band."""
    from riskops.stages.monitor import latest_results

    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "drift.read")
        results = latest_results(platform, name)
    if not results:
        fail(
            f"no drift results for {name} yet: the monitor runs hourly once it has a champion "
            f"with decisions (`riskops monitor run {name}` runs it now)",
            code=2,
        )
    if json_out:
        print_json({
            "model": name,
            "kinds": {
                r.kind: {
                    "version": r.version, "baseline": r.baseline, "rows": r.rows,
                    "window": {"start": f"{r.window_start:%Y-%m-%dT%H:%M:%S}Z",
                               "end": f"{r.window_end:%Y-%m-%dT%H:%M:%S}Z"},
                    "worst_band": r.worst_band, "event_id": r.event_id, "features": r.features,
                } for r in results
            },
        })  # fmt: skip
        return
    for r in results:
        console.print(
            f"[bold]{name} v{r.version} {r.kind}[/]: {r.worst_band or 'not judged'} "
            f"({r.rows} decisions, {r.window_start:%Y-%m-%d %H:%M} to {r.window_end:%H:%M} UTC; "
            f"against {r.baseline})"
        )
        for f in sorted(r.features, key=lambda f: -(f.get("psi") or 0.0))[:10]:
            psi = "-" if f.get("psi") is None else f"{f['psi']:.3f}"
            console.print(f"  {f['name']:<32} {f['band'] or '-':<7} PSI {psi:>7}  "
                          f"null {f['null_rate_change']:+.3f}")  # fmt: skip
