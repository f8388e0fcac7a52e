"""Training on small generated seasonal data, and the backtest metrics against the baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conf import LakecastConfig
from models.arrays import WindowArrays
from models.evaluate import MODEL, NAIVE, SEASONAL_NAIVE, backtest, baselines, mase_scale
from models.train import TrainingError, epoch_share, fit, refit, resolve_device
from tests.conftest import make_config
from tests.model_data import SEASON, seasonal_windows, time_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory: pytest.TempPathFactory) -> LakecastConfig:
    return make_config(tmp_path_factory.mktemp("home"), "model.hidden_size=8", "model.num_layers=1",
                       "train.max_epochs=6", "train.batch_size=64", "train.learning_rate=0.01",
                       "train.patience=2", "train.device=cpu")


@pytest.fixture(scope="module")
def splits() -> tuple[WindowArrays, WindowArrays, WindowArrays]:
    w, ends = seasonal_windows()
    return time_split(w, ends, train_end=24 * 22, val_end=24 * 26)


def test_training_lowers_validation_loss_and_beats_seasonal_naive(tiny_cfg, splits) -> None:
    train, val, test = splits
    result = fit(train, val, tiny_cfg)
    losses = [h.val_loss for h in result.history]
    assert result.best_val_loss < losses[0] * 0.8
    assert result.n_train == len(train) and result.n_val == len(val)
    with torch.inference_mode():
        pred = result.model(torch.from_numpy(test.X)).numpy()
    bt = backtest(test, pred, season=SEASON)
    assert bt.mase(MODEL) < bt.mase(SEASONAL_NAIVE) < bt.mase(NAIVE)
    assert 0.5 < bt.overall[MODEL]["coverage"] <= 1.0
    assert np.isnan(bt.overall[SEASONAL_NAIVE]["coverage"])


def test_training_is_deterministic_for_a_seed(splits, tmp_path) -> None:
    train, val, _ = splits
    cfg = make_config(tmp_path, "model.hidden_size=4", "model.num_layers=1",
                      "train.max_epochs=2", "train.batch_size=128", "train.device=cpu")
    a, b = fit(train.take(np.arange(200)), val, cfg), fit(train.take(np.arange(200)), val, cfg)
    assert [h.val_loss for h in a.history] == [h.val_loss for h in b.history]
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_streamed_blocks_train_like_arrays(tiny_cfg, splits) -> None:
    train, val, _ = splits
    blocks = [train.take(np.arange(i, min(i + 100, len(train)))) for i in range(0, len(train), 100)]
    result = fit(lambda: iter(blocks), val, tiny_cfg.model_copy(
        update={"train": tiny_cfg.train.model_copy(update={"max_epochs": 2})}))
    assert result.n_train == len(train)
    assert len(result.history) == 2


def _budget(cfg: LakecastConfig, limit: int, **train: int) -> LakecastConfig:
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_windows_per_epoch": limit, **train})})


def test_epoch_share_draws_the_budget_only_where_there_are_more_windows() -> None:
    assert epoch_share(1000, 0) == 1.0            # 0: no budget
    assert epoch_share(1000, 1000) == 1.0
    assert epoch_share(1000, 250) == 0.25
    assert epoch_share(None, 250) == 1.0          # a stream of unknown size is read whole


def test_a_budget_above_the_window_count_changes_nothing(tiny_cfg, splits) -> None:
    train, val, _ = splits
    small = train.take(np.arange(300))
    a = fit(small, val, _budget(tiny_cfg, 0, max_epochs=2))
    b = fit(small, val, _budget(tiny_cfg, 300, max_epochs=2))
    assert [h.val_loss for h in a.history] == [h.val_loss for h in b.history]
    assert a.windows_per_epoch == b.windows_per_epoch == a.n_train == 300


def test_each_epoch_trains_on_the_budget_drawn_afresh_and_still_learns(tiny_cfg, splits) -> None:
    train, val, _ = splits
    limit = len(train) // 4
    result = fit(train, val, _budget(tiny_cfg, limit))
    assert result.n_train == len(train) and result.windows_per_epoch == limit
    losses = [h.val_loss for h in result.history]
    assert result.best_val_loss < losses[0] * 0.9
    # the draws differ by epoch: two epochs at the budget are not the same epoch twice
    once = fit(train, val, _budget(tiny_cfg, limit, max_epochs=1, patience=1))
    twice = fit(train, val, _budget(tiny_cfg, limit, max_epochs=2, patience=1))
    assert twice.history[0].val_loss == once.history[0].val_loss
    assert twice.history[1].train_loss != twice.history[0].train_loss


def test_streamed_blocks_and_the_refit_keep_to_the_budget(tiny_cfg, splits) -> None:
    train, val, _ = splits
    blocks = [train.take(np.arange(i, min(i + 100, len(train)))) for i in range(0, len(train), 100)]
    limit = len(train) // 3
    cfg = _budget(tiny_cfg, limit, max_epochs=2)
    result = fit(lambda: iter(blocks), val, cfg, n_windows=len(train))
    assert result.n_train == len(train)
    assert abs(result.windows_per_epoch - limit) <= len(blocks)   # each block gives its share, rounded
    again = refit(lambda: iter(blocks), cfg, result, n_windows=len(train))
    assert again.n_train == len(train) and abs(again.windows_per_epoch - limit) <= len(blocks)
    in_memory = refit(train, cfg, result)
    assert in_memory.windows_per_epoch == limit


def test_no_validation_windows_is_a_clear_error(tiny_cfg, splits) -> None:
    train, val, _ = splits
    with pytest.raises(TrainingError, match=r"no usable validation windows; check the split sizes"):
        fit(train, val.take(np.arange(0)), tiny_cfg)


def test_cuda_asked_without_gpu_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TrainingError, match=r"train\.device is 'cuda' but no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_baselines_and_mase_scale_by_hand() -> None:
    history = np.array([[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]])     # season 3
    naive, snaive = baselines(history, horizon=4, season=3)
    assert naive.tolist() == [[3.0, 3.0, 3.0, 3.0]]
    assert snaive.tolist() == [[1.0, 2.0, 3.0, 1.0]]
    assert np.isnan(mase_scale(history, 3)[0])               # a perfectly periodic lookback has no scale
    assert mase_scale(np.array([[1.0, 2.0, 4.0, 1.0, 2.0, 5.0]]), 3).tolist() == [pytest.approx(1 / 3)]


def test_backtest_in_original_units() -> None:
    # One window, scaled by loc 10 / scale 2; the model is exactly right, so its MAE is 0.
    X = np.array([[[0.0], [1.0], [0.0], [1.0], [0.0], [2.0]]], dtype=np.float32)  # (1, 6, 1)
    y = np.array([[0.0, 1.0]], dtype=np.float32)
    w = WindowArrays(X, y, np.array([10.0]), np.array([2.0]))
    pred = np.stack([y - 0.5, y, y + 0.5], axis=-1)
    bt = backtest(w, pred, season=2, quantiles=(0.1, 0.5, 0.9))
    assert bt.overall[MODEL]["mae"] == 0.0 and bt.overall[MODEL]["coverage"] == 1.0
    # history 10,12,10,12,10,14: seasonal naive (season 2) says 10, 14 for actuals 10, 12
    assert bt.overall[SEASONAL_NAIVE]["mae"] == pytest.approx(1.0)
    assert bt.per_step[SEASONAL_NAIVE]["mae"].tolist() == [0.0, 2.0]
    # in-sample scale: |10-10|,|12-12|,|10-10|,|14-12| -> 0.5 ; MASE = 1.0 / 0.5
    assert bt.overall[SEASONAL_NAIVE]["mase"] == pytest.approx(2.0)
    assert bt.overall[NAIVE]["mae"] == pytest.approx(3.0)
    cols, rows = bt.table()
    assert cols[0] == "forecaster" and "80% coverage" in cols
    assert [r[0] for r in rows] == [MODEL, SEASONAL_NAIVE, NAIVE]
    assert len(bt.step_table()[1]) == 2
