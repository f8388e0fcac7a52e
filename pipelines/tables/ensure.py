"""Create the governed tables that are missing and report drift of existing ones.

`ensure_tables` never alters an existing table, so re-running `lakecast init` changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf import LakecastConfig
from pipelines.tables.specs import ALL_TABLES, TableSpec, create_table_sql
from pipelines.tables.views import ensure_views

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableStatus:
    table: str
    status: str  # created | ok | drifted
    problems: tuple[str, ...] = ()


def _normalise_type(t: str) -> str:
    return t.replace(" ", "").lower()


def check_drift(spark: SparkSession, spec: TableSpec, cfg: LakecastConfig) -> list[str]:
    """Differences between an existing table and its expected schema and constraints."""
    name = cfg.table(spec.name)
    actual = {f.name: f for f in spark.table(name).schema.fields}
    problems: list[str] = []
    for col in spec.columns:
        f = actual.get(col.name)
        if f is None:
            problems.append(f"column {col.name} ({col.type}) is missing")
            continue
        got = _normalise_type(f.dataType.simpleString())
        if got != _normalise_type(col.type):
            problems.append(f"column {col.name} has type {got}, expected {col.type.lower()}")
        if not col.nullable and f.nullable:
            problems.append(f"column {col.name} should be NOT NULL")
    for extra in sorted(set(actual) - set(spec.column_names)):
        problems.append(f"unexpected column {extra}")
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
    for cname, expr in spec.constraints.items():
        if f"delta.constraints.{cname.lower()}" not in props:
            problems.append(f"CHECK constraint {cname} ({expr}) is missing")
    for k, v in spec.properties.items():
        if props.get(k) != v:
            problems.append(f"table property {k} is {props.get(k)!r}, expected {v!r}")
    return problems


def table_exists(spark: SparkSession, cfg: LakecastConfig, name: str) -> bool:
    return bool(spark.catalog.tableExists(cfg.table(name)))


def ensure_tables(spark: SparkSession, cfg: LakecastConfig) -> list[TableStatus]:
    """Create the database and any missing table; report drift of existing ones."""
    db = cfg.catalog.database
    spark.sql(
        f"CREATE DATABASE IF NOT EXISTS {db} COMMENT 'lakecast governed forecasting tables'"
    )
    result: list[TableStatus] = []
    for spec in ALL_TABLES:
        if table_exists(spark, cfg, spec.name):
            problems = check_drift(spark, spec, cfg)
            result.append(TableStatus(cfg.table(spec.name), "drifted" if problems else "ok", tuple(problems)))
            continue
        spark.sql(create_table_sql(spec, cfg))
        for cname, expr in spec.constraints.items():
            spark.sql(f"ALTER TABLE {cfg.table(spec.name)} ADD CONSTRAINT {cname} CHECK ({expr})")
        log.info("created table %s", cfg.table(spec.name))
        result.append(TableStatus(cfg.table(spec.name), "created"))
    ensure_views(spark, cfg)
    return result


def delta_version(spark: SparkSession, table: str) -> int:
    """Current Delta version of a table (the lineage number stored in forecasts/job_runs)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forName(spark, table).history(1).select("version").head()
    return int(row["version"]) if row is not None else -1
