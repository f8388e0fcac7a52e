"""`lakecast predict`: score every series with ONE pinned model version into `forecasts`.

Data flow: resolve the alias once to a fixed version -> download it once on the driver ->
load and check it against the configured windows (refuse a mismatch before any work) ->
choose the precision -> pin the `observations` Delta version -> inference windows ->
distributed scoring (the model travels as broadcast bytes, no task calls the registry) ->
count -> one write into `forecasts` (a keyed MERGE; for `--changed-only` an overwrite of the
rescored series' rows) -> summary and `job_runs`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
SHOWN_SKIPPED = 3    # skipped series named per reason in the summary
RECORDED_SKIPPED = 20  # ... and in the log


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
    shadow: PinnedModel | None = None   # the challenger scored beside the model, if any
    skipped: dict[str, list[str]] = field(default_factory=dict)  # the first series skipped per reason

    def summary(self) -> dict[str, Any]:
        skipped = {k.removeprefix("skipped_"): v for k, v in self.counts.items() if k.startswith("skipped_")}
        named = {k: f" ({', '.join(ids[:SHOWN_SKIPPED])}{', ...' if skipped[k] > SHOWN_SKIPPED else ''})"
                 for k, ids in self.skipped.items() if ids and k in skipped}
        return {
            "as of": f"{self.as_of:%Y-%m-%d %H:%M:%S}",
            "model": f"{self.model.key}" + (f" (alias {self.model.alias})" if self.model.alias else ""),
            "model run": self.model.run_id,
            "precision": f"{self.model.precision.precision} ({self.model.precision.reason})",
            "observations version": self.source_version,
            **({"changed only": f"{self.counts['changed_series']} series changed since the origin was scored"}
               if "changed_series" in self.counts else {}),
            "series": self.counts.get("series", 0),
            "series scored": self.counts.get("scored_series", 0),
            "series skipped": ", ".join(f"{k}: {v}{named.get(k, '')}" for k, v in skipped.items()) or "none",
            "forecast rows": f"{self.counts.get('forecast_rows', 0)} ({self.counts.get('inserted', 0)} new, "
                             f"{self.counts.get('updated', 0)} replaced)",
            **({"shadow": f"{self.shadow.key} (alias challenger): "
                          f"{self.counts.get('shadow_scored_series', 0)} series scored"} if self.shadow else {}),
            "forecasts version": self.forecasts_version,
            "job run": self.run_id,
        }


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class FetchedModel:
    """A version resolved and downloaded from the registry, not yet checked against the windows."""

    ref: Any                    # models.registry.ModelRef
    alias: str | None
    local_dir: Path
    blob: bytes


def fetch_model(cfg: LakecastConfig, *, alias: str | None = None, version: str | int | None = None) -> FetchedModel:
    """Resolve ONE fixed version and download it once. Needs no Spark (MLflow, files), so a job
    may run it beside its first Spark work."""
    from models import registry
    from models.shipping import pack_model_dir

    if alias is None and version is None:
        alias = DEFAULT_ALIAS
    ref = registry.resolve(cfg, alias=alias, version=None if alias is not None else version)
    log.info("model %s version %s%s (run %s)", ref.name, ref.version,
             f" from alias {alias}" if alias else "", ref.run_id)
    local_dir = registry.download_version(cfg, ref)
    return FetchedModel(ref, alias, local_dir, pack_model_dir(local_dir))


def pin_model(cfg: LakecastConfig, *, alias: str | None = None, version: str | int | None = None,
              fetched: FetchedModel | None = None) -> PinnedModel:
    """Resolve ONE fixed version, download it once, check it fits the windows, pick the precision.

    `fetched`: the version already resolved and downloaded by `fetch_model`. Raises the
    registry's errors when the alias/version is missing and ModelMismatchError when the model
    expects other windows than configured; both before any data is read.
    """
    from models import registry
    from models.precision import available_precisions, calibrate, choose_precision
    from models.shipping import unpack_and_load
    from pipelines.scoring.plan import check_model_matches
    from pipelines.windows.features import feature_names

    f = fetched or fetch_model(cfg, alias=alias, version=version)
    ref = f.ref
    device = _device()
    predictor = unpack_and_load(f.blob, device=device)  # the exact bytes the workers will load
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
    return PinnedModel(ref.name, ref.version, ref.run_id, f.alias, registry.role_of(cfg, ref), f.local_dir,
                       f.blob, predictor.meta, device, choice)


def default_as_of(obs: DataFrame, cfg: LakecastConfig, now: datetime | None = None) -> datetime:
    """The latest complete period: one grid step before now, but not after the newest observation.

    (Data that ends in the past, e.g. a backfill or the demo, is scored at its end.)
    """
    from conf.utc import naive_utc
    from conf.window_contract import OBS_TIME
    from pipelines.spark_utc import max_utc
    from pipelines.windows.grid import GridSpec, shift

    grid, t = GridSpec.from_config(cfg), naive_utc(now or datetime.now(UTC))
    # A period-end stamp (ME: Jan 31) names a period that ends a day later: on its last day it is
    # still running, so the latest complete one is at or before a day ago.
    complete = t - timedelta(days=1) if grid.period_end else shift(grid, t, -1)
    newest = max_utc(obs, OBS_TIME)  # read as micros: collect() would give host-local time
    return complete if newest is None else min(complete, newest)


def for_model(cfg: LakecastConfig, meta: ModelMeta) -> tuple[LakecastConfig, AutoSettings]:
    """`cfg` with its `auto` step settings resolved for scoring `meta`'s model (its lookback and
    horizon, the frequency's max_staleness)."""
    from pipelines.windows.history import resolve_for_model

    return resolve_for_model(cfg, meta.network.lookback, meta.horizon, statistical_lookback=meta.lookback)


