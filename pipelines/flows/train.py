"""`lakecast train [--as-of T]`: train the LSTM on `observations`, backtest, log to MLflow, register.

Data flow: observations (pinned Delta version) -> train/validation/test windows (Spark) ->
Parquet snapshot -> numpy via Arrow -> torch training -> backtest on the test windows ->
MLflow run (params, config, losses, metrics, figure, model) -> new registered version
(`challenger`; also `champion` when there is none) -> job_runs.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.auto_steps import (
    blend_local,
    blend_power,
    blend_skips,
    calibrate_from,
    forecast_floor,
    recent_steps,
    refit_wanted,
    steps,
)
from conf.errors import LakecastError
from conf.freq import parse_freq
from conf.secrets import redact, redact_text
from models.arrays import WindowArrays, parquet_source, to_arrays
from models.evaluate import MODEL, SEASONAL_NAIVE, Backtest
from models.intervals import CalibrationReport, calibrate
from models.lakecast_forecaster.predictor import ModelMeta, Predictor
from models.registry import ModelRef
from models.statistical_blend import BlendReport
from models.train import RefitResult, TrainResult, WindowSource
from pipelines.sinks.job_runs import RunRecord, record_run
from pipelines.windows.history import AutoSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pipelines.windows.build import SplitCutoffs
    from pipelines.windows.transfer import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """What `lakecast train` produced."""

    model: ModelRef
    became_champion: bool
    backtest: Backtest
    result: TrainResult
    mlflow_run_id: str
    job_run_id: str
    observations_version: int
    cutoffs: SplitCutoffs
    auto: AutoSettings | None = None  # what `auto` step settings became
    refit: RefitResult | None = None  # the shipped network when `train.refit` retrained it
    floor: float | None = None  # the lowest forecast the model writes (model.nonnegative)


def read_observations(spark: SparkSession, cfg: LakecastConfig) -> tuple[DataFrame, int]:
    """The observations table pinned at its current Delta version (the lineage number)."""
    from pipelines.tables.ensure import delta_version, table_exists

    table = cfg.table("observations")
    if not table_exists(spark, cfg, "observations"):
        raise LakecastError(f"table {table} does not exist; run `lakecast init` and `lakecast ingest` first")
    version = delta_version(spark, table)
    return spark.sql(f"SELECT * FROM {table} VERSION AS OF {version}"), version


def _windows(cfg: LakecastConfig, obs: DataFrame, as_of: str | None, rec: RunRecord, root: Path,
             refit: bool = False) -> tuple[SplitCutoffs, dict[str, Snapshot], list[str]]:
    """Build the three splits and write them as Parquet snapshots; counts go into `rec`. With
    `refit`, a fourth: the training windows whose targets run through the validation period.
    With `train.test_periods` 0 there is no test split (no "test" snapshot)."""
    from pipelines.windows.build import feature_names, split_cutoffs, split_windows, training_windows
    from pipelines.windows.transfer import snapshot

    names = list(feature_names(cfg))
    cut = split_cutoffs(obs, cfg, end=as_of)
    parts = split_windows(obs, cfg, cut)
    shape = dict(lookback=steps(cfg).width, n_features=len(names), horizon=steps(cfg).horizon)
    snaps = {}
    splits = [("train", parts.train), ("val", parts.val)]
    if steps(cfg).test_periods:
        splits.append(("test", parts.test))
    if refit:
        splits.append(("refit", training_windows(obs, cfg, cutoff=cut.val_end)))
    for split, df in splits:
        t0 = time.perf_counter()
        snaps[split] = snapshot(df, root / split, **shape)
        for outcome, n in snaps[split].counts.items():
            rec.row_counts[f"{split}_windows_{outcome}"] = n
        log.info("%s windows: %d usable, skipped %s (%.1fs)", split, snaps[split].counts.get("usable", 0),
                 {k: v for k, v in snaps[split].counts.items() if k != "usable"} or "none",
                 time.perf_counter() - t0)
    return cut, snaps, names


def _log_mlflow(cfg: LakecastConfig, *, result: TrainResult, bt: Backtest, meta: ModelMeta,
                test: WindowArrays | None, test_pred: Any, example: Any, example_offset: Any, obs_version: int,
                cutoffs: SplitCutoffs, rec: RunRecord,
                names: list[str], as_of: str | None, auto: AutoSettings,
                calibration: CalibrationReport | None = None,
                blend: BlendReport | None = None, final: RefitResult | None = None) -> tuple[str, str]:
    """One MLflow run with everything people look for; returns (run id, logged model uri)."""
    import mlflow
    from mlflow.entities import Metric

    from models.plots import forecast_figure
    from models.pyfunc import log_pyfunc

    params = {**{f"model.{k}": v for k, v in cfg.model.model_dump().items()},
              **{f"train.{k}": v for k, v in cfg.train.model_dump().items()},
              **{f"windows.{k}": v for k, v in cfg.windows.model_dump().items()},
              "data.freq": cfg.data.freq, "features": ",".join(names), "n_features": len(names),
              "as_of": as_of or "latest", "train_end": cutoffs.train_end, "val_end": cutoffs.val_end,
              "test_end": cutoffs.end, "observations_delta_version": obs_version,
              "device": result.device, "n_train_windows": result.n_train, "n_val_windows": result.n_val,
              "n_windows_per_epoch": result.windows_per_epoch,
              "n_test_windows": bt.n_windows, **steps(cfg).by_key(),  # the step settings as trained
              "auto_settings": auto.line or "none", **(calibration.params() if calibration else {}),
              **(blend.params() if blend else {}),
              "refit": final is not None, "forecast_floor": "none" if meta.floor is None else meta.floor,
              **({"refit_epochs": final.epochs, "n_refit_windows": final.n_train} if final else {})}
    with mlflow.start_run(run_name=f"train-{rec.run_id}") as run:
        mlflow.set_tags({"lakecast.job_run_id": rec.run_id, "lakecast.table": cfg.table("observations"),
                         "lakecast.observations_delta_version": obs_version})
        mlflow.log_params({k: redact_text(str(v))[:6000] for k, v in params.items()})
        mlflow.log_dict(redact(cfg.model_dump(mode="json")), "config.json")  # no secret in MLflow
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, h.epoch) for h in result.history
                   for k, v in (("train_loss", h.train_loss), ("val_loss", h.val_loss),
                                ("epoch_seconds", h.seconds))]
        metrics += [Metric(f"test_{f}_{m}_by_step", float(v), now, step + 1)
                    for f, ms in bt.per_step.items() for m, arr in ms.items()
                    for step, v in enumerate(arr) if v == v]
        metrics += [Metric(k, v, now, 0) for k, v in bt.flat_metrics().items()]
        metrics += [Metric("best_val_loss", result.best_val_loss, now, 0),
                    Metric("best_epoch", float(result.best_epoch), now, 0),
                    Metric("train_seconds", result.seconds, now, 0)]
        if final is not None:  # the shipped network: refitted on training + validation periods
            metrics += [Metric("refit_seconds", final.seconds, now, 0),
                        Metric("refit_train_loss", final.train_loss, now, 0)]
        if blend is not None:  # validation MAE of the network, each statistical member and the blend
            metrics += [Metric(k, v, now, 0) for k, v in blend.metrics().items()]
        if calibration is not None:  # the interval factors per horizon step, and the validation band
            metrics += [Metric(k, v, now, 0) for k, v in calibration.metrics().items()]
            metrics += [Metric(f"interval_{side}_factor_by_step", v, now, step + 1)
                        for side, vs in (("low", calibration.calibration.low), ("high", calibration.calibration.high))
                        for step, v in enumerate(vs)]
        client = mlflow.MlflowClient()
        for i in range(0, len(metrics), 900):  # log_batch takes at most 1000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[i:i + 900])
        if test is not None:  # no test split (train.test_periods 0): no backtest to keep or draw
            cols, rows = bt.table()
            per_step = {f: {m: a.tolist() for m, a in ms.items()} for f, ms in bt.per_step.items()}
            mlflow.log_dict({"overall": bt.overall, "columns": cols, "rows": rows, "per_step": per_step,
                             "n_windows": bt.n_windows, "season": bt.season}, "backtest.json")
            fig = forecast_figure(test, test_pred, cfg.train.plot_series, floor=meta.floor)
            mlflow.log_figure(fig, "forecasts_vs_actuals.png")
        info = log_pyfunc(final.model if final is not None else result.model, meta, example,
                          offset=example_offset if meta.blend is not None and meta.blend.needs_offset else None)
        return run.info.run_id, info.model_uri


def _in_memory(snap: Snapshot, cfg: LakecastConfig, n_features: int, keys: bool = False) -> WindowArrays:
    """A snapshot's usable windows as arrays in memory."""
    return to_arrays(snap.usable(), lookback=steps(cfg).width, n_features=n_features,
                     horizon=steps(cfg).horizon, keys=keys)


