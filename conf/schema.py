"""The typed lakecast configuration: one frozen object, validated before Spark starts.

Every section rejects unknown keys, so a misspelt key fails loudly instead of being
silently ignored. Field names are the public interface (`--set section.key=value`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator

from conf.secrets import Secret


def _steps_or_auto(minimum: int) -> PlainValidator:
    """A count of grid steps, or `auto` (resolved from data.freq and the history: conf/auto_steps.py)."""

    def check(v: object) -> int | str:
        if v == "auto":
            return "auto"
        if isinstance(v, int) and not isinstance(v, bool):
            n = v
        elif isinstance(v, str) and v.strip().lstrip("-").isdigit():
            n = int(v)
        else:
            raise ValueError("Input should be a valid integer (a number of steps) or 'auto'")
        if n < minimum:
            raise ValueError(f"Input should be greater than or equal to {minimum} (steps) or 'auto'")
        return n

    return PlainValidator(check)


# Settings counted in steps of data.freq; `auto` (the default) picks a value per frequency.
StepCount = Annotated[int | Literal["auto"], _steps_or_auto(1)]
StepCountOrZero = Annotated[int | Literal["auto"], _steps_or_auto(0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Section):
    """Where Spark runs and how it is tuned; the only place Spark settings come from."""

    master: str = "local[*]"
    app_name: str = "lakecast"
    driver_memory: str = "2g"
    shuffle_partitions: int = Field(default=4, ge=1)
    delta_snapshot_partitions: int = Field(default=2, ge=1)
    # Tasks of a distributed file listing (VACUUM, large folders); Spark's 10000 made a VACUUM of
    # a tiny table take 45 s on 2 cores.
    file_listing_parallelism: int = Field(default=8, ge=1)
    ui_enabled: bool = False
    log_level: str = "WARN"
    extra_packages: list[str] = Field(default_factory=list)
    ivy_dir: Path | None = None
    # The driver JVM maps its classes from an archive built once in the background
    # (pipelines/session/class_archive.py); null dir: <ivy_dir>/class-archive.
    class_archive: bool = True
    class_archive_dir: Path | None = None
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, v: object) -> object:
        if isinstance(v, dict):
            return {str(k): str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}
        return v


class CatalogConfig(_Section):
    """The persistent Hive metastore behind the tables."""

    database: str = "lakecast"
    metastore: Literal["derby", "postgres"] = "derby"
    jdbc_url: str | None = None
    jdbc_user: str | None = None
    jdbc_password: Secret | None = None  # {env: VAR}, {file: PATH} or inline (conf/secrets.py)
    jdbc_driver_package: str = "org.postgresql:postgresql:42.7.4"
    owner: str = "data-platform"
    classification: str = "internal"

    @field_validator("database")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"{v!r} is not a valid database name (letters, digits, underscore)")
        return v

    @model_validator(mode="after")
    def _postgres_needs_url(self) -> CatalogConfig:
        if self.metastore == "postgres" and not self.jdbc_url:
            raise ValueError("catalog.metastore is 'postgres' but catalog.jdbc_url is not set")
        return self


class DataConfig(_Section):
    """How raw time series look: column names, frequency and timezone.

    `series_col`/`time_col`/`value_col` name the columns of the RAW input files: `lakecast ingest`
    reads them (its defaults; `--series-col/--time-col/--value-col` override them) and writes
    `observations` with its fixed `series_id`, `ts`, `value` (`conf.window_contract.OBSERVATION_COLUMNS`),
    which is what train, predict, evaluate and backfill read.
    """

    series_col: str = "series_id"  # raw files' series id column (ingest only)
    time_col: str = "ts"  # raw files' timestamp column (ingest only)
    value_col: str = "value"  # raw files' value column (ingest only)
    freq: str = "h"
    timezone: str = "UTC"
    max_future: str = "1D"

    @field_validator("freq")
    @classmethod
    def _freq(cls, v: str) -> str:
        from conf.freq import SUPPORTED, canonical

        try:
            return canonical(v)  # pandas' older spellings (M, Q, A, H, T ...) are stored as today's
        except ValueError:
            raise ValueError(f"{v!r} is not a supported pandas offset alias; use one of {SUPPORTED}") from None

    @field_validator("max_future")
    @classmethod
    def _max_future(cls, v: str) -> str:
        from conf.freq import parse_freq

        try:
            f = parse_freq(v)
            f.step  # noqa: B018 - raises for calendar steps, which have no fixed length
        except ValueError as e:
            raise ValueError(f"{v!r} is not a fixed duration; use e.g. 1D, 12h, 2W, 30min") from e
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"{v!r} is not a known IANA timezone (e.g. UTC, Europe/Berlin)") from e
        return v


class IngestConfig(_Section):
    """Ingest behaviour: CSV parsing and batch sizes."""

    csv_header: bool = True
    csv_delimiter: str = ","
    # Spark datetime pattern for sources whose timestamps are not ISO 8601 (e.g. dd/MM/yyyy HH:mm).
    timestamp_format: str | None = None
    # Rows per part file written by the sample generator (`lakecast generate`).
    sample_rows_per_file: int = Field(default=1_000_000, ge=1000)


class WindowsConfig(_Section):
    """Sequence windows fed to the model."""

    # auto: per data.freq (hourly: 168, 24, 24), lookback fitted to the history (conf/auto_steps.py)
    lookback: StepCount = "auto"
    horizon: StepCount = "auto"
    stride: StepCount = "auto"
    fill: Literal["ffill", "linear", "none"] = "ffill"
    max_gap: int = Field(default=3, ge=0)
    max_missing_frac: float = Field(default=0.1, ge=0.0, le=1.0)
    # Fewest steps of history (first observation to the origin) a window needs; a series with
    # fewer than `lookback` but at least this many is padded on the left (marked missing) instead
    # of skipped as too_short. auto: one horizon (at most the lookback); set it to the lookback to
    # skip short series as before.
    min_history: StepCount = "auto"
    calendar_features: bool = True
    # How windows are cut: "numpy" (applyInArrow, numpy per series) or "sql" (Spark SQL
    # higher-order functions on grouped arrays, no Python workers). See bench/RESULTS.md.
    strategy: Literal["numpy", "sql"] = "numpy"


class ModelConfig(_Section):
    """The LSTM forecaster and its registry name."""

    name: str = "lakecast_lstm"
    hidden_size: int = Field(default=64, ge=1)
    num_layers: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    # Linear map from the lookback values to the median (LSTNet-style highway); learns
    # level and seasonal repetition quickly, the LSTM learns the rest.
    linear_skip: bool = True
    # Rescale the p10/p90 distances per horizon step so the band covers its nominal share of the
    # validation windows (split conformal); stored in the model and applied at every prediction.
    calibrate_intervals: bool = True
    # Which windows size the band: `validation` (their conformal factors, kept within 1/2x-2x of the
    # training windows'), or `training` (a sample of the training windows, which span every year of
    # the history; validation's where there are under 50 of them). auto: training for steps of a week
    # or longer, whose validation is one period that every series shares (conf/auto_steps.py:
    # calibrate_from).
    calibrate_from: Literal["auto", "validation", "training"] = "auto"
    # Blend the median with statistical forecasts of each window's own lookback (Theta, seasonal
    # naive with and without drift, the airline model and, for monthly to yearly steps, the damped
    # trend, and Theta and the damped trend with a multiplicative season; for monthly steps,
    # Holt-Winters; for steps shorter than a day, naive: the last value), the shares per horizon step
    # fitted on the validation windows (before the calibration).
    statistical_blend: bool = True
    # How much of the statistical members' share each window splits by the members' backtests in its
    # own lookback (0: the split fitted across all series alone; 1: each window's own alone; above 0,
    # a window where some member backtests exactly takes its own split whole). auto: 0.75 for steps
    # of a week or longer, 0 for daily and finer (conf/auto_steps.py: blend_local).
    statistical_blend_local: float | Literal["auto"] = "auto"
    # The exponent on inverse validation MSE of every blend share (1: Bates & Granger's weights; 2
    # leans harder on the member that backtests best). auto: 2 for monthly and quarterly steps, 1
    # otherwise (conf/auto_steps.py: blend_power).
    statistical_blend_power: float | Literal["auto"] = "auto"
    # Steps of each window the statistical members read, at least windows.lookback (the network's):
    # the steps before the network's lookback travel in the window for the members alone. auto: ten
    # years of monthly steps, the frequency's full lookback for quarterly and yearly ones (80
    # quarters, 12 years; at least two horizons) however far the `auto` windows.lookback shrinks,
    # two years of weekly steps (a seasonal Theta needs two seasons), sixteen weeks of daily ones
    # and four weeks of hourly (and coarser sub-daily) ones, with a statistical blend
    # (conf/auto_steps.py: resolve_steps); windows.lookback elsewhere.
    statistical_lookback: StepCount = "auto"
    # Also fit the members whose forecast depends on how far back they read (Theta, seasonal drift,
    # the airline model, the damped trend) on a window's last steps alone, beside their fit on the
    # whole window, each window's backtests choosing between them (model.statistical_blend_local):
    # the frequency's lookback where the members read further (monthly: six of ten years), else the
    # network's lookback (yearly: six or seven of twelve years); only where the window is wider.
    # auto: for yearly and monthly steps (conf/auto_steps.py: blend_recent, recent_steps).
    statistical_blend_recent: bool | Literal["auto"] = "auto"
    # Also blend Theta and the damped trend with a multiplicative season (one that grows with the
    # level), taken out of windows whose values are all positive (an additive one elsewhere), and, for
    # monthly steps, Holt-Winters (on the logs of such windows; without this, not at all). auto:
    # for monthly and quarterly steps; never for yearly ones, which have no season
    # (conf/auto_steps.py: blend_multiplicative, blend_skips).
    statistical_season_multiplicative: bool | Literal["auto"] = "auto"
    # Forecasts (all three quantiles) floored at zero. auto: when no value `train` read was
    # negative (counts, sales, demand), decided once per model and kept in it; false for data that
    # may go below zero however its history looks.
    nonnegative: bool | Literal["auto"] = "auto"

    @field_validator("statistical_blend_local")
    @classmethod
    def _local(cls, v: float | str) -> float | str:
        if v != "auto" and (not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0):
            raise ValueError("Input should be 'auto' or a share between 0 and 1")
        return v

    @field_validator("statistical_blend_power")
    @classmethod
    def _power(cls, v: float | str) -> float | str:
        if v != "auto" and (not isinstance(v, (int, float)) or not 0.0 < v <= 8.0):
            raise ValueError("Input should be 'auto' or a power above 0 and at most 8")
        return v

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not (0.0 < v[0] < v[1] < v[2] < 1.0):
            raise ValueError("quantiles must be three increasing levels in (0, 1) (low, median, high), "
                             "e.g. [0.1, 0.5, 0.9]; the network's head cannot cross them")
        return v


class TrainConfig(_Section):
    """Training loop and time-based split."""

    max_epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    patience: int = Field(default=3, ge=1)
    # Windows one epoch trains on, drawn afresh each epoch where there are more; 0: all of them.
    # Training time is linear in it (about 0.5 ms per window on two cores): it bounds a run on
    # thousands of long series, and every recorded benchmark set (about 54,000 windows at most) is below it.
    max_windows_per_epoch: int = Field(default=65536, ge=0)
    seed: int = 42
    val_periods: StepCount = "auto"   # auto: a week for sub-daily/daily data, at least one horizon
    # 0: no test split (no test metrics; the refit then trains through the last step). auto: as
    # val_periods, or 0 where the typical series holds fewer than four horizons of history.
    test_periods: StepCountOrZero = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    plot_series: int = Field(default=4, ge=0)
    # Training windows up to this size are loaded into memory (full shuffle each epoch);
    # larger sets are streamed as Arrow record batches from their Parquet snapshot.
    max_in_memory_mb: int = Field(default=2048, ge=1)
    # torch CPU threads for training on the driver; 0 keeps torch's default (all cores). auto:
    # the usable cores, at most 2 (models/train.py: training_threads). On the idle 2-core machine
    # 2 threads trained 1.6x (monthly shape) to 2.5x (yearly) the windows/s of 1; but a core
    # busy with other work makes 2 spinning threads 2.4x slower than 1: set 1 on a shared host.
    torch_threads: int | Literal["auto"] = "auto"
    # After early stopping, train a fresh network for the best epoch count on the training and
    # validation periods together (the most recent data); auto: for weekly and longer steps, where
    # validation holds one horizon of months or years (conf/auto_steps.py: refit_wanted).
    refit: bool | Literal["auto"] = "auto"

    @field_validator("torch_threads")
    @classmethod
    def _threads(cls, v: int | str) -> int | str:
        if v != "auto" and (not isinstance(v, int) or v < 0):
            raise ValueError("Input should be 'auto' or a number of threads >= 0 (0: torch's default, all cores)")
        return v


class PromoteConfig(_Section):
    """Rules for moving the `champion` alias."""

    mase_margin: float = Field(default=0.02, ge=0.0)
    backtest_periods: StepCount = "auto"   # auto: as train.val_periods
    # `promote --by live`: refuse when champion and challenger share fewer evaluated targets.
    min_live_targets: int = Field(default=200, ge=1)


class MlflowConfig(_Section):
    """Tracking and registry; empty URIs mean the embedded SQLite store under the home."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "lakecast"
    # Credentials for a tracking server with basic auth and for an S3 artifact store the client
    # writes to directly; exported to MLflow's environment variables by models.registry.
    tracking_username: str | None = None
    tracking_password: Secret | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: Secret | None = None
    s3_secret_access_key: Secret | None = None


