"""On each Python worker: the predict function of the pinned model, loaded once and kept.

The scoring UDF receives a *loader*: a picklable zero-argument callable that returns a ready
`predict(X (N, lookback, features) float32) -> (N, horizon, 3)` function (in scaled units).
Each worker calls it once per pinned model version and keeps the result for every later
batch and task, so the model is never loaded per batch. How the model is stored, which
framework runs it, its precision and its threads are the loader's business
(`models.shipping.ModelLoader`); this package never imports torch or `models`. A test or
bench passes any callable, e.g. `lambda: fake_predict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from pipelines.scoring.kernel import PredictFn, forecast_batch
from pipelines.scoring.plan import ScoringPlan

Loader = Callable[[], PredictFn]

_WORKER_CACHE: dict[tuple[str, str, int], PredictFn] = {}


def worker_predict(plan: ScoringPlan, loader: Loader) -> PredictFn:
    """This worker's predict function for the plan's model version: loaded once, then reused."""
    key = (plan.model_key, plan.precision, plan.batch_size)
    fn = _WORKER_CACHE.get(key)
    if fn is None:
        fn = loader()
        _WORKER_CACHE.clear()  # one pinned version per run: drop the previous run's model
        _WORKER_CACHE[key] = fn
    return fn


def score_partition(batches: Iterator[pa.RecordBatch], plan: ScoringPlan,
                    loader: Loader) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: windows (the contract's inference columns) -> scored rows."""
    predict: PredictFn | None = None
    for batch in batches:
        if predict is None:
            predict = worker_predict(plan, loader)
        yield from forecast_batch(batch, predict, plan)