def _training_source(cfg: LakecastConfig, snap: Snapshot, n_features: int, what: str = "training") -> WindowSource:
    """Training data in memory when it fits `train.max_in_memory_mb`, else a stream of batches."""
    shape: dict[str, Any] = dict(lookback=steps(cfg).width, n_features=n_features, horizon=steps(cfg).horizon)
    if snap.usable_mb <= cfg.train.max_in_memory_mb:
        log.info("%s windows: %.0f MB, loaded into memory", what, snap.usable_mb)
        return _in_memory(snap, cfg, n_features)
    log.info("%s windows: %.0f MB > train.max_in_memory_mb=%d, streamed as Arrow batches",
             what, snap.usable_mb, cfg.train.max_in_memory_mb)
    return parquet_source(str(snap.path), **shape, batch_rows=max(cfg.train.batch_size * 64, 8192),
                          seed=cfg.train.seed)


def _train_inputs(cfg: LakecastConfig, snaps: dict[str, Snapshot], n_features: int,
                  ) -> tuple[WindowSource, WindowArrays]:
    return _training_source(cfg, snaps["train"], n_features), _in_memory(snaps["val"], cfg, n_features)


def _finite(v: float) -> float | None:
    """A metric for job_runs.details (JSON): None where it is not a number (no test split)."""
    return v if math.isfinite(v) else None