class BatchSizes(_Section):
    """Windows per forward pass for each precision (`scoring.batch_size: auto`)."""

    fp32: int = Field(default=64, ge=1)
    bf16: int = Field(default=256, ge=1)
    fp16: int = Field(default=1024, ge=1)


class ScoringConfig(_Section):
    """Batch inference settings."""

    max_staleness: StepCountOrZero = "auto"   # auto: two days for sub-daily data (48 hourly steps)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    precision_tolerance: float = Field(default=0.005, gt=0)
    # Windows per forward pass. `auto` takes `batch_sizes[precision]`: on the 2-core
    # development CPU fp32 was fastest at 64 and bf16 at 256 (bench/RESULTS.md); an int
    # sets one size for every precision.
    batch_size: int | Literal["auto"] = "auto"
    batch_sizes: BatchSizes = BatchSizes()
    arrow_batch_rows: int = Field(default=10000, ge=1)
    torch_threads: int = Field(default=1, ge=1)
    # `precision: auto` times fp32 against reduced precision on this many random windows at
    # job start and takes reduced precision only when it is at least this much faster.
    calibration_windows: int = Field(default=512, ge=16)
    calibration_min_speedup: float = Field(default=1.1, gt=0)
    # Cut inference windows inside the scoring UDF (numpy window code, one Python stage) so
    # windows never cross into the JVM and back; false: inference_windows() then score them.
    fused_windows: bool = True
    # Read only the observations an inference window can reach (lookback, gap fill and
    # staleness back from the origin, plus each series' first valid row): the same forecasts,
    # a shuffle that does not grow with history; false: every series' whole history.
    bounded_history: bool = True

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be a positive number of windows or 'auto'")
        return v

    def batch_size_for(self, precision: str) -> int:
        """Windows per forward pass when scoring in `precision` (fp32, bf16, fp16)."""
        if isinstance(self.batch_size, int):
            return self.batch_size
        if precision not in BatchSizes.model_fields:
            raise ValueError(f"no scoring batch size for precision {precision!r}; "
                             f"one of {', '.join(BatchSizes.model_fields)}")
        return int(getattr(self.batch_sizes, precision))