def score_and_write(spark: SparkSession, cfg: LakecastConfig, model: PinnedModel, rec: RunRecord,
                    as_of: datetime | str | None = None, shadow: PinnedModel | None = None,
                    changed_only: bool = False) -> PredictResult:
    """Windows at `as_of` -> forecasts of `model` (and of `shadow`, on the same observations) ->
    one write; fills `rec` as it goes.

    With a shadow model the observations are read once (cached) and scored by both; the two
    sets of forecasts differ in `model_version` (part of the key) and `model_role`, so the
    challenger's sit beside the champion's and one write carries both.

    `changed_only`: score only the series whose observations at or before the origin changed
    since the forecasts already there were scored (`pipelines.scoring.changed_series`); with no
    forecasts of the model(s) at that origin yet, every series (a warning says so).
    """
    from pyspark import StorageLevel

    from conf.utc import from_utc_micros, to_utc_micros
    from pipelines.scoring.plan import Lineage
    from pipelines.scoring.spark import forecast_rows, scored_counts
    from pipelines.sinks.forecasts import merge_forecasts, replace_series_forecasts
    from pipelines.tables.ensure import delta_version

    obs_table = cfg.table("observations")
    source_version = delta_version(spark, obs_table)
    rec.versions_read["observations"] = source_version
    obs = spark.sql(f"SELECT * FROM {obs_table} VERSION AS OF {source_version}")
    model_cfg, _ = for_model(cfg, model.meta)
    as_of_dt = default_as_of(obs, model_cfg) if as_of is None else from_utc_micros(to_utc_micros(as_of))
    rec.details["as_of"] = as_of_dt.isoformat()
    log.info("scoring %s version %d as of %s", obs_table, source_version, as_of_dt)
    changed = None
    if changed_only:
        obs, changed = _changed_since_scored(spark, cfg, obs, [m for m in (model, shadow) if m is not None],
                                             source_version, as_of_dt, rec)
    if shadow is not None:  # one read of the observations for both models
        obs = obs.persist(StorageLevel.MEMORY_AND_DISK)
    seconds = rec.details.setdefault("seconds", {})
    passes = [(model, "")] + ([(shadow, "shadow_")] if shadow is not None else [])
    scored_by: list[tuple[PinnedModel, DataFrame, Any]] = []
    all_counts: dict[str, int] = {k: v for k, v in rec.row_counts.items() if k == "changed_series"}
    result: PredictResult | None = None
    try:
        for m, prefix in passes:
            scored, shipped = _scored(spark, cfg, m, obs, as_of_dt, rec, prefix)
            scored_by.append((m, scored, shipped))
            t0 = time.perf_counter()
            counts = scored_counts(scored)  # runs the scoring once; the MERGE reads the cached result
            seconds[f"{prefix}windows_and_scoring"] = round(time.perf_counter() - t0, 3)
            scored_series = counts["forecast_rows"] // m.meta.horizon
            counts = {"series": scored_series + sum(v for k, v in counts.items() if k.startswith("skipped_")),
                      "scored_series": scored_series, **counts}
            log.info("%s%s scored %d series (%d forecast rows); skipped %s", prefix.replace("_", " "), m.key,
                     scored_series, counts["forecast_rows"],
                     {k: v for k, v in counts.items() if k.startswith("skipped_")} or "none")
            all_counts.update({f"{prefix}{k}": v for k, v in counts.items()})
            if result is None:
                result = PredictResult(rec.run_id, as_of_dt, m, source_version, all_counts, shadow=shadow)
                _name_skipped(scored, counts, result, rec)
        assert result is not None
        total = sum(v for k, v in all_counts.items() if k.endswith("forecast_rows"))
        if total:
            rows = None
            for m, scored, _ in scored_by:
                lineage = Lineage(m.name, m.version, m.run_id, source_version, rec.run_id,
                                  rec.started_at.replace(tzinfo=UTC), m.role)
                part = forecast_rows(scored, lineage)
                rows = part if rows is None else rows.unionByName(part)
            assert rows is not None
            t0 = time.perf_counter()
            # changed-only: overwrite just the rescored series' rows, not a MERGE over the origin
            write = replace_series_forecasts if changed is not None else merge_forecasts
            merged = write(spark, cfg, rows, run_id=rec.run_id)
            seconds["merge"] = round(time.perf_counter() - t0, 3)
            if merged.source_rows != total:  # Delta's count of the rows it merged
                raise AccountingError(
                    f"forecast rows do not add up: scored {total} but the write into "
                    f"{cfg.table('forecasts')} (version {merged.version}) wrote {merged.source_rows}")
            all_counts.update(inserted=merged.inserted, updated=merged.updated)
            result.forecasts_version = merged.version
            rec.versions_written["forecasts"] = merged.version
            if len(merged.versions) > 1:  # the insert-only MERGE lost a race: both commits are the run's
                rec.details["forecasts_versions"] = list(merged.versions)
        else:
            log.log(logging.INFO if changed is not None else logging.WARNING, "%s as of %s; forecasts left unchanged",
                    "no series changed since the forecasts were scored" if changed is not None
                    else "no series could be scored", as_of_dt)
    finally:
        if changed is not None:
            changed.unpersist()
        for _, scored, shipped in scored_by:
            scored.unpersist()
            shipped.unpersist()
        if shadow is not None:
            obs.unpersist()
    rec.row_counts.update(all_counts)
    return result


