"""The governed Delta tables: their schemas, constraints, comments and properties, and their DDL.

`tables.ensure` creates them from these specs and reports drift; nothing here touches Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from conf import LakecastConfig
from conf.window_contract import OBS_SERIES, OBS_TIME, OBS_VALUE


def pipeline_version() -> str:
    try:
        return version("lakecast")
    except PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    nullable: bool = True

    def ddl(self) -> str:
        null = "" if self.nullable else " NOT NULL"
        return f"`{self.name}` {self.type}{null} COMMENT '{sql_quote(self.comment)}'"


# Set by Delta from the features a table uses, never by hand.
PROTOCOL_VERSION_KEYS = ("delta.minReaderVersion", "delta.minWriterVersion")


@dataclass(frozen=True)
class TableSpec:
    name: str
    comment: str
    columns: tuple[Column, ...]
    constraints: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    partitioned_by: tuple[str, ...] = ()
    # The name this table had in an older release: `lakecast migrate` renames that table to this one.
    renamed_from: str | None = None

    def __post_init__(self) -> None:
        # The drift check compares these with the table's configuration (DESCRIBE DETAIL), which
        # never lists protocol keys: one named here would read as drift on every run.
        protocol = [k for k in self.properties if k.startswith("delta.feature.") or k in PROTOCOL_VERSION_KEYS]
        if protocol:
            raise ValueError(f"table spec {self.name}: protocol keys are not table properties: {protocol}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


ROLES = ("champion", "challenger", "other")
ROLES_SQL = ", ".join(f"'{r}'" for r in ROLES)


def sql_quote(s: str) -> str:
    """`s` escaped for a single-quoted SQL string literal (comments, property values)."""
    return s.replace("\\", "\\\\").replace("'", "\\'")


OBSERVATIONS = TableSpec(
    name="observations",
    comment="Validated time-series observations, one row per (series_id, ts); written by `lakecast ingest`.",
    columns=(
        # fixed names, whatever the raw files call them (ingest maps data.series_col/time_col/value_col)
        Column(OBS_SERIES, "STRING", "Series identifier", nullable=False),
        Column(OBS_TIME, "TIMESTAMP", "Observation time (UTC), on the series' frequency grid", nullable=False),
        Column(OBS_VALUE, "DOUBLE", "Observed value (finite)"),
        Column("batch_id", "STRING", "Ingest batch that last wrote this row"),
        Column("source_file", "STRING", "File the row came from"),
        Column("ingested_at", "TIMESTAMP", "When the row was first written"),
        Column("updated_at", "TIMESTAMP", "When the value was last corrected"),
    ),
    # `lakecast evaluate` reads only the actuals new or corrected since its last run.
    properties={"delta.enableChangeDataFeed": "true"},
)

QUARANTINE = TableSpec(
    name="quarantine",
    comment="Rejected input rows with the reason; nothing is dropped silently.",
    columns=(
        Column("batch_id", "STRING", "Ingest batch the row belonged to", nullable=False),
        Column("source_file", "STRING", "File the row came from"),
        Column("reason_code", "STRING", "Machine-readable reason, e.g. bad_timestamp", nullable=False),
        Column("reason", "STRING", "Human-readable reason", nullable=False),
        Column("series_id", "STRING", "Raw series id as read"),
        Column("ts_raw", "STRING", "Raw timestamp as read"),
        Column("value_raw", "STRING", "Raw value as read"),
        Column("raw", "STRING", "The whole raw row as JSON"),
        Column("quarantined_at", "TIMESTAMP", "When the row was quarantined", nullable=False),
    ),
    constraints={"reason_code_not_empty": "length(reason_code) > 0"},
)

FORECASTS = TableSpec(
    name="forecasts",
    comment=("Probabilistic forecasts with lineage; one row per (series_id, forecast_origin, target_ts, model_name, "
             "model_version): a shadow-scored challenger sits beside the champion."),
    columns=(
        Column("series_id", "STRING", "Series identifier", nullable=False),
        Column("forecast_origin", "TIMESTAMP", "Last observed grid step the forecast starts from (UTC)",
               nullable=False),
        Column("target_ts", "TIMESTAMP", "Time being forecast (UTC)", nullable=False),
        Column("horizon_step", "INT", "Steps ahead of the origin, 1-based", nullable=False),
        Column("p10", "DOUBLE", "10th percentile forecast", nullable=False),
        Column("p50", "DOUBLE", "Median forecast", nullable=False),
        Column("p90", "DOUBLE", "90th percentile forecast", nullable=False),
        Column("model_name", "STRING", "Registered MLflow model name", nullable=False),
        Column("model_version", "STRING", "Registered model version used", nullable=False),
        Column("model_run_id", "STRING", "MLflow run that trained the model"),
        Column("source_version", "BIGINT", "Delta version of observations that was read"),
        Column("job_run_id", "STRING", "job_runs.run_id of the scoring run"),
        Column("scored_at", "TIMESTAMP", "When the forecast was written"),
        Column("model_role", "STRING", "The version's alias when it was scored: champion, challenger or other"),
        Column("mase_scale", "DOUBLE", "MASE denominator: in-sample seasonal-naive MAE of the lookback at scoring "
               "time (NULL for a flat window)"),
    ),
    constraints={
        "quantiles_ordered": "p10 <= p50 AND p50 <= p90",
        "horizon_step_positive": "horizon_step >= 1",
        "target_after_origin": "target_ts > forecast_origin",
        "model_role_known": f"model_role IS NULL OR model_role IN ({ROLES_SQL})",
        "mase_scale_positive": "mase_scale IS NULL OR mase_scale > 0",
    },
    # Deletion vectors: a MERGE that replaces some series of an origin (`predict --changed-only`:
    # 1 % of them) marks their old rows deleted and writes only the new ones, instead of rewriting
    # every file of the origin it touches (measured: see bench/RESULTS.md, "Incremental rescoring").
    # `forget` purges them (REORG ... APPLY (PURGE)) before it vacuums.
    properties={"delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true"},
    # One partition per origin: a run's MERGE names its origins, so it reads and rewrites only
    # those files whatever the history, and runs for different origins never conflict (Delta's
    # conflict check sees partition values only; data skipping or clustering would not do).
    partitioned_by=("forecast_origin",),
)

FORECAST_ACCURACY = TableSpec(
    name="forecast_accuracy",
    comment=("Forecasts held to account: one row per forecast whose actual has arrived, "
             "(series_id, forecast_origin, target_ts, model_name, model_version); written by `lakecast evaluate`."),
    columns=(
        Column("series_id", "STRING", "Series identifier", nullable=False),
        Column("forecast_origin", "TIMESTAMP", "Origin of the forecast (UTC)", nullable=False),
        Column("target_ts", "TIMESTAMP", "Time forecast and observed (UTC)", nullable=False),
        Column("model_name", "STRING", "Registered MLflow model name", nullable=False),
        Column("model_version", "STRING", "Registered model version that scored it", nullable=False),
        Column("horizon_step", "INT", "Steps ahead of the origin, 1-based", nullable=False),
        Column("actual", "DOUBLE", "Observed value at target_ts", nullable=False),
        Column("p10", "DOUBLE", "10th percentile forecast", nullable=False),
        Column("p50", "DOUBLE", "Median forecast", nullable=False),
        Column("p90", "DOUBLE", "90th percentile forecast", nullable=False),
        Column("error", "DOUBLE", "actual - p50", nullable=False),
        Column("abs_error", "DOUBLE", "|actual - p50|", nullable=False),
        Column("scaled_abs_error", "DOUBLE", "abs_error / the forecast's mase_scale (its mean over rows is MASE); "
               "NULL when the forecast has no scale"),
        Column("snaive_forecast", "DOUBLE", "Seasonal naive's forecast of the target: the actual whole seasons "
               "before it, at or before the origin (NULL when not observed)"),
        Column("snaive_scaled_abs_error", "DOUBLE", "Seasonal naive's |actual - snaive_forecast| / mase_scale: "
               "the reference MASE on the same targets"),
        Column("pinball_p10", "DOUBLE", "Pinball (quantile) loss of p10", nullable=False),
        Column("pinball_p50", "DOUBLE", "Pinball loss of p50 (half the absolute error)", nullable=False),
        Column("pinball_p90", "DOUBLE", "Pinball loss of p90", nullable=False),
        Column("inside_p10_p90", "BOOLEAN", "p10 <= actual <= p90", nullable=False),
        Column("model_role", "STRING", "The version's role when it scored: champion, challenger or other"),
        Column("evaluated_at", "TIMESTAMP", "When the row was last (re)computed (UTC)", nullable=False),
        Column("job_run_id", "STRING", "job_runs.run_id of the evaluate run", nullable=False),
    ),
    constraints={
        "abs_error_non_negative": "abs_error >= 0",
        "pinball_non_negative": "pinball_p10 >= 0 AND pinball_p50 >= 0 AND pinball_p90 >= 0",
        "horizon_step_positive": "horizon_step >= 1",
        "model_role_known": f"model_role IS NULL OR model_role IN ({ROLES_SQL})",
    },
    # As forecasts: an evaluate MERGE names the origins its new actuals reach.
    partitioned_by=("forecast_origin",),
)

# The view of each run's latest row in JOB_RUN_EVENTS: what analysts and jobs read.
JOB_RUNS_VIEW = "job_runs"

JOB_RUN_EVENTS = TableSpec(
    name="job_run_events",
    comment=("Event log of lakecast job runs: a running row when a run starts, a succeeded or failed row "
             "when it ends (appends only). The job_runs view shows each run's latest row."),
    columns=(
        Column("run_id", "STRING", "Unique run id", nullable=False),
        Column("job", "STRING", "Job name, e.g. ingest, train, predict", nullable=False),
        Column("status", "STRING", "running | succeeded | failed", nullable=False),
        Column("parameters", "STRING", "Run parameters and resolved config as JSON"),
        Column("started_at", "TIMESTAMP", "Start time (UTC)", nullable=False),
        Column("ended_at", "TIMESTAMP", "End time (UTC)"),
        Column("row_counts", "MAP<STRING, BIGINT>", "Row counts by kind (read, inserted, quarantined...)"),
        Column("versions_read", "MAP<STRING, BIGINT>", "Delta versions read, by table"),
        Column("versions_written", "MAP<STRING, BIGINT>", "Delta versions written, by table"),
        Column("details", "STRING", "Other facts of the run as JSON (model version, precision...)"),
        Column("error", "STRING", "Error message of a failed run"),
    ),
    constraints={"status_known": "status IN ('running', 'succeeded', 'failed')"},
    # An append per state change costs a fraction of a keyed MERGE (which reads every file of the
    # table) and never conflicts with another job's; nothing ever rewrites a run's history.
    properties={"delta.appendOnly": "true"},
    renamed_from=JOB_RUNS_VIEW,  # releases before 2026-12-07 kept one row per run there, MERGEd at its end
)

FORGET_LOG = TableSpec(
    name="forget_log",
    comment=("Audit of `lakecast forget`: one row per forgotten series and governed table, keyed by a "
             "salted hash of the series id (never the id itself)."),
    columns=(
        Column("forget_run_id", "STRING", "job_runs.run_id of the forget run", nullable=False),
        Column("series_hash", "STRING", "HMAC-SHA256 (hex) of the series id keyed by the home's salt",
               nullable=False),
        Column("table_name", "STRING", "Governed table the rows were removed from", nullable=False),
        Column("rows_removed", "BIGINT", "Rows of the series deleted from the table (0 on a re-run)",
               nullable=False),
        Column("delete_version", "BIGINT", "Delta version of the DELETE; NULL when nothing was removed"),
        Column("purged_version", "BIGINT", "Delta version after REORG PURGE and VACUUM"),
        Column("retention_hours", "INT", "VACUUM retention used (governance.forget_retention_hours)",
               nullable=False),
        Column("reason", "STRING", "Why the series was forgotten (--reason)", nullable=False),
        Column("forgotten_at", "TIMESTAMP", "When the rows were removed (UTC)", nullable=False),
    ),
    constraints={"rows_removed_non_negative": "rows_removed >= 0"},
    properties={"delta.appendOnly": "true"},
)

ALL_TABLES: tuple[TableSpec, ...] = (OBSERVATIONS, QUARANTINE, FORECASTS, FORECAST_ACCURACY, JOB_RUN_EVENTS,
                                     FORGET_LOG)


def series_tables() -> tuple[TableSpec, ...]:
    """The governed tables that hold rows of a series (a `series_id` column): what forget deletes from."""
    return tuple(t for t in ALL_TABLES if "series_id" in t.column_names)


def create_table_sql(spec: TableSpec, cfg: LakecastConfig) -> str:
    props = {
        "data_owner": cfg.catalog.owner,
        "data_classification": cfg.catalog.classification,
        "pipeline": "lakecast",
        "pipeline_version": pipeline_version(),
        **spec.properties,
        # CHECK constraints as the properties Delta keeps them in: set at creation they are in force
        # from the first commit, without one ALTER (a commit and a scan, about 1 s) each.
        **{f"delta.constraints.{name.lower()}": expr for name, expr in spec.constraints.items()},
    }
    cols = ",\n  ".join(c.ddl() for c in spec.columns)
    tblprops = ", ".join(f"'{k}' = '{sql_quote(v)}'" for k, v in props.items())
    part = f"\nPARTITIONED BY ({', '.join(spec.partitioned_by)})" if spec.partitioned_by else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {cfg.table(spec.name)} (\n  {cols}\n) USING DELTA{part}\n"
        f"COMMENT '{sql_quote(spec.comment)}'\nTBLPROPERTIES ({tblprops})"
    )
