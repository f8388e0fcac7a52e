"""Ingest, step 2: classify every raw row as a valid observation, an in-batch duplicate or quarantined.

`validate` is a pure DataFrame -> DataFrame step: every input row ends up exactly once as a
valid observation, an exact in-batch duplicate, or a quarantine row with a reason, so that

    read = valid + duplicates + quarantined

holds by construction (`ingest.account` counts the outcome and checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.freq import WEEKDAYS, Freq, parse_freq
from conf.utc import utc_aware
from pipelines.ingest.read import RAW_COLUMNS, ColumnNames
from pipelines.spark_utc import utc_lit

# Quarantine reason codes, in the order they are checked (a row gets the first that applies).
REASONS: dict[str, str] = {
    "malformed_row": "the CSV line has more or fewer fields than its file's header",
    "missing_series_id": "the series id is null or blank",
    "missing_timestamp": "the timestamp is null or blank",
    "bad_timestamp": "the timestamp cannot be parsed (ISO 8601 expected, or ingest.timestamp_format)",
    "missing_value": "the value is null or blank",
    "bad_value": "the value is not a number",
    "non_finite_value": "the value is NaN or infinite",
    "off_grid": "the timestamp is not on the data.freq grid (UTC)",
    "future_timestamp": "the timestamp is later than the ingest time (--as-of, default now) + data.max_future",
    "conflicting_duplicate": "the batch holds different values for the same (series_id, ts)",
}

STATUS_VALID, STATUS_DUPLICATE, STATUS_QUARANTINED = "valid", "duplicate", "quarantined"

# An explicit zone after a time of day: Z, +01:00, +0100, -4:00, UTC, GMT+1, a short id Spark
# knows (EST, CET, IST ...; not AM or PM) or a region id. (Text that looks zoned but that Spark cannot parse is
# a bad_timestamp either way; only naive text is read in data.timezone.)
_ZONE_RE = (r"\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*"
            r"(Z|[+-]\d{1,2}(:?\d{2})?|(UTC|GMT|UT)([+-]\d{1,2}(:?\d{2})?)?|(?!(AM|PM)$)[A-Z]{2,5}|[A-Za-z_]+/[A-Za-z_/+-]+)$")
# A date first (a year of four digits or more): Spark would give a bare time of day today's date.
_DATE_FIRST_RE = r"^[+-]?\d{4}"
_DAY_US = 86_400 * 1_000_000
_SUNDAY_EPOCH_US = 3 * _DAY_US  # 1970-01-04, the first Sunday: pandas' W is W-SUN (W-MON: a day later)


@dataclass(frozen=True)
class IngestRules:
    """What a valid observation is: its grid, how naive timestamps are read, how far ahead it may be."""

    freq: Freq
    timezone: str = "UTC"
    max_future: timedelta = timedelta(days=1)
    timestamp_format: str | None = None
    columns: ColumnNames = field(default_factory=lambda: ColumnNames("series_id", "ts", "value"))

    @classmethod
    def from_config(cls, cfg: LakecastConfig, freq: str | None = None,
                    columns: ColumnNames | None = None) -> IngestRules:
        return cls(
            freq=parse_freq(freq or cfg.data.freq),
            timezone=cfg.data.timezone,
            max_future=parse_freq(cfg.data.max_future).step,
            timestamp_format=cfg.ingest.timestamp_format,
            columns=columns or ColumnNames.from_config(cfg),
        )


def parse_timestamp(raw: Column, rules: IngestRules) -> Column:
    """Raw text -> UTC TIMESTAMP (NULL if unparsable). Naive text is wall-clock in rules.timezone.

    Relies on the lakecast session time zone being UTC (pipelines/session/settings.py sets it), which
    `validate` checks.
    """
    text = F.trim(raw)
    if rules.timestamp_format:
        parsed = F.try_to_timestamp(text, F.lit(rules.timestamp_format))
    else:
        parsed = F.when(text.rlike(_DATE_FIRST_RE), text.try_cast("timestamp"))
    if rules.timezone == "UTC":
        return parsed
    naive = ~text.rlike(_ZONE_RE)
    return F.when(naive, F.to_utc_timestamp(parsed, rules.timezone)).otherwise(parsed)


# What an off-grid row most often means, per unit: the same data stamped another way.
GRID_HINTS = {"W": " (weekly steps on another day: W for Sundays, W-MON ... W-SAT)",
               **dict.fromkeys(("MS", "QS", "YS"), " (dates at period ends: ME, QE, YE)"),
               **dict.fromkeys(("ME", "QE", "YE"), " (dates at period starts: MS, QS, YS)")}


def on_grid(ts: Column, freq: Freq) -> Column:
    """True where a UTC timestamp lies on the frequency grid.

    Fixed steps are counted from the Unix epoch (weeks from Sunday 1970-01-04, as pandas' W, or the
    weekday of W-MON ... W-SAT);
    calendar steps (MS, QS, YS) are midnight UTC on the first day of a month whose index is a
    multiple of the step (QS: Jan, Apr, Jul, Oct); period-end steps (ME, QE, YE) midnight UTC on
    the last day of a period's last month (QE: Mar 31, Jun 30, Sep 30, Dec 31).
    """
    if freq.is_calendar:
        month_index = F.year(ts) * 12 + F.month(ts) - 1
        if freq.period_end:  # midnight on the last day of a period's last month (Mar 31 for QE)
            last = F.to_timestamp(F.last_day(ts)) == ts
            return last & ((month_index - F.lit(freq.period_months - 1)) % F.lit(freq.months) == 0)
        return (F.date_trunc("month", ts) == ts) & (month_index % F.lit(freq.months) == 0)
    step_us = int(freq.step.total_seconds() * 1_000_000)
    anchor = _SUNDAY_EPOCH_US + WEEKDAYS.index(freq.weekday) * _DAY_US if freq.unit == "W" else 0
    return ((F.unix_micros(ts) - F.lit(anchor)) % F.lit(step_us)) == 0


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def _reason_text(code: str, rules: IngestRules, ts: Column, cutoff: datetime) -> Column:
    cols = rules.columns
    iso = F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss'Z'")
    texts: dict[str, Column] = {
        "malformed_row": F.lit("the line has more or fewer fields than its file's header; quote a value that "
                               "holds the delimiter (a decimal comma?) or set ingest.csv_delimiter"),
        "missing_series_id": F.lit(f"series id column '{cols.series}' is null or blank"),
        "missing_timestamp": F.lit(f"timestamp column '{cols.time}' is null or blank"),
        "bad_timestamp": F.format_string(
            "timestamp '%s' in column '" + cols.time + "' cannot be parsed; use ISO 8601 "
            "(e.g. 2024-01-31T13:00:00Z) or set ingest.timestamp_format", F.col("ts_raw")),
        "missing_value": F.lit(f"value column '{cols.value}' is null or blank"),
        "bad_value": F.format_string(
            "value '%s' in column '" + cols.value + "' is not a number", F.col("value_raw")),
        "non_finite_value": F.format_string("value '%s' is not finite (NaN or infinite)", F.col("value_raw")),
        "off_grid": F.format_string(
            "timestamp %s (UTC) is not on the '" + rules.freq.alias + "' grid; check data.freq "
            "and data.timezone" + GRID_HINTS.get(rules.freq.unit, ""), iso),
        "future_timestamp": F.format_string(
            "timestamp %s (UTC) is after the ingest time (--as-of, default now) + data.max_future ("
            + cutoff.strftime("%Y-%m-%dT%H:%M:%SZ") + ")", iso),
        "conflicting_duplicate": F.format_string(
            "series '%s' has %d different rows at %s (UTC) in this batch with values from %s to %s; "
            "fix the source and re-ingest", F.col("series_id"), F.col("_n"), iso,
            F.col("_vmin").cast("string"), F.col("_vmax").cast("string")),
    }
    return texts[code]


def validate(raw: DataFrame, rules: IngestRules, now: datetime | None = None) -> DataFrame:
    """Classify every raw row: the classified frame (one row in, one row out).

    Columns: series_id, ts (UTC), value, source_file, ts_raw, value_raw, series_raw, raw (these
    four hold the source's text on quarantined rows only, null on the others), status (valid |
    duplicate | quarantined), reason_code, reason. Exact duplicates of a
    (series_id, ts, value) within the batch keep one `valid` row; the rest are `duplicate`.
    Different values for one (series_id, ts) are all quarantined as conflicting_duplicate.
    """
    tz = raw.sparkSession.conf.get("spark.sql.session.timeZone")
    if tz != "UTC":
        raise LakecastError(
            f"spark.sql.session.timeZone is {tz!r}; lakecast stores UTC and needs it to be UTC "
            "(remove the spark.conf override)"
        )
    now = now or datetime.now(UTC)
    cutoff = utc_aware(now) + rules.max_future
    series = F.trim(F.col("series_raw"))
    ts = parse_timestamp(F.col("ts_raw"), rules)
    value = F.trim(F.col("value_raw")).try_cast("double")
    df = raw.select(
        *RAW_COLUMNS,
        F.when(~_blank(F.col("series_raw")), series).alias("series_id"),
        ts.alias("ts"),
        value.alias("value"),
    )
    checks: list[tuple[str, Column]] = [
        ("malformed_row", F.col("malformed").isNotNull()),
        ("missing_series_id", F.col("series_id").isNull()),
        ("missing_timestamp", _blank(F.col("ts_raw"))),
        ("bad_timestamp", F.col("ts").isNull()),
        ("missing_value", _blank(F.col("value_raw"))),
        ("bad_value", F.col("value").isNull()),
        ("non_finite_value", F.isnan("value") | (F.abs("value") == float("inf"))),
        ("off_grid", ~on_grid(F.col("ts"), rules.freq)),
        ("future_timestamp", F.col("ts") > utc_lit(cutoff)),
    ]
    code: Column = F.lit(None).cast("string")
    for name, cond in reversed(checks):
        code = F.when(cond, F.lit(name)).otherwise(code)
    df = df.withColumn("_row_code", code)

    # In-batch duplicates among rows that passed the row checks: one window per (series_id, ts).
    bad = F.col("_row_code").isNotNull()
    ok_value = F.when(~bad, F.col("value"))
    # One spec (same partitioning and order) for all four, so Spark sorts once.
    ordered = Window.partitionBy("series_id", "ts").orderBy(bad.asc(), F.col("source_file").asc_nulls_last())
    whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    df = df.select(
        "*",
        F.count(ok_value).over(whole).alias("_n"),
        F.min(ok_value).over(whole).alias("_vmin"),
        F.max(ok_value).over(whole).alias("_vmax"),
        F.row_number().over(ordered).alias("_rn"),
    )
    conflict = ~bad & (F.col("_vmin") != F.col("_vmax"))
    reason_code = F.when(bad, F.col("_row_code")).when(conflict, F.lit("conflicting_duplicate"))
    df = df.withColumn("reason_code", reason_code)
    reason: Column = F.lit(None).cast("string")
    for name in reversed(REASONS):
        reason = F.when(F.col("reason_code") == name, _reason_text(name, rules, F.col("ts"), cutoff)
                        ).otherwise(reason)
    status = (F.when(F.col("reason_code").isNotNull(), F.lit(STATUS_QUARANTINED))
              .when(F.col("_rn") > 1, F.lit(STATUS_DUPLICATE))
              .otherwise(F.lit(STATUS_VALID)))
    # The source's text is kept only where a quarantine row needs it: the classified rows are
    # cached for the count, the MERGE and the quarantine append, and nulls cost the cache nothing.
    kept = [F.when(F.col("reason_code").isNotNull(), F.col(c)).alias(c)
            for c in ("series_raw", "ts_raw", "value_raw", "raw")]
    return df.select(
        "series_id", "ts", "value", "source_file", *kept,
        status.alias("status"), "reason_code", reason.alias("reason"),
    )


def valid_observations(classified: DataFrame) -> DataFrame:
    """The rows to MERGE into observations: series_id, ts, value, source_file (keys unique)."""
    valid = classified.filter(F.col("status") == STATUS_VALID)
    return valid.select("series_id", "ts", "value", "source_file")


def quarantine_rows(classified: DataFrame, batch_id: str, quarantined_at: datetime) -> DataFrame:
    """The rows to append to quarantine, in the quarantine table's column order."""
    return classified.filter(F.col("status") == STATUS_QUARANTINED).select(
        F.lit(batch_id).alias("batch_id"),
        "source_file",
        "reason_code",
        "reason",
        F.col("series_raw").alias("series_id"),
        "ts_raw",
        "value_raw",
        "raw",
        utc_lit(quarantined_at).alias("quarantined_at"),
    )

