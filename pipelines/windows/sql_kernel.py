"""The `sql` window strategy: grouped arrays and Spark SQL higher-order functions.

Everything stays in the JVM (no Python workers): `series_grid_arrays` puts each series on a
dense array, then `transform`/`slice`/`aggregate` cut, check and scale all windows of a
series inside its row, and only the finished windows are exploded (so the series arrays are
never copied into each window row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from conf.window_contract import MISSING_TARGET, STALE, TOO_MANY_MISSING, TOO_SHORT
from pipelines.windows.features import calendar_feature_cols, guard_scale_col
from pipelines.windows.grid_spark import series_grid_arrays, step_of_col, step_ts_col
from pipelines.windows.spec import WindowSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    _ColumnFn = Callable[[Column], Column]


def _calendar_arrays(spec: WindowSpec) -> Column:
    """Per-series arrays of each step's calendar features: array<array<double>> (step, feature)."""
    from pyspark.sql import functions as F

    grid = spec.grid
    n = F.size("values")

    def per_step(i: Column) -> Column:
        k = F.col("first_step") + i
        if grid.is_calendar:
            month = F.pmod(F.col("anchor") + k * grid.months, F.lit(12))
            ts_us = F.lit(0)  # calendar frequencies only use the month
        else:
            ts_us = F.col("anchor") + k * F.lit(grid.step_us)
            month = F.month(F.timestamp_micros(ts_us)) - 1
        return F.array(*calendar_feature_cols(spec.calendar, ts_us, month))

    return F.transform(F.sequence(F.lit(0), n - 1), per_step)


def _cut(spec: WindowSpec, starts: Column, with_targets: bool) -> Column:
    """array<struct> of raw windows (s, x, m, c, y) from the grid arrays, one per start."""
    from pyspark.sql import functions as F

    width, hz = spec.width, spec.horizon

    def one(s: Column) -> Column:
        fields = [s.alias("s"), F.slice("values", s + 1, width).alias("x"),
                  F.slice("observed", s + 1, width).alias("m")]
        if spec.calendar:
            fields.append(F.slice("cal", s + 1, width).alias("c"))
        if with_targets:
            fields.append(F.slice("values", s + width + 1, hz).alias("y"))
        return F.struct(*fields)

    return F.transform(starts, one)


def _finish(spec: WindowSpec, with_targets: bool) -> tuple[_ColumnFn, _ColumnFn, _ColumnFn]:
    """Turn each raw window struct into (k_origin, inputs, targets, loc, scale, reason); the
    lookback (the window after its context) alone decides the scale and the missing-steps check."""
    from pyspark.sql import functions as F

    lb, ctx, width = spec.lookback, spec.context, spec.width

    def stats(w: Column) -> Column:
        x = F.slice(w["x"], ctx + 1, lb) if ctx else w["x"]
        pad = F.greatest(F.lit(0), F.col("pad") - w["s"] - ctx)  # lookback steps before the first observation
        real = F.lit(lb) - pad
        cnt = lb - F.size(F.filter(x, lambda v: v.isNull()))
        nmiss = real - cnt
        total = F.aggregate(x, F.lit(0.0), lambda acc, v: acc + F.coalesce(v, F.lit(0.0)))
        bad_x = (nmiss == real) | (nmiss > F.lit(spec.max_missing_frac) * real)
        reason = F.when(bad_x, F.lit(TOO_MANY_MISSING))
        if with_targets:
            reason = reason.when(F.exists(w["y"], lambda v: v.isNull()), F.lit(MISSING_TARGET))
        return w.withField("loc", F.when(cnt > 0, total / cnt)).withField("reason", reason).withField(
            "cnt", cnt)

    def scale(w: Column) -> Column:
        ss = F.aggregate(F.slice(w["x"], ctx + 1, lb) if ctx else w["x"], F.lit(0.0),
                         lambda acc, v: acc + F.coalesce((v - w["loc"]) * (v - w["loc"]), F.lit(0.0)))
        std = F.when(w["cnt"] > 0, F.sqrt(ss / w["cnt"]))
        return w.withField("scale", guard_scale_col(w["loc"], std))

    def features(w: Column) -> Column:
        def step(t: Column) -> Column:
            value = F.coalesce((w["x"][t] - w["loc"]) / w["scale"], F.lit(0.0))
            parts = [F.array(value, F.when(w["m"][t], F.lit(0.0)).otherwise(F.lit(1.0)))]
            if spec.calendar:
                parts.append(w["c"][t])
            return F.concat(*parts)

        ok = w["reason"].isNull()
        inputs = F.flatten(F.transform(F.sequence(F.lit(0), F.lit(width - 1)), step)).cast("array<float>")
        out = [(w["s"] + (width - 1)).cast("long").alias("k"), F.when(ok, inputs).alias("inputs")]
        if with_targets:
            targets = F.transform(w["y"], lambda v: (v - w["loc"]) / w["scale"]).cast("array<float>")
            out.append(F.when(ok, targets).alias("targets"))
        else:
            out.append(F.lit(None).cast("array<float>").alias("targets"))
        out += [F.when(ok, w["loc"]).alias("scale_loc"), F.when(ok, w["scale"]).alias("scale_scale"),
                w["reason"].alias("skip_reason")]
        return F.struct(*out)

    return stats, scale, features


