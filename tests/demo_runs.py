"""Two whole `lakecast demo` runs shared by the tests that need a real end-to-end home.

A demo is the most expensive thing the suite does, so it runs twice per session, at once:
under TZ=UTC on a PostgreSQL metastore whose password comes from the environment (the cluster
tests run their jobs on that home, in a database of their own, and the secrets test then scans
it), and under TZ=America/New_York on the embedded Derby metastore (the
time-zone test compares the two homes' forecasts: neither the host's zone nor the catalog may
change a forecast). Without PostgreSQL's programs the UTC run uses Derby too.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import BIN, REPO, TEST_OVERRIDES

SECRET = "Sq9-metastore-pw-7d1e"
ZONES = ("UTC", "America/New_York")  # the demo's last 5 hours fall on another local day in New York
DEMO_ARGS = ("--series", "3", "--days", "30")
DEMO_TINY = ("windows.lookback=48", "windows.horizon=12", "windows.stride=12", "train.val_periods=48",
             "train.test_periods=48", "promote.backtest_periods=48", "model.hidden_size=8",
             "model.num_layers=1", "train.max_epochs=2", "train.batch_size=32", "train.torch_threads=1",
             "train.plot_series=1", "train.device=cpu", "scoring.precision=fp32")  # fp32: no timing-based choice


@dataclass(frozen=True)
class DemoRun:
    """One finished `lakecast demo` process and the home it wrote."""

    tz: str
    home: Path
    returncode: int
    output: str
    began: float
    ended: float
    sets: tuple[str, ...]  # the --set overrides it ran with (besides TEST_OVERRIDES)
    env: dict[str, str] = field(default_factory=dict)  # extra environment (the secret)
    postgres: bool = False

    def table(self, spark: Any, name: str) -> Any:
        return spark.read.format("delta").load(str(self.home / "warehouse" / "lakecast.db" / name))


def _start(home: Path, tz: str, sets: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
    args = [x for o in (*TEST_OVERRIDES, *sets) for x in ("--set", o)]
    full_env = {**os.environ, "LAKECAST_HOME": str(home), "TZ": tz, **env}
    return subprocess.Popen([str(BIN / "lakecast"), "demo", *DEMO_ARGS, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=full_env, cwd=REPO)


def run_zone_demos(spark: Any, root: Path) -> Iterator[dict[str, DemoRun]]:
    """Start both demos, wait for them, yield them by zone; stops the PostgreSQL server after."""
    from conf import load_config
    from pipelines.tooling.local_postgres import PostgresServer, postgres_bindir
    from pipelines.tooling.metastore_schema import init_schema

    bindir = postgres_bindir()
    server = PostgresServer(bindir).start() if bindir is not None else None
    try:
        plans: dict[str, tuple[Path, tuple[str, ...], dict[str, str]]] = {}
        for tz in ZONES:
            home = root / tz.replace("/", "_")
            sets, env = DEMO_TINY, {}
            if tz == "UTC" and server is not None:
                url = server.create_database("ms_secrets", password=SECRET)
                sets = ("catalog.metastore=postgres", f"catalog.jdbc_url={url}", "catalog.jdbc_user=hive",
                        "catalog.jdbc_password={env: LAKECAST_JDBC_PASSWORD}", *DEMO_TINY)
                env = {"LAKECAST_JDBC_PASSWORD": SECRET}
                pg_cfg = load_config(None, [f"home={home}", *TEST_OVERRIDES, *sets], env=env)
                assert init_schema(spark.sparkContext._gateway, pg_cfg).status == "created"
            plans[tz] = (home, sets, env)
        began = time.time()
        procs = {tz: _start(home, tz, sets, env) for tz, (home, sets, env) in plans.items()}
        outs = {tz: p.communicate(timeout=1100)[0] for tz, p in procs.items()}
        ended = time.time()
        yield {tz: DemoRun(tz, plans[tz][0], procs[tz].returncode, outs[tz], began, ended, plans[tz][1],
                           plans[tz][2], postgres=bool(plans[tz][2]))
               for tz in ZONES}
    finally:
        if server is not None:
            server.stop()
