"""`lakecast predict`: score every series with ONE pinned model version into `forecasts`.

Data flow: resolve the alias once to a fixed version -> download it once on the driver ->
load and check it against the configured windows (refuse a mismatch before any work) ->
choose the precision -> pin the `observations` Delta version -> inference windows ->
distributed scoring (the model travels as broadcast bytes, no task calls the registry) ->
count -> one MERGE into `forecasts` -> summary and `job_runs`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.errors import AccountingError, LakecastError
from pipelines.sinks.job_runs import RunRecord, record_run

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from models.lakecast_forecaster.predictor import ModelMeta
    from models.precision import PrecisionChoice
    from pipelines.windows.history import AutoSettings

log = logging.getLogger(__name__)

JOB = "predict"
DEFAULT_ALIAS = "champion"


@dataclass(frozen=True)
class PinnedModel:
    """One model version fixed for the whole run, loaded and checked on the driver."""

    name: str
    version: str
    run_id: str | None
    alias: str | None
    role: str                   # champion | challenger | other, when the run resolved it
    local_dir: Path
    blob: bytes                 # the predictor folder, packed for the workers
    meta: ModelMeta
    device: str
    precision: PrecisionChoice

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"

    def details(self) -> dict[str, Any]:
        return {"model_name": self.name, "model_version": self.version, "model_run_id": self.run_id,
                "model_alias": self.alias, "model_role": self.role, "device": self.device,
                **self.precision.as_details()}


@dataclass
class PredictResult:
    """What a run did (also recorded in job_runs)."""

    run_id: str
    as_of: datetime
    model: PinnedModel
    source_version: int
    counts: dict[str, int] = field(default_factory=dict)
    forecasts_version: int | None = None

    def summary(self) -> dict[str, Any]:
        skipped = {k.removeprefix("skipped_"): v for k, v in self.counts.items() if k.startswith("skipped_")}
        return {
            "as of": f"{self.as_of:%Y-%m-%d %H:%M:%S}",
            "model": f"{self.model.key}" + (f" (alias {self.model.alias})" if self.model.alias else ""),
            "model run": self.model.run_id,
            "precision": f"{self.model.precision.precision} ({self.model.precision.reason})",
            "observations version": self.source_version,
            "series": self.counts.get("series", 0),
            "series scored": self.counts.get("scored_series", 0),
            "series skipped": ", ".join(f"{k}: {v}" for k, v in skipped.items()) or "none",
            "forecast rows": f"{self.counts.get('forecast_rows', 0)} ({self.counts.get('inserted', 0)} new, "
                             f"{self.counts.get('updated', 0)} replaced)",
            "forecasts version": self.forecasts_version,
            "job run": self.run_id,
        }


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pin_model(cfg: LakecastConfig, *, alias: str | None = None,
              version: str | int | None = None) -> PinnedModel:
    """Resolve ONE fixed version, download it once, check it fits the windows, pick the precision.

    Raises the registry's errors when the alias/version is missing and ModelMismatchError when
    the model expects other windows than configured; both before any data is read.
    """
    from models import registry
    from models.precision import available_precisions, calibrate, choose_precision
    from models.shipping import pack_model_dir, unpack_and_load
    from pipelines.scoring.plan import check_model_matches
    from pipelines.windows.features import feature_names

    if alias is None and version is None:
        alias = DEFAULT_ALIAS
    ref = registry.resolve(cfg, alias=alias, version=None if alias is not None else version)
    log.info("model %s version %s%s (run %s)", ref.name, ref.version,
             f" from alias {alias}" if alias else "", ref.run_id)
    local_dir = registry.download_version(cfg, ref)
    blob = pack_model_dir(local_dir)
    device = _device()
    predictor = unpack_and_load(blob, device=device)  # the exact bytes the workers will load
    check_model_matches(predictor.meta, for_model(cfg, predictor.meta)[0], feature_names(cfg))
    s = cfg.scoring
    choice = choose_precision(
        s.precision, device=device, available=available_precisions(device), tags=ref.tags,
        tolerance=s.precision_tolerance, min_speedup=s.calibration_min_speedup,
        calibrate_fn=lambda p: calibrate(predictor, p, n_windows=s.calibration_windows,
                                         batch_size=s.batch_size_for(p), threads=s.torch_threads,
                                         fp32_batch_size=s.batch_size_for("fp32")),
    )
    log.log(logging.INFO if choice.precision != "fp32" or s.precision == "fp32" else logging.WARNING,
            "scoring in %s: %s", choice.precision, choice.reason)
    return PinnedModel(ref.name, ref.version, ref.run_id, alias, registry.role_of(cfg, ref), local_dir, blob,
                       predictor.meta, device, choice)


def default_as_of(obs: DataFrame, cfg: LakecastConfig, now: datetime | None = None) -> datetime:
    """The latest complete period: one grid step before now, but not after the newest observation.

    (Data that ends in the past, e.g. a backfill or the demo, is scored at its end.)
    """
    from conf.utc import naive_utc
    from pipelines.spark_utc import max_utc
    from pipelines.windows.grid import GridSpec, shift

    complete = shift(GridSpec.from_config(cfg), naive_utc(now or datetime.now(UTC)), -1)
    newest = max_utc(obs, cfg.data.time_col)  # read as micros: collect() would give host-local time
    return complete if newest is None else min(complete, newest)


def for_model(cfg: LakecastConfig, meta: ModelMeta) -> tuple[LakecastConfig, AutoSettings]:
    """`cfg` with its `auto` step settings resolved for scoring `meta`'s model (its lookback and
    horizon, the frequency's max_staleness)."""
    from pipelines.windows.history import resolve_for_model

    return resolve_for_model(cfg, meta.lookback, meta.horizon)