def sql_windows(df: DataFrame, spec: WindowSpec, mode: str, t_us: int | None,
                after_us: int | None = None) -> DataFrame:
    """All series' windows with Spark SQL only (the `sql` strategy)."""
    from pyspark.sql import functions as F

    grid = spec.grid
    width, hz = spec.width, spec.horizon
    training = mode == "training"
    g = series_grid_arrays(df, grid, t_us, to_end=not training)
    n = F.size("values")
    if training:
        too_short = F.col("first_step").isNull() | (n - hz < spec.min_history)
        # the context before the first lookback is padding; shorter than one window: one window, padded
        pad = F.greatest(F.lit(spec.context), F.lit(width + hz) - n)
        short_origin = step_ts_col(grid, F.col("anchor"), F.col("last_obs_step"))
        reason = F.when(too_short, F.lit(TOO_SHORT))
    else:
        assert t_us is not None
        k_o = step_of_col(grid, F.col("anchor"), t_us)
        short_origin = step_ts_col(grid, F.col("anchor"), k_o)
        pad = F.greatest(F.lit(0), F.lit(width) - n)
        reason = (F.when(F.col("first_step").isNull(), F.lit(TOO_SHORT))
                  .when(k_o - F.col("last_obs_step") > spec.max_staleness, F.lit(STALE))
                  .when(k_o - F.col("first_step") + 1 < spec.min_history, F.lit(TOO_SHORT)))
    g = g.withColumn("series_reason", reason)
    # A short series' window starts before its first observation: prepend missing steps.
    g = (g.withColumn("pad", F.when(F.col("series_reason").isNull(), pad).otherwise(F.lit(0)))
         .withColumn("values", F.concat(F.array_repeat(F.lit(None).cast("double"), F.col("pad")), "values"))
         .withColumn("observed", F.concat(F.array_repeat(F.lit(False), F.col("pad")), "observed"))
         .withColumn("first_step", F.col("first_step") - F.col("pad")))
    n = F.size("values")
    if training:
        starts = F.sequence(F.lit(0), n - width - hz, F.lit(spec.stride))
        if after_us is not None:
            origin_k = F.col("first_step") + width - 1
            starts = F.filter(starts, lambda s: step_ts_col(grid, F.col("anchor"), origin_k + s)
                              > F.timestamp_micros(F.lit(after_us)))
    else:
        starts = F.array(n - width)
    if spec.calendar:
        g = g.withColumn("cal", F.when(F.col("series_reason").isNull(), _calendar_arrays(spec)))
    stats, scale, features = _finish(spec, training)
    wins = F.when(F.col("series_reason").isNull(), _cut(spec, starts, training))
    wins = F.transform(F.transform(F.transform(wins, stats), scale), features)
    skipped = F.array(F.struct(
        F.lit(None).cast("long").alias("k"), F.lit(None).cast("array<float>").alias("inputs"),
        F.lit(None).cast("array<float>").alias("targets"), F.lit(None).cast("double").alias("scale_loc"),
        F.lit(None).cast("double").alias("scale_scale"), F.col("series_reason").alias("skip_reason")))
    rows = g.select("series_id", "anchor", "first_step", short_origin.alias("short_origin"),
                    F.explode(F.when(F.col("series_reason").isNull(), wins).otherwise(skipped)).alias("w"))
    origin = F.when(F.col("w.k").isNull(), F.col("short_origin")).otherwise(
        step_ts_col(grid, F.col("anchor"), F.col("first_step") + F.col("w.k")))
    return rows.select("series_id", origin.alias("forecast_origin"), "w.inputs", "w.targets",
                       "w.scale_loc", "w.scale_scale", "w.skip_reason")