def run(spark: SparkSession, cfg: LakecastConfig, as_of: str | None = None) -> TrainOutcome:
    """Train, backtest, log, register; the run is recorded in job_runs (failures too)."""
    import torch

    from models import intervals, precision, registry, statistical_blend
    from models.evaluate import backtest
    from models.train import fit, refit, training_threads
    from pipelines.windows.history import resolve_for_training
    from pipelines.windows.transfer import snapshot_root

    threads = training_threads(cfg.train.torch_threads)
    if threads:
        torch.set_num_threads(threads)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"torch_threads": torch.get_num_threads()})})
    with record_run(spark, cfg, "train", {"as_of": as_of}) as rec:
        rec.details["torch_threads"] = cfg.train.torch_threads
        obs, obs_version = read_observations(spark, cfg)
        rec.versions_read["observations"] = obs_version
        log.info("observations: %s at Delta version %d", cfg.table("observations"), obs_version)
        cfg, auto = resolve_for_training(obs, cfg, as_of)  # every `auto` step setting becomes an int
        rec.details["auto_settings"] = auto.details()
        root = snapshot_root(cfg.home, rec.run_id)  # `lakecast forget` looks for leftovers there
        try:  # a streamed training set is read from the snapshot during fit
            do_refit = refit_wanted(cfg)
            cutoffs, snaps, names = _windows(cfg, obs, as_of, rec, root, refit=do_refit)
            train, val = _train_inputs(cfg, snaps, len(names))
            test = _in_memory(snaps["test"], cfg, len(names), keys=True) if "test" in snaps else None
            result = fit(train, val, cfg, n_windows=snaps["train"].counts.get("usable", 0))
            history = (intervals.sample_history(train, cfg.train.seed)
                       if cfg.model.statistical_blend or cfg.model.calibrate_intervals else None)
            del train  # the refit set holds the same windows and more: not both in memory at once
            # The blend and the calibration are fitted below on the first network's validation
            # forecasts (out of sample); the refitted network, which has seen validation, is shipped.
            final = (refit(_training_source(cfg, snaps["refit"], len(names), "refit"), cfg, result,
                           n_windows=snaps["refit"].counts.get("usable", 0))
                     if do_refit else None)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        floor = forecast_floor(cfg, auto.history)  # 0.0 when no value read was negative (auto)
        rec.details["forecast_floor"] = floor
        log.info("forecast floor: %s (model.nonnegative=%s, smallest value read %s)",
                 "none" if floor is None else f"{floor:g}", cfg.model.nonnegative,
                 "unknown" if auto.history is None or auto.history.lowest is None else f"{auto.history.lowest:g}")
        meta = ModelMeta(lookback=steps(cfg).width, n_features=len(names), feature_names=tuple(names),
                         horizon=steps(cfg).horizon, quantiles=cfg.model.quantiles, freq=cfg.data.freq,
                         network=result.spec, floor=floor)
        blend, calibration = None, None
        if cfg.model.statistical_blend:  # the median blended with the statistical members, shares in meta
            season = parse_freq(cfg.data.freq).season_length()
            meta, blend = statistical_blend.fit(result.model, meta, val, season=season, device=result.device,
                                                seed=cfg.train.seed, history=history,
                                                local=blend_local(cfg),
                                                power=blend_power(cfg), skip=blend_skips(cfg),
                                                recent=recent_steps(cfg, steps(cfg)))
        if cfg.model.calibrate_intervals:  # p10/p90 sized by validation or training windows (calibrate_from)
            meta, calibration = calibrate(result.model, meta, val, device=result.device, seed=cfg.train.seed,
                                          history=history, shipped=final.model if final is not None else None,
                                          source=calibrate_from(cfg))
        shipped = final.model if final is not None else result.model
        predictor = Predictor(shipped, meta, device=result.device)
        season = parse_freq(cfg.data.freq).season_length()
        if test is not None:
            test_pred = predictor.predict(test.X, offset=test.offset)
            bt = backtest(test, test_pred, season=season, quantiles=cfg.model.quantiles, floor=meta.floor,
                          lookback=meta.network_lookback)
        else:
            log.warning("no test split (train.test_periods=0): the version is registered without test metrics")
            test_pred, bt = None, Backtest.empty(meta.horizon, season, cfg.model.quantiles)
        # The test windows, or the validation ones where there is no test split: the precision check
        # compares reduced-precision forecasts with fp32's on them (agreement, not accuracy), and two
        # of them are the pyfunc model's input example.
        checked = test if test is not None else val
        registry.use_tracking(cfg)
        run_id, model_uri = _log_mlflow(cfg, result=result, bt=bt, meta=meta, test=test, test_pred=test_pred,
                                        example=checked.X[:2],
                                        example_offset=checked.offset[:2],
                                        obs_version=obs_version, cutoffs=cutoffs, rec=rec, names=names,
                                        as_of=as_of, auto=auto, calibration=calibration, blend=blend,
                                        final=final)
        tested = {"lakecast.test_mase": f"{bt.mase(MODEL):.6g}",
                  "lakecast.test_seasonal_naive_mase": f"{bt.mase(SEASONAL_NAIVE):.6g}"} if bt.n_windows else {}
        tags = {**tested, "lakecast.test_windows": str(bt.n_windows),
                "lakecast.observations_delta_version": str(obs_version),
                "lakecast.job_run_id": rec.run_id, "lakecast.as_of": as_of or "latest",
                **precision.check_version(cfg, predictor, checked)}  # may scoring use bf16/fp16?
        ref, first = registry.register(cfg, model_uri, run_id=run_id, tags=tags)
        rec.details.update({"mlflow_run_id": run_id, "model_name": ref.name, "model_version": ref.version,
                            "became_champion": first, "test_mase": _finite(bt.mase(MODEL)),
                            "test_seasonal_naive_mase": _finite(bt.mase(SEASONAL_NAIVE)),
                            "best_epoch": result.best_epoch, "epochs": len(result.history),
                            "train_seconds": round(result.seconds, 2), "device": result.device,
                            "train_windows": result.n_train, "windows_per_epoch": result.windows_per_epoch,
                            **({"refit_epochs": final.epochs, "refit_windows": final.n_train,
                                "refit_seconds": round(final.seconds, 2)} if final else {}),
                            **({"blend_network_weights": [round(w, 4) for w in blend.fit.blend.network],
                                **{f"val_mae_{k}": round(v, 5) for k, v in blend.fit.mae.items()}}
                               if blend else {}),
                            **({"val_coverage_before_calibration": round(calibration.before[0], 4),
                                "val_coverage_after_calibration": round(calibration.after[0], 4),
                                "calibrate_from": calibration.source}
                               if calibration else {})})
        return TrainOutcome(ref, first, bt, result, run_id, rec.run_id, obs_version, cutoffs, auto, final, floor)
