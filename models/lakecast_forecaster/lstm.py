"""The global LSTM forecaster: one network for all series, the whole horizon at once.

Inputs are per-window scaled (lakecast's window builder does it), so one set of weights serves
series of any level. The head emits three quantiles that cannot cross: the median plus
non-negative (softplus) offsets below and above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LSTMSpec:
    """Everything needed to rebuild the network (stored with the weights)."""

    n_features: int
    lookback: int
    horizon: int
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    n_quantiles: int = 3
    linear_skip: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LSTMForecaster(nn.Module):
    """Stacked LSTM over the lookback; a linear head maps the last state to horizon × quantiles.

    `linear_skip` adds a linear map from the lookback's scaled values to the median (the
    autoregressive "highway" of LSTNet): it learns level and seasonal repetition within a
    few epochs, and the LSTM learns what that misses.
    """

    def __init__(self, spec: LSTMSpec) -> None:
        super().__init__()
        if spec.n_quantiles != 3:
            raise ValueError("the head emits 3 quantiles (low, median, high), "
                             f"got n_quantiles={spec.n_quantiles}")
        self.spec = spec
        self.lstm = nn.LSTM(
            input_size=spec.n_features,
            hidden_size=spec.hidden_size,
            num_layers=spec.num_layers,
            dropout=spec.dropout if spec.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(spec.hidden_size, spec.horizon * spec.n_quantiles)
        self.skip = nn.Linear(spec.lookback, spec.horizon) if spec.linear_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantile forecasts (scaled units), ordered low <= median <= high. A window longer than
        the lookback (a context the statistical members read, `ModelMeta.lookback`) is read from
        its last `lookback` steps."""
        spec = self.spec
        if x.shape[1] > spec.lookback:
            x = x[:, -spec.lookback:]
        batch = x.shape[0]                                     # x: (batch, lookback, features)
        out, _ = self.lstm(x)                                  # (batch, lookback, hidden)
        last = out[:, -1, :]                                   # (batch, hidden)
        raw = self.head(last).view(batch, spec.horizon, 3)     # (batch, horizon, 3)
        median = raw[..., 1]                                   # (batch, horizon)
        if self.skip is not None:
            median = median + self.skip(x[..., 0])             # (batch, lookback) -> (batch, horizon)
        low = median - F.softplus(raw[..., 0])                 # (batch, horizon), <= median
        high = median + F.softplus(raw[..., 2])                # (batch, horizon), >= median
        return torch.stack((low, median, high), dim=-1)        # (batch, horizon, 3)


def build_model(spec: LSTMSpec, seed: int) -> LSTMForecaster:
    """A freshly initialised network; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LSTMForecaster(spec)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile (pinball) loss.

    pred (batch, horizon, q), target (batch, horizon), quantiles (q,).
    """
    err = target.unsqueeze(-1) - pred                          # (batch, horizon, q)
    return torch.maximum(quantiles * err, (quantiles - 1) * err).mean()
