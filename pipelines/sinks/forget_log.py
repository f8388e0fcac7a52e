"""The audit of `lakecast forget`: the home's salt, the salted hash of a series id, the `forget_log` rows.

The audit must prove that a series was forgotten without keeping the id: rows carry an
HMAC-SHA256 of the id keyed by a secret salt that lives only in the home
(`$LAKECAST_HOME/governance/salt`, mode 0600). Whoever holds the salt can check whether a
given id was forgotten; without it, guessing ids from a small space (customer numbers, meter
ids) against `forget_log` does not work, as it would with a plain hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.errors import ForgetError
from pipelines.tables.ensure import delta_version
from pipelines.tables.specs import FORGET_LOG

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def salt_path(home: Path) -> Path:
    return home / "governance" / "salt"


def home_salt(home: Path) -> bytes:
    """The home's salt, created (32 random bytes, hex, mode 0600) on first use."""
    path = salt_path(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another forget created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(secrets.token_hex(32) + "\n")
            log.info("created the forget salt %s (keep it with the home: forget_log hashes need it)", path)
    salt = path.read_text().strip()
    if not salt:
        raise ForgetError(f"the forget salt {path} is empty; restore it from a backup of the home")
    return salt.encode()


def series_hash(salt: bytes, series_id: str) -> str:
    """HMAC-SHA256 of the series id keyed by the salt, in hex: what forget_log and job_runs store."""
    return hmac.new(salt, series_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ForgetLogRow:
    """One forgotten series in one governed table."""

    series_hash: str
    table_name: str
    rows_removed: int
    delete_version: int | None
    purged_version: int | None


def append_forget_log(spark: SparkSession, cfg: LakecastConfig, rows: Sequence[ForgetLogRow], *,
                      forget_run_id: str, reason: str) -> int:
    """Append the rows (stamped now, in Spark: no Python datetime crosses) and return the version."""
    from pyspark.sql import functions as F

    table = cfg.table(FORGET_LOG.name)
    data = [(forget_run_id, r.series_hash, r.table_name, int(r.rows_removed), r.delete_version,
             r.purged_version, cfg.governance.forget_retention_hours, reason) for r in rows]
    schema = ("forget_run_id string, series_hash string, table_name string, rows_removed bigint, "
              "delete_version bigint, purged_version bigint, retention_hours int, reason string")
    df = spark.createDataFrame(data, schema).withColumn("forgotten_at", F.current_timestamp())
    df.select(*FORGET_LOG.column_names).write.format("delta").mode("append").saveAsTable(table)
    version = delta_version(spark, table)
    log.info("appended %d rows to %s (version %d)", len(data), table, version)
    return version


def last_observations_delete(spark: SparkSession, cfg: LakecastConfig, hashes: Sequence[str]) -> int | None:
    """The newest observations version at which any of these series was deleted (forget_log)."""
    from pyspark.sql import functions as F

    row = (spark.table(cfg.table(FORGET_LOG.name))
           .where(F.col("series_hash").isin(list(hashes))
                  & (F.col("table_name") == cfg.table("observations")))
           .agg(F.max("delete_version").alias("v")).head())
    return None if row is None or row["v"] is None else int(row["v"])
