"""The grid and fill rules of `pipelines.windows.grid` as Spark SQL columns: all series at once.

`grid_arrays` puts each series on a dense array inside its row (no Python workers); the `sql`
window strategy cuts windows from those arrays and `to_grid` explodes them to one row per
step. The rules (anchor, flooring, duplicates, fill) are the numpy ones, stated in
`pipelines.windows.grid`; the tests hold both to one reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.utc import to_utc_micros
from conf.window_contract import OBS_SERIES, OBS_TIME, OBS_VALUE, OBSERVATION_COLUMNS
from pipelines.windows.grid import DAY_US, GridSpec, month_number

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _anchor_col(spec: GridSpec, first_ts: Column) -> Column:
    from pyspark.sql import functions as F

    if not spec.is_calendar:
        return F.unix_micros(first_ts)
    m = (F.year(first_ts) - 1970) * 12 + F.month(first_ts) - 1
    return m - F.pmod(m, F.lit(spec.anchor_months))


def _floor_div(a: Column, c: int) -> Column:
    """Exact floor division of a long column by a positive constant (also below zero)."""
    from pyspark.sql import functions as F

    return ((a - F.pmod(a, F.lit(c))) / F.lit(c)).cast("long")


def _step_col(spec: GridSpec, anchor: Column, ts: Column) -> Column:
    """Grid step of a timestamp column (floored), as a SQL column."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = (F.year(ts) - 1970) * 12 + F.month(ts) - 1
        return _floor_div(m - anchor, spec.months)
    return _floor_div(F.unix_micros(ts) - anchor, spec.step_us)


def step_span_col(spec: GridSpec, first_ts: Column, last_ts: Column) -> Column:
    """Grid steps from `first_ts` to `last_ts`, both counted (SQL columns): a series' history."""
    anchor = _anchor_col(spec, first_ts)
    return _step_col(spec, anchor, last_ts) - _step_col(spec, anchor, first_ts) + 1


def step_ts_col(spec: GridSpec, anchor: Column, k: Column) -> Column:
    """Timestamp of grid step `k` (SQL columns), e.g. a window's forecast origin."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = anchor + k * spec.months
        if spec.period_end:  # midnight on the period's last day: the next period's start less a day
            m = m + spec.anchor_months
        year = (_floor_div(m, 12) + 1970).cast("int")
        month = (F.pmod(m, F.lit(12)) + 1).cast("int")
        start = F.make_timestamp(year, month, F.lit(1), F.lit(0), F.lit(0), F.lit(0))
        return F.timestamp_micros(F.unix_micros(start) - F.lit(DAY_US)) if spec.period_end else start
    return F.timestamp_micros(anchor + k * F.lit(spec.step_us))


def step_of_col(spec: GridSpec, anchor: Column, t_us: int) -> Column:
    """The last grid step (SQL column, per series anchor) stamped at or before a fixed time, e.g.
    a cut-off or as-of (`grid.step_at_or_before`)."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = int(month_number(np.array([t_us]))[0])
        k = _floor_div(F.lit(m) - anchor, spec.months)
        if spec.period_end:  # the period's last day may still be ahead of t
            return F.when(F.unix_micros(step_ts_col(spec, anchor, k)) > F.lit(t_us), k - 1).otherwise(k)
        return k
    return _floor_div(F.lit(t_us) - anchor, spec.step_us)


class ObservationsError(LakecastError):
    """The observations cannot be put on a grid; the message names the column at fault."""


def select_observations(obs: DataFrame) -> DataFrame:
    """(series_id, ts, value) of the observations table (OBSERVATION_COLUMNS, cast to string,
    timestamp and double); fail naming what is missing.

    These names are fixed: `data.series_col/time_col/value_col` name the raw files' columns,
    which `lakecast ingest` maps to them.
    """
    from pyspark.sql import functions as F

    missing = [c for c in OBSERVATION_COLUMNS if c not in obs.columns]
    if missing:
        raise ObservationsError(
            f"column(s) {', '.join(missing)} not found in the observations "
            f"(columns: {', '.join(obs.columns)}); windows read the observations table's "
            f"{', '.join(OBSERVATION_COLUMNS)}, as `lakecast ingest` writes them"
        )
    return obs.select(F.col(OBS_SERIES).cast("string").alias(OBS_SERIES),
                      F.col(OBS_TIME).cast("timestamp").alias(OBS_TIME),
                      F.col(OBS_VALUE).cast("double").alias(OBS_VALUE))


def grid_arrays(obs: DataFrame, cfg: LakecastConfig, end: datetime | str | None = None,
                to_end: bool = False) -> DataFrame:
    """One row per series: its grid as arrays, gaps filled (Spark SQL, no Python workers).

    Columns: series_id, anchor (long: first timestamp in us, or month number for calendar frequencies),
    first_step (long: step of the first valid observation, NULL if none), last_obs_step (long),
    last_step (long: last grid step), values array<double> (NULL = still missing after fill),
    observed array<boolean>. Rows after `end` are ignored; with `to_end` the grid runs to the
    last step at or before `end` (an open gap at the end), else to the last observation.
    """
    end_us = None if end is None else to_utc_micros(end)
    if to_end and end_us is None:
        raise ValueError("grid_arrays(to_end=True) needs an `end` time")
    return series_grid_arrays(select_observations(obs), GridSpec.from_config(cfg), end_us, to_end)