class SqlServerConfig(_Section):
    """Spark's Thrift JDBC/ODBC server (`lakecast sql-server`) for beeline and BI tools."""

    host: str = "127.0.0.1"  # 0.0.0.0 to accept connections from other machines
    port: int = Field(default=10000, ge=1, le=65535)
    # A non-loopback host needs authentication, or the explicit opt-out below.
    authentication: Literal["none", "ldap"] = "none"
    ldap_url: str | None = None  # e.g. ldap://ldap.example.com:389
    ldap_base_dn: str | None = None  # users bind as uid=USER,<base dn>
    ldap_user_dn_pattern: str | None = None  # instead: e.g. cn=%s,ou=users,dc=example,dc=com
    ldap_domain: str | None = None  # Active Directory: users bind as USER@<domain>
    allow_unauthenticated_remote: bool = False

    @model_validator(mode="after")
    def _ldap_needs_url(self) -> SqlServerConfig:
        if self.authentication == "ldap" and not self.ldap_url:
            raise ValueError("sql_server.authentication is 'ldap' but sql_server.ldap_url is not set")
        return self


class DriverConfig(_Section):
    """A warm driver (`lakecast driver start`): one long-lived Spark session per home that runs
    commands for short-lived CLI processes, so a scheduled run skips the JVM start and warm-up."""

    # auto: a command runs in the home's driver when one is serving it (with the same spark and
    # catalog settings), else in its own process; never: always in its own process.
    use: Literal["auto", "never"] = "auto"
    # Stop a driver that has run nothing for this many minutes; 0: serve until stopped.
    idle_stop_minutes: int = Field(default=0, ge=0)
    # How long `lakecast driver start` waits for a new driver to answer.
    start_timeout_s: int = Field(default=300, ge=1)


