"""`lakecast driver`: keep a warm Spark session for a home, so scheduled commands skip the JVM start.

While a driver serves a home, `lakecast predict`, `ingest`, `sql`, `train`, `evaluate` ... started
for that home run in it (same flows, same job_runs, same exit codes; `--set driver.use=never`
runs one in its own process). The loop is jobs._cli.driver_server, the client side
jobs._cli.driver_client.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.driver_client import Endpoint, request
from jobs._cli.output import print_summary


def _status(home: Path) -> tuple[Endpoint, dict[str, Any]] | None:
    endpoint = Endpoint.read(home)
    if endpoint is None:
        return None
    for frame in request(endpoint, "status"):
        if "status" in frame:
            return endpoint, frame["status"]
    return None


def _is_driver_process(pid: int) -> bool:
    """Whether `pid` is a `lakecast driver serve` process (not a process that reused a dead driver's id)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"driver" in args and b"serve" in args


def _passthrough() -> list[str]:
    """This invocation's --conf/--set/-v, for the driver process `start` launches."""
    params = click.get_current_context().params
    args = ["--conf", params["conf_file"]] if params.get("conf_file") else []
    for item in params.get("overrides") or ():
        args += ["--set", item]
    return args + ["-v"] * int(params.get("verbose") or 0)


@click.group("driver")
def cli() -> None:
    """Keep a warm Spark session for this home (start, stop, status, serve)."""


@cli.command("serve")
@common_options
def serve(job: JobContext) -> None:
    """Serve this home's commands in the foreground until stopped (a service manager's entry point)."""
    from jobs._cli.driver_server import DriverServer

    if (found := _status(job.cfg.home)) is not None:
        raise click.ClickException(f"a lakecast driver (pid {found[0].pid}) already serves {job.cfg.home.resolve()}")
    DriverServer(job.cfg, job.spark).serve()


@cli.command("start")
@common_options
def start(job: JobContext) -> None:
    """Start a driver for this home in the background and wait until it is warm."""
    cfg = job.cfg
    home = cfg.home.resolve()
    if (found := _status(home)) is not None:
        print_summary("lakecast driver (already running)", found[1])
        return
    log_path = home / "logs" / "driver.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "driver", "serve", *_passthrough()],
                                stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True,
                                env={**os.environ, "LAKECAST_HOME": str(home)})
    click.echo(f"starting a lakecast driver (pid {proc.pid}) for {home}; log {log_path}", err=True)
    deadline = time.monotonic() + cfg.driver.start_timeout_s
    while time.monotonic() < deadline:
        if (found := _status(home)) is not None and found[1].get("warm"):
            print_summary("lakecast driver", found[1])
            return
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise click.ClickException(f"the lakecast driver exited with code {proc.returncode} before serving; "
                                       "the end of " + str(log_path) + ":\n" + "\n".join(tail))
        time.sleep(0.5)
    proc.terminate()
    raise click.ClickException(f"the lakecast driver did not answer within driver.start_timeout_s="
                               f"{cfg.driver.start_timeout_s} s; stopped it. See {log_path}")


@cli.command("stop")
@click.option("--timeout", "timeout_s", type=click.IntRange(min=1), default=600, show_default=True,
              help="Seconds to wait for the run in progress to finish.")
@common_options
def stop(job: JobContext, timeout_s: int) -> None:
    """Stop this home's driver after the run in progress (if any)."""
    home = job.cfg.home
    found = _status(home)
    if found is None:
        if (endpoint := Endpoint.read(home)) is not None and _is_driver_process(endpoint.pid):
            # alive but not answering (an older protocol, or stuck): end it the way a service manager would
            os.kill(endpoint.pid, signal.SIGTERM)
            click.echo(f"the lakecast driver (pid {endpoint.pid}) did not answer; sent it SIGTERM", err=True)
            endpoint.wait_gone(timeout_s)
            return
        click.echo(f"no lakecast driver serves {home.resolve()}", err=True)
        return
    endpoint, status = found
    for _ in request(endpoint, "stop"):
        pass
    if status.get("running"):
        click.echo(f"stopping after the running {status['running']} ...", err=True)
    endpoint.wait_gone(timeout_s)
    if endpoint.alive():
        raise click.ClickException(f"the lakecast driver (pid {endpoint.pid}) is still running after {timeout_s} s")
    click.echo(f"stopped the lakecast driver (pid {endpoint.pid}) after {status['runs']} runs", err=True)


@cli.command("status")
@common_options
def status(job: JobContext) -> None:
    """Show this home's driver: pid, since when, runs served, what it is running. Exit 1 if none."""
    found = _status(job.cfg.home)
    if found is None:
        raise click.ClickException(f"no lakecast driver serves {job.cfg.home.resolve()}")
    print_summary("lakecast driver", found[1])


if __name__ == "__main__":
    cli()