def series_grid_arrays(df: DataFrame, spec: GridSpec, end_us: int | None, to_end: bool) -> DataFrame:
    """`grid_arrays` on (series_id, ts, value) columns and a plain spec."""
    from pyspark.sql import functions as F

    valid = F.col("value").isNotNull() & ~F.isnan("value")
    if end_us is not None:
        valid = valid & (F.unix_micros("ts") <= F.lit(end_us))
    g = df.groupBy("series_id").agg(
        F.min("ts").alias("first_ts"),
        F.collect_list(F.when(valid, F.struct("ts", "value"))).alias("rows"),
    )
    g = g.withColumn("anchor", _anchor_col(spec, F.col("first_ts")))
    # (step, ts, value) sorted; keep the last row of each step (latest ts, then larger value).
    rows = F.transform("rows", lambda r: F.struct(_step_col(spec, F.col("anchor"), r["ts"]).alias("k"),
                                                 r["ts"].alias("ts"), r["value"].alias("v")))
    g = g.withColumn("rows", F.array_sort(rows))
    n = F.size("rows")
    keep = F.filter(F.sequence(F.lit(0), n - 1),
                    lambda i: (i == n - 1) | (F.col("rows")[i]["k"] != F.get("rows", i + 1)["k"]))
    g = g.withColumn("rows", F.when(n > 0, F.transform(keep, lambda i: F.col("rows")[i])).otherwise(
        F.col("rows")))
    g = g.withColumn("ks", F.col("rows.k")).withColumn("vs", F.col("rows.v"))
    n = F.size("ks")
    last_obs = F.element_at("ks", -1)
    last_step = step_of_col(spec, F.col("anchor"), end_us) if to_end and end_us is not None else last_obs
    g = g.withColumn("first_step", F.when(n > 0, F.col("ks")[0])).withColumn(
        "last_obs_step", F.when(n > 0, last_obs)).withColumn("last_step", F.when(n > 0, last_step))
    g = g.withColumn("values", _dense_values(spec, n)).withColumn("observed", _dense_observed(n))
    return g.select("series_id", "anchor", "first_step", "last_obs_step", "last_step", "values", "observed")


def _gap_fill(spec: GridSpec, a: Column, b: Column, g: Column, open_end: bool) -> Column:
    """SQL array of the `g` filled (or NULL) values of a gap between values a and b."""
    from pyspark.sql import functions as F

    nulls = F.array_repeat(F.lit(None).cast("double"), g.cast("int"))
    if spec.fill == "none" or spec.max_gap == 0:
        return nulls
    if spec.fill == "ffill":
        filled = F.array_repeat(a, g.cast("int"))
    elif open_end:
        return nulls
    else:
        filled = F.transform(F.sequence(F.lit(1), F.greatest(g, F.lit(1)).cast("int")),
                             lambda j: a + (b - a) * j / (g + 1))
    return F.when(g <= spec.max_gap, filled).otherwise(nulls)


def _dense_values(spec: GridSpec, n: Column) -> Column:
    """Each observation followed by its (filled) gap; then the open gap up to last_step."""
    from pyspark.sql import functions as F

    ks, vs = F.col("ks"), F.col("vs")

    def piece(i: Column) -> Column:
        g = F.when(i < n - 1, F.get(ks, i + 1) - ks[i] - 1).otherwise(F.lit(0))
        gap = F.when(g > 0, _gap_fill(spec, vs[i], F.get(vs, i + 1), g, open_end=False)).otherwise(
            F.array().cast("array<double>"))
        return F.concat(F.array(vs[i]), gap)

    body = F.flatten(F.transform(F.sequence(F.lit(0), n - 1), piece))
    tail_gap = F.col("last_step") - F.col("last_obs_step")
    tail = F.when(tail_gap > 0, _gap_fill(spec, F.element_at(vs, -1), F.lit(None), tail_gap, open_end=True)
                  ).otherwise(F.array().cast("array<double>"))
    return F.when(n > 0, F.concat(body, tail))


def _dense_observed(n: Column) -> Column:
    from pyspark.sql import functions as F

    ks = F.col("ks")

    def piece(i: Column) -> Column:
        g = F.when(i < n - 1, F.get(ks, i + 1) - ks[i] - 1).otherwise(F.lit(0))
        return F.concat(F.array(F.lit(True)), F.array_repeat(F.lit(False), g.cast("int")))

    body = F.flatten(F.transform(F.sequence(F.lit(0), n - 1), piece))
    tail = F.array_repeat(F.lit(False), (F.col("last_step") - F.col("last_obs_step")).cast("int"))
    return F.when(n > 0, F.concat(body, tail))


def to_grid(obs: DataFrame, cfg: LakecastConfig, end: datetime | str | None = None,
            to_end: bool = False) -> DataFrame:
    """Long format of `grid_arrays`: one row per (series_id, grid step) from the first valid
    observation, with `ts`, `value` (filled; NULL = still missing) and `observed`."""
    from pyspark.sql import functions as F

    spec = GridSpec.from_config(cfg)
    g = grid_arrays(obs, cfg, end, to_end).where(F.col("first_step").isNotNull())
    z = g.select("series_id", "anchor", "first_step",
                 F.posexplode(F.arrays_zip(F.col("values").alias("value"),
                                           F.col("observed").alias("observed"))).alias("pos", "z"))
    k = F.col("first_step") + F.col("pos")
    return z.select("series_id", step_ts_col(spec, F.col("anchor"), k).alias("ts"),
                    F.col("z.value").alias("value"), F.col("z.observed").alias("observed"))
