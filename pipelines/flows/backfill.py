"""`lakecast backfill --start T1 --end T2 [--every 1d] [--force]`: predict over a range of as-of times, resumably.

Data flow: pin ONE model version for the whole range (alias resolved once) -> the as-of
times T1, T1+every, ... <= T2 -> one query of `forecasts` for those already scored by this
model version (skipped unless --force) -> for each remaining time, the same scoring and
MERGE as `lakecast predict`, recorded as its own `predict` run in job_runs.

Each as-of time commits on its own (one Delta MERGE), so an interrupted backfill keeps what
it finished and a re-run resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.freq import Freq, parse_freq
from pipelines.flows.predict import pin_model, score_and_write
from pipelines.sinks.job_runs import record_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

JOB = "backfill"


class BackfillError(LakecastError):
    """Bad range or step; the message names the option."""


def parse_every(every: str) -> Freq:
    """A step such as 1d, 6h, 30min, 1W, 1MS (pandas aliases; d and w in either case)."""
    alias = every.strip()
    if alias[-1:] in ("d", "w"):
        alias = alias[:-1] + alias[-1].upper()
    try:
        return parse_freq(alias)
    except ValueError as e:
        raise BackfillError(f"--every {every!r}: {e}") from None


def as_of_times(start: datetime, end: datetime, every: Freq) -> list[datetime]:
    """start, start + every, ... up to and including end (calendar steps keep the day)."""
    from pipelines.windows.grid import GridSpec, shift

    if end < start:
        raise BackfillError(f"--end {end:%Y-%m-%dT%H:%M:%S} is before --start {start:%Y-%m-%dT%H:%M:%S}")
    if every.is_calendar:
        spec = GridSpec(every.alias, 0, every.months, "none", 0)
    else:
        spec = GridSpec(every.alias, every.step // timedelta(microseconds=1), 0, "none", 0)
    times, k = [], 0
    while (t := shift(spec, start, k)) <= end:
        times.append(t)
        k += 1
    return times


def already_scored(spark: SparkSession, cfg: LakecastConfig, model_name: str, model_version: str,
                   times: list[datetime]) -> set[datetime]:
    """The as-of times for which `forecasts` holds rows of this model version.

    A time counts as scored when some forecast_origin lies in (time - 1 data step, time]:
    the origin is each series' last grid step at or before the as-of time. One query.
    """
    from pyspark.sql import functions as F

    from pipelines.spark_utc import distinct_utc, utc_lit
    from pipelines.windows.grid import GridSpec, shift

    if not times:
        return set()
    grid = GridSpec.from_config(cfg)
    lo, hi = shift(grid, min(times), -1), max(times)
    origins = distinct_utc(  # bounds and origins as UTC micros: naive datetimes would be host-local
        spark.table(cfg.table("forecasts"))
        .where((F.col("model_name") == model_name) & (F.col("model_version") == str(model_version))
               & (F.col("forecast_origin") > utc_lit(lo)) & (F.col("forecast_origin") <= utc_lit(hi))),
        "forecast_origin")
    return {t for t in times if any(shift(grid, t, -1) < o <= t for o in origins)}


@dataclass
class BackfillResult:
    model: str
    times: list[datetime]
    skipped: list[datetime] = field(default_factory=list)
    scored: list[datetime] = field(default_factory=list)
    forecast_rows: int = 0
    job_run_id: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "as-of times": len(self.times),
            "scored now": len(self.scored),
            "skipped (already scored by this version)": len(self.skipped),
            "forecast rows written": self.forecast_rows,
            "range": (f"{self.times[0]:%Y-%m-%d %H:%M} .. {self.times[-1]:%Y-%m-%d %H:%M}"
                      if self.times else "-"),
            "job run": self.job_run_id,
        }


def _eta(done: int, total: int, elapsed: float) -> str:
    if done == 0:
        return "?"
    left = elapsed / done * (total - done)
    return f"{left / 60:.1f} min" if left >= 90 else f"{left:.0f} s"


def run(spark: SparkSession, cfg: LakecastConfig, *, start: datetime | str, end: datetime | str, every: str = "1d",
        force: bool = False, alias: str | None = None, version: str | int | None = None) -> BackfillResult:
    """Score every as-of time in [start, end] with one pinned model; resumable, recorded."""
    from conf.utc import from_utc_micros, to_utc_micros

    try:
        t0, t1 = (from_utc_micros(to_utc_micros(t)) for t in (start, end))
    except ValueError as e:
        raise BackfillError(f"--start/--end: {e}") from None
    times = as_of_times(t0, t1, parse_every(every))
    params = {"start": str(t0), "end": str(t1), "every": every, "force": force, "alias": alias,
              "version": None if version is None else str(version)}
    with record_run(spark, cfg, JOB, params) as rec:
        model = pin_model(cfg, alias=alias, version=version)
        rec.details.update(model.details())
        done = set() if force else already_scored(spark, cfg, model.name, model.version, times)
        result = BackfillResult(model.key, times, skipped=[t for t in times if t in done],
                                job_run_id=rec.run_id)
        todo = [t for t in times if t not in done]
        log.info("backfill %d as-of times with %s: %d to score, %d already scored%s", len(times),
                 model.key, len(todo), len(done), " (--force: rescoring all)" if force else "")
        began = time.monotonic()
        for i, t in enumerate(todo, 1):
            tick = time.monotonic()
            with record_run(spark, cfg, "predict", {"as_of": str(t), "backfill_run_id": rec.run_id,
                                                     "version": model.version}) as inner:
                inner.details.update(model.details())
                out = score_and_write(spark, cfg, model, inner, t)
            rows = out.counts.get("forecast_rows", 0)
            result.scored.append(t)
            result.forecast_rows += rows
            log.info("backfill [%d/%d] as of %s: %d series, %d rows in %.1f s; about %s left", i, len(todo),
                     f"{t:%Y-%m-%d %H:%M}", out.counts.get("scored_series", 0), rows,
                     time.monotonic() - tick, _eta(i, len(todo), time.monotonic() - began))
        rec.row_counts.update({"as_of_times": len(times), "scored": len(result.scored),
                               "skipped": len(result.skipped), "forecast_rows": result.forecast_rows})
        return result
