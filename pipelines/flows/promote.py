"""`lakecast promote [--version N] [--by backtest|live]`: decide which registered version is `champion`.

Data flow: resolve `challenger` and `champion` to fixed versions -> download both -> the most
recent backtest windows (the last `promote.backtest_periods` steps of observations) ->
score both and the seasonal naive on the same windows -> the rule (models.promote) -> move
the alias or not -> tags on the version -> job_runs. `--version N` pins N on purpose. `--by live`
replaces the backtest by both versions' accuracy on the targets both were shadow-scored on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.auto_steps import auto_keys, steps
from conf.freq import parse_freq
from models.promote import Comparison, Decision
from models.registry import ModelRef
from pipelines.accuracy.shared_targets import SharedTargets
from pipelines.sinks.job_runs import RunRecord, record_run

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from models.arrays import WindowArrays
    from models.lakecast_forecaster.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromoteOutcome:
    decision: Decision
    challenger: ModelRef | None = None
    champion: ModelRef | None = None
    comparison: Comparison | None = None
    job_run_id: str = ""
    live: SharedTargets | None = None   # --by live: the figures the decision was taken on


def backtest_windows(cfg: LakecastConfig, obs: DataFrame, as_of: str | None, rec: RunRecord,
                     ) -> WindowArrays:
    """Usable windows whose targets lie in the last `promote.backtest_periods` steps (as arrays)."""
    from pyspark.sql import functions as F

    from conf.utc import to_utc_micros
    from models.arrays import to_arrays, usable_only
    from pipelines.windows.build import feature_names, split_cutoffs, training_windows
    from pipelines.windows.grid import GridSpec, shift
    from pipelines.windows.transfer import collect_arrow, outcome_counts

    bt_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"test_periods": cfg.promote.backtest_periods})})
    cut = split_cutoffs(obs, bt_cfg, end=as_of)
    grid = GridSpec.from_config(cfg)
    first_origin = to_utc_micros(shift(grid, cut.val_end, -1))   # first target after the start
    windows = training_windows(obs, cfg, cutoff=cut.end).where(
        F.col("forecast_origin") > F.timestamp_micros(F.lit(first_origin)))
    table = collect_arrow(windows)
    counts = outcome_counts(table)
    for outcome, n in counts.items():
        rec.row_counts[f"backtest_windows_{outcome}"] = n
    log.info("backtest windows (targets in (%s, %s]): %s", cut.val_end, cut.end, counts)
    s = steps(cfg)
    return to_arrays(usable_only(table), lookback=s.width, n_features=len(feature_names(cfg)),
                     horizon=s.horizon, keys=True)


def _load(cfg: LakecastConfig, ref: ModelRef) -> Predictor:
    from models.lakecast_forecaster.predictor import load_predictor
    from models.registry import download_version

    return load_predictor(download_version(cfg, ref))


def _for_models(cfg: LakecastConfig, predictors: tuple[Predictor, Predictor], obs: DataFrame,
                as_of: str | None, rec: RunRecord) -> LakecastConfig:
    """`auto` resolved for the challenger's windows (and the history, for the backtest length);
    both models must fit the result, else ModelMismatchError names each difference."""
    from pipelines.windows.build import feature_names
    from pipelines.windows.history import measure_history, resolve_for_model

    m = predictors[0].meta
    given = "model.statistical_lookback" not in auto_keys(cfg)
    history = measure_history(obs, cfg, as_of) if "promote.backtest_periods" in auto_keys(cfg) else None
    # windows as wide as the wider model's (a champion trained before the members' context is narrower)
    cfg, auto = resolve_for_model(cfg, m.network.lookback, m.horizon, history, also=("promote.backtest_periods",),
                                  statistical_lookback=max(p.meta.lookback for p in predictors))
    if auto.values:
        log.info(auto.line)
        rec.details["auto_settings"] = auto.details()
    s = steps(cfg)
    for i, p in enumerate(predictors):
        # each model reads the windows' last steps; a given statistical lookback is the one predict
        # will score the challenger with, so the challenger must match it exactly
        own = p.meta.lookback - p.meta.network_lookback
        context = s.context if given and i == 0 else min(s.context, own)
        p.meta.check_windows(lookback=s.lookback, feature_names=feature_names(cfg), horizon=s.horizon,
                             freq=cfg.data.freq, context=context)
    return cfg


BACKTEST, LIVE = "backtest", "live"


def run(spark: SparkSession, cfg: LakecastConfig, version: int | None = None, as_of: str | None = None,
        by: str = BACKTEST) -> PromoteOutcome:
    """Apply the promotion rule (or pin `version`); record the decision in job_runs and as tags.

    `by`: `backtest` (default) scores both versions on the newest backtest windows; `live` takes
    their accuracy on the targets both were shadow-scored on (`forecast_accuracy`).
    """
    from models import precision, promote, registry
    from pipelines.flows.train import read_observations

    if by not in (BACKTEST, LIVE):
        raise ValueError(f"by must be {BACKTEST!r} or {LIVE!r}, not {by!r}")
    with record_run(spark, cfg, "promote", {"version": version, "as_of": as_of, "by": by}) as rec:
        if version is not None:
            decision = promote.pin(cfg, version)
            promote.apply(cfg, decision, job_run_id=rec.run_id)
            rec.details.update(_details(decision))
            return PromoteOutcome(decision, job_run_id=rec.run_id)
        challenger = registry.resolve(cfg, alias=registry.CHALLENGER)
        shortcut = promote.without_comparison(cfg, challenger)
        if shortcut is not None:
            promote.apply(cfg, shortcut, job_run_id=rec.run_id)
            rec.details.update(_details(shortcut))
            return PromoteOutcome(shortcut, challenger, job_run_id=rec.run_id)
        champion = registry.resolve(cfg, alias=registry.CHAMPION)
        log.info("challenger v%s vs champion v%s (%s)", challenger.version, champion.version, by)
        if by == LIVE:
            return _live(spark, cfg, challenger, champion, rec)
        predictors = _load(cfg, challenger), _load(cfg, champion)
        obs, obs_version = read_observations(spark, cfg)
        rec.versions_read["observations"] = obs_version
        cfg = _for_models(cfg, predictors, obs, as_of, rec)
        windows = backtest_windows(cfg, obs, as_of, rec)
        cmp = promote.compare(*predictors, windows, season=parse_freq(cfg.data.freq).season_length())
        # Re-check reduced precision on the newest backtest windows: scoring reads these tags.
        registry.tag_version(cfg, challenger.version, precision.check_version(cfg, predictors[0], windows))
        decision = promote.decide(cfg, challenger, champion, cmp)
        promote.apply(cfg, decision, job_run_id=rec.run_id)
        rec.details.update(_details(decision))
        return PromoteOutcome(decision, challenger, champion, cmp, rec.run_id)


def _live(spark: SparkSession, cfg: LakecastConfig, challenger: ModelRef, champion: ModelRef,
          rec: RunRecord) -> PromoteOutcome:
    """The rule on live accuracy; refuses below promote.min_live_targets shared targets."""
    from models import promote
    from pipelines.accuracy.shared_targets import shared_targets
    from pipelines.tables.ensure import delta_version

    table = cfg.table("forecast_accuracy")
    acc_version = delta_version(spark, table)
    rec.versions_read["forecast_accuracy"] = acc_version
    shared = shared_targets(spark.sql(f"SELECT * FROM {table} VERSION AS OF {acc_version}"),
                            challenger.name, challenger.version, champion.version)
    rec.row_counts["live_targets"] = shared.n
    decision = promote.decide_live(
        cfg, challenger, champion, n=shared.n, origins=shared.origins, challenger_mase=shared.challenger_mase,
        champion_mase=shared.champion_mase, seasonal_naive_mase=shared.seasonal_naive_mase,
        first_origin=shared.first_origin, last_origin=shared.last_origin)
    promote.apply(cfg, decision, job_run_id=rec.run_id)
    rec.details.update(_details(decision))
    return PromoteOutcome(decision, challenger, champion, job_run_id=rec.run_id, live=shared)


def _details(d: Decision) -> dict[str, Any]:
    return {"decision": d.outcome, "reason": d.reason, "champion_before": d.previous_champion,
            "champion_after": d.champion, "candidate": d.candidate, **d.facts}