class GovernanceConfig(_Section):
    """Data-subject requests (`lakecast forget`)."""

    # VACUUM retention of `lakecast forget`. 0: when the command ends, no data or change-data
    # file still holds the series (and time travel to versions before the purge is gone);
    # n > 0 keeps the last n hours readable and leaves the files to a forget re-run after n hours.
    forget_retention_hours: int = Field(default=0, ge=0)


class MonitorConfig(_Section):
    """Degradation alerts of `lakecast evaluate`, on the champion's live accuracy."""

    # Trailing forecast origins the live metrics are taken over.
    window: int = Field(default=7, ge=1)
    # Alert when live MASE exceeds the version's backtest MASE by more than this fraction.
    mase_degradation: float = Field(default=0.25, ge=0)
    # Alert when p10-p90 coverage is further than this from the nominal 0.80.
    coverage_tolerance: float = Field(default=0.10, gt=0, lt=0.8)
    # Fewer evaluated targets than this in the window: no alert (too little evidence).
    min_targets: int = Field(default=30, ge=1)


class LakecastConfig(_Section):
    """The whole configuration; build it with `conf.load_config`."""

    home: Path = Path(".lakecast")
    spark: SparkConfig = SparkConfig()
    catalog: CatalogConfig = CatalogConfig()
    data: DataConfig = DataConfig()
    ingest: IngestConfig = IngestConfig()
    windows: WindowsConfig = WindowsConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    promote: PromoteConfig = PromoteConfig()
    mlflow: MlflowConfig = MlflowConfig()
    scoring: ScoringConfig = ScoringConfig()
    sql_server: SqlServerConfig = SqlServerConfig()
    driver: DriverConfig = DriverConfig()
    governance: GovernanceConfig = GovernanceConfig()
    monitor: MonitorConfig = MonitorConfig()

    def table(self, name: str) -> str:
        """Fully qualified name of a lakecast table, e.g. `lakecast.forecasts`."""
        return f"{self.catalog.database}.{name}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow.registry_uri or self.tracking_uri

    @property
    def ivy_dir(self) -> Path:
        """Where Spark's Ivy caches the Delta JARs; defaults under the home."""
        return (self.spark.ivy_dir or self.home / "ivy").resolve()

    @property
    def artifact_root(self) -> Path:
        return (self.home / "mlartifacts").resolve()