def _name_skipped(scored: DataFrame, counts: dict[str, int], result: PredictResult, rec: RunRecord) -> None:
    """Which series got no forecast, not only how many: the first of each reason, in the log and
    the summary. Not in `job_runs`: its event log is append-only, so `lakecast forget` could not
    remove an id from it."""
    from pipelines.scoring.spark import skipped_series

    reasons = [k.removeprefix("skipped_") for k, v in counts.items() if k.startswith("skipped_") and v]
    if not reasons:
        return
    result.skipped = skipped_series(scored, reasons, RECORDED_SKIPPED)
    more = {k: " ..." if counts[f"skipped_{k}"] > len(v) else "" for k, v in result.skipped.items()}
    log.info("series skipped: %s", "; ".join(f"{k}: {', '.join(v)}{more[k]}" for k, v in result.skipped.items()))


def _changed_since_scored(spark: SparkSession, cfg: LakecastConfig, obs: DataFrame, models: list[PinnedModel],
                          source_version: int, as_of: datetime, rec: RunRecord) -> tuple[DataFrame, DataFrame | None]:
    """For `--changed-only`: `obs` restricted to the series to rescore and those series (cached,
    counted); `obs` itself and None when the origin has no forecasts yet (score every series)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException

    from pipelines.scoring.changed_series import changed_series, only_series, scored_source_version

    t0 = time.perf_counter()
    since = scored_source_version(spark, cfg, as_of, [(m.name, m.version) for m in models])
    if since is None:
        log.warning("--changed-only: %s has no forecasts as of %s yet; scoring every series",
                    " and ".join(m.key for m in models), as_of)
        rec.details["changed_only"] = {"since_version": None, "scored": "all series (no earlier forecasts)"}
        return obs, None
    if since > source_version:  # observations was recreated: its versions started again
        log.warning("--changed-only: the forecasts as of %s were scored from %s version %d, newer than its "
                    "current version %d (was the table recreated?); scoring every series", as_of,
                    cfg.table("observations"), since, source_version)
        rec.details["changed_only"] = {"since_version": since, "scored": "all series (observations recreated)"}
        return obs, None
    from pyspark.sql.types import StringType, StructField, StructType

    changed = spark.createDataFrame([], StructType([StructField("series_id", StringType())]))
    try:
        if since < source_version:
            changed = changed_series(spark, cfg, since + 1, source_version, as_of)
        changed = changed.cache()
        n = changed.count()
    except (AnalysisException, Py4JJavaError) as e:  # Change Data Feed off for part of the range, or vacuumed
        changed.unpersist()
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        log.warning("--changed-only: cannot read the changes of %s versions %d..%d (%s); scoring every series",
                    cfg.table("observations"), since + 1, source_version, first[:300])
        rec.details["changed_only"] = {"since_version": since, "scored": "all series (changes not readable)"}
        return obs, None
    log.info("--changed-only: %d series changed in %s versions %d..%d (forecasts as of %s were scored "
             "from version %d)", n, cfg.table("observations"), since + 1, source_version, as_of, since)
    rec.details["changed_only"] = {"since_version": since, "changed_series": n}
    rec.details.setdefault("seconds", {})["changed_series"] = round(time.perf_counter() - t0, 3)
    rec.row_counts["changed_series"] = n
    return only_series(obs, changed), changed


def _scored(spark: SparkSession, cfg: LakecastConfig, model: PinnedModel, obs: DataFrame, as_of: datetime,
            rec: RunRecord, prefix: str) -> tuple[DataFrame, Any]:
    """`model`'s scored rows (cached, not yet computed) and the broadcast it travels in."""
    from pyspark import StorageLevel

    from models.shipping import ModelLoader
    from pipelines.scoring.plan import plan_for
    from pipelines.scoring.spark import score_observations, score_windows
    from pipelines.windows.build import inference_windows
    from pipelines.windows.recent import recent_observations

    cfg, auto = for_model(cfg, model.meta)  # auto lookback/horizon: the model's own
    if auto.values:
        log.info(auto.line)
        rec.details[f"{prefix}auto_settings"] = auto.details()
    plan = plan_for(model.meta, cfg, model_key=model.key, precision=model.precision.precision)
    shipped = spark.sparkContext.broadcast(model.blob)
    loader = ModelLoader(shipped, key=model.key, device=model.device, precision=plan.precision,
                         batch_size=plan.batch_size, threads=plan.torch_threads,
                         windows=(plan.lookback, plan.n_features, plan.horizon))
    if cfg.scoring.bounded_history:  # the rows a window can reach, not every series' whole history
        obs = recent_observations(obs, cfg, as_of)
    if cfg.scoring.fused_windows:  # windows cut inside the scoring UDF: they never cross the JVM
        scored = score_observations(obs, cfg, as_of, plan, loader)
    else:
        scored = score_windows(inference_windows(obs, cfg, as_of), plan, loader)
    return scored.persist(StorageLevel.MEMORY_AND_DISK), shipped


