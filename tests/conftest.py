"""Shared fixtures: one real SparkSession (Delta + Hive catalog) on a temporary home.

The Ivy JAR cache is the repo's `.lakecast/ivy`, shared with `make demo`, so the Delta
JARs are downloaded once per machine, never per test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conf import LakecastConfig, load_config

REPO = Path(__file__).resolve().parents[1]
IVY_DIR = REPO / ".lakecast" / "ivy"
BIN = Path(sys.executable).parent

# Small, fast settings for tests on 2 cores.
TEST_OVERRIDES = (
    "spark.master=local[2]",
    "spark.shuffle_partitions=2",
    "spark.delta_snapshot_partitions=1",
    "spark.driver_memory=3g",
    f"spark.ivy_dir={IVY_DIR}",
)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a TZ the system cannot resolve: the `tz` runs would silently run in UTC."""
    import time
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    tz = os.environ.get("TZ", "").lstrip(":")
    if not tz:
        return
    try:
        want = datetime.now(ZoneInfo(tz)).utcoffset()
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        want = None
    if want != timedelta(seconds=time.localtime().tm_gmtoff):
        raise pytest.UsageError(f"TZ={tz} is not a time zone this system knows (install tzdata); "
                                "the time-zone tests would run in another zone")


def make_config(home: Path, *extra: str) -> LakecastConfig:
    """A config on `home` with the test settings, plus any `extra` --set overrides."""
    return load_config(None, [f"home={home}", *TEST_OVERRIDES, *extra], env={})


@pytest.fixture(scope="session")
def lakecast_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lakecast_home")


@pytest.fixture(scope="session")
def cfg(lakecast_home: Path) -> LakecastConfig:
    return make_config(lakecast_home)


@pytest.fixture(scope="session")
def spark(cfg: LakecastConfig) -> Iterator[Any]:
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables

    session = build_session(cfg)
    ensure_tables(session, cfg)
    yield session
    stop_session(session)


@pytest.fixture
def fresh_db(spark: Any, cfg: LakecastConfig) -> Callable[..., LakecastConfig]:
    """Factory: a config whose database is new and initialised, for tests that need empty tables."""
    from pipelines.tables.ensure import ensure_tables

    def make(*extra: str) -> LakecastConfig:
        db = f"t_{uuid.uuid4().hex[:10]}"
        c = make_config(cfg.home, f"catalog.database={db}", *extra)
        ensure_tables(spark, c)
        return c

    return make


def collect_utc(df: Any) -> list[Any]:
    """`df.collect()` with TIMESTAMP values as naive UTC, whatever the host's TZ.

    pyspark returns TIMESTAMPs as naive datetimes in the host's zone (`fromtimestamp`, `fold`
    set), so converting them back through that zone is exact; tests marked `tz` read this way.
    """
    from datetime import UTC

    from pyspark.sql import Row
    from pyspark.sql.types import TimestampType

    ts = [f.name for f in df.schema.fields if isinstance(f.dataType, TimestampType)]
    out = []
    for r in df.collect():
        d = r.asDict()
        for c in ts:
            if d[c] is not None:
                d[c] = d[c].astimezone(UTC).replace(tzinfo=None)
        out.append(Row(**d))
    return out


def run_cli(home: Path, *args: str, timeout: int = 600, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """Run `lakecast ARGS` in a separate process on `home` with the test settings."""
    sets = [x for o in TEST_OVERRIDES for x in ("--set", o)]
    full_env = {**os.environ, "LAKECAST_HOME": str(home), **(env or {})}
    return subprocess.run(
        [str(BIN / "lakecast"), *args, *sets], capture_output=True, text=True, timeout=timeout,
        env=full_env, cwd=REPO,
    )


@pytest.fixture(scope="session")
def zone_demos(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Both whole demo runs (tests/demo_runs.py), started together on first use: {zone: DemoRun}."""
    from tests.demo_runs import run_zone_demos

    yield from run_zone_demos(spark, tmp_path_factory.mktemp("demos"))


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    """A started PostgreSQL server (pipelines.tooling.local_postgres), removed after the module."""
    from pipelines.tooling.local_postgres import PostgresServer, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server programs not found (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started two-worker Spark standalone cluster (pipelines.tooling.local_cluster), stopped afterwards."""
    from pipelines.tooling.local_cluster import StandaloneCluster

    spark_cluster = StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"))
    try:
        yield spark_cluster.start()
    finally:
        spark_cluster.stop()