def score_and_write(spark: SparkSession, cfg: LakecastConfig, model: PinnedModel, rec: RunRecord,
                    as_of: datetime | str | None = None) -> PredictResult:
    """Windows at `as_of` -> forecasts of `model` -> one MERGE; fills `rec` as it goes."""
    from pyspark import StorageLevel

    from conf.utc import from_utc_micros, to_utc_micros
    from models.shipping import ModelLoader
    from pipelines.scoring.plan import Lineage, plan_for
    from pipelines.scoring.spark import forecast_rows, score_observations, score_windows, scored_counts
    from pipelines.sinks.forecasts import merge_forecasts
    from pipelines.tables.ensure import delta_version
    from pipelines.windows.build import inference_windows

    cfg, auto = for_model(cfg, model.meta)  # auto lookback/horizon: the model's own
    if auto.values:
        log.info(auto.line)
        rec.details["auto_settings"] = auto.details()
    obs_table = cfg.table("observations")
    source_version = delta_version(spark, obs_table)
    rec.versions_read["observations"] = source_version
    obs = spark.sql(f"SELECT * FROM {obs_table} VERSION AS OF {source_version}")
    as_of_dt = default_as_of(obs, cfg) if as_of is None else from_utc_micros(to_utc_micros(as_of))
    rec.details["as_of"] = as_of_dt.isoformat()
    log.info("scoring %s version %d as of %s", obs_table, source_version, as_of_dt)

    plan = plan_for(model.meta, cfg, model_key=model.key, precision=model.precision.precision)
    shipped = spark.sparkContext.broadcast(model.blob)
    loader = ModelLoader(shipped, key=model.key, device=model.device, precision=plan.precision,
                         batch_size=plan.batch_size, threads=plan.torch_threads,
                         windows=(plan.lookback, plan.n_features, plan.horizon))
    if cfg.scoring.fused_windows:  # windows cut inside the scoring UDF: they never cross the JVM
        scored = score_observations(obs, cfg, as_of_dt, plan, loader)
    else:
        scored = score_windows(inference_windows(obs, cfg, as_of_dt), plan, loader)
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    seconds = rec.details.setdefault("seconds", {})
    try:
        t0 = time.perf_counter()
        counts = scored_counts(scored)  # runs the scoring once; the MERGE reads the cached result
        seconds["windows_and_scoring"] = round(time.perf_counter() - t0, 3)
        scored_series = counts["forecast_rows"] // plan.horizon
        counts = {"series": scored_series + sum(v for k, v in counts.items() if k.startswith("skipped_")),
                  "scored_series": scored_series, **counts}
        log.info("scored %d series (%d forecast rows); skipped %s", scored_series, counts["forecast_rows"],
                 {k: v for k, v in counts.items() if k.startswith("skipped_")} or "none")
        result = PredictResult(rec.run_id, as_of_dt, model, source_version, counts)
        if counts["forecast_rows"]:
            lineage = Lineage(model.name, model.version, model.run_id, source_version, rec.run_id,
                              rec.started_at.replace(tzinfo=UTC), model.role)
            t0 = time.perf_counter()
            merged = merge_forecasts(spark, cfg, forecast_rows(scored, lineage), run_id=rec.run_id)
            seconds["merge"] = round(time.perf_counter() - t0, 3)
            if merged.source_rows != counts["forecast_rows"]:  # Delta's count of the rows it merged
                raise AccountingError(
                    f"forecast rows do not add up: scored {counts['forecast_rows']} but the MERGE into "
                    f"{cfg.table('forecasts')} (version {merged.version}) read {merged.source_rows}")
            counts.update(inserted=merged.inserted, updated=merged.updated)
            result.forecasts_version = merged.version
            rec.versions_written["forecasts"] = merged.version
        else:
            log.warning("no series could be scored as of %s; forecasts left unchanged", as_of_dt)
    finally:
        scored.unpersist()
        shipped.unpersist()
    rec.row_counts.update(counts)
    return result


def run(spark: SparkSession, cfg: LakecastConfig, *, as_of: datetime | str | None = None,
        alias: str | None = None, version: str | int | None = None) -> PredictResult:
    """Score all series into `forecasts` with one pinned model version; recorded in job_runs."""
    if alias is not None and version is not None:
        raise LakecastError("give --alias or --version, not both")
    params = {"as_of": None if as_of is None else str(as_of), "alias": alias,
              "version": None if version is None else str(version)}
    with record_run(spark, cfg, JOB, params) as rec:
        t0 = time.perf_counter()
        model = pin_model(cfg, alias=alias, version=version)
        rec.details.update(model.details())
        rec.details["seconds"] = {"pin_model": round(time.perf_counter() - t0, 3)}
        return score_and_write(spark, cfg, model, rec, as_of)
