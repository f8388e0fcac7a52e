"""The network on its own: shapes, ordered quantiles, determinism (random tensors, no data)."""

from __future__ import annotations

import pytest
import torch

from models.lakecast_forecaster.lstm import LSTMForecaster, LSTMSpec, build_model, pinball_loss

torch.set_num_threads(1)
SPEC = LSTMSpec(n_features=4, lookback=16, horizon=5, hidden_size=8, num_layers=2, dropout=0.1)


@pytest.mark.parametrize("linear_skip", [True, False])
def test_forward_shape(linear_skip: bool) -> None:
    spec = LSTMSpec(**{**SPEC.to_dict(), "linear_skip": linear_skip})  # type: ignore[arg-type]
    model = build_model(spec, seed=1).eval()
    out = model(torch.randn(7, 16, 4))
    assert out.shape == (7, 5, 3)
    assert out.dtype == torch.float32


def test_quantiles_never_cross_even_for_wild_inputs() -> None:
    model = build_model(SPEC, seed=2).eval()
    with torch.no_grad():
        for p in model.head.parameters():  # large random head weights: raw offsets far from 0
            p.normal_(0, 10)
        out = model(torch.randn(256, 16, 4) * 50)
    assert torch.all(out[..., 0] <= out[..., 1])
    assert torch.all(out[..., 1] <= out[..., 2])


def test_same_seed_same_weights_and_outputs() -> None:
    x = torch.randn(3, 16, 4)
    a, b, c = build_model(SPEC, 7).eval(), build_model(SPEC, 7).eval(), build_model(SPEC, 8).eval()
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))


def test_build_model_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    build_model(SPEC, 99)
    assert torch.equal(torch.rand(1), expected)


def test_wrong_quantile_count_is_refused() -> None:
    with pytest.raises(ValueError, match="3 quantiles"):
        LSTMForecaster(LSTMSpec(n_features=1, lookback=4, horizon=2, n_quantiles=5))


def test_pinball_loss_values() -> None:
    q = torch.tensor([0.1, 0.5, 0.9])
    target = torch.zeros(1, 1)
    pred = torch.tensor([[[-1.0, 0.0, 1.0]]])   # under by 1 at 0.1, exact, over by 1 at 0.9
    # 0.1 * 1 = 0.1 ; 0 ; (0.9 - 1) * -1 = 0.1  -> mean 0.0667
    assert pinball_loss(pred, target, q).item() == pytest.approx(0.2 / 3)