def run(spark: SparkSession, cfg: LakecastConfig, *, as_of: datetime | str | None = None,
        alias: str | None = None, version: str | int | None = None, shadow: bool = False,
        changed_only: bool = False) -> PredictResult:
    """Score all series into `forecasts` with one pinned model version; recorded in job_runs.

    `shadow`: also score the `challenger` on the same observations in the same run (one read,
    one MERGE); its forecasts carry `model_role = 'challenger'` and never replace the champion's.
    `changed_only`: rescore only the series whose inputs changed since the origin was scored.
    """
    from models.registry import CHALLENGER, CHAMPION

    if alias is not None and version is not None:
        raise LakecastError("give --alias or --version, not both")
    if shadow and (version is not None or alias not in (None, CHAMPION)):
        raise LakecastError("--shadow scores the champion and the challenger; it takes no --alias or --version")
    params = {"as_of": None if as_of is None else str(as_of), "alias": alias,
              "version": None if version is None else str(version), "shadow": shadow,
              "changed_only": changed_only}
    import pandas  # noqa: F401  - imported here first: the fetch thread and Spark both import it lazily

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakecast-fetch")
    try:
        # Resolving and downloading the model (and importing MLflow for it) needs no Spark: it runs
        # beside the job_runs write, which in a fresh process is the JVM's first Delta commit.
        fetching = pool.submit(_timed, fetch_model, cfg, alias=alias, version=version)
        with record_run(spark, cfg, JOB, params) as rec:
            fetched, fetch_s = fetching.result()
            t0 = time.perf_counter()
            model = pin_model(cfg, fetched=fetched)
            rec.details.update(model.details())
            rec.details["seconds"] = {"fetch_model": fetch_s, "pin_model": round(time.perf_counter() - t0, 3)}
            challenger = None
            if shadow:
                challenger = _shadow_model(cfg, model, CHALLENGER)
                if challenger is not None:
                    rec.details["shadow"] = challenger.details()
            return score_and_write(spark, cfg, model, rec, as_of, shadow=challenger, changed_only=changed_only)
    finally:  # on failure, do not wait for a download still in flight
        pool.shutdown(wait=False, cancel_futures=True)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """`fn(*args, **kwargs)` and its wall seconds."""
    t0 = time.perf_counter()
    return fn(*args, **kwargs), round(time.perf_counter() - t0, 3)


def _shadow_model(cfg: LakecastConfig, champion: PinnedModel, alias: str) -> PinnedModel | None:
    """The challenger pinned like the champion; None (with a warning) when there is none to
    shadow: no challenger alias, or it points at the champion."""
    from models import registry

    current = registry.aliases(cfg).get(alias)
    if current is None or current == champion.version:
        log.warning("--shadow: %s; scoring the champion only",
                    f"no version has the alias {alias!r}" if current is None
                    else f"the {alias} is the champion itself (version {current})")
        return None
    return pin_model(cfg, alias=alias)
