"""Blend the network's median with statistical forecasts of the same window, per horizon step.

The members besides the network (`statistical.MEMBERS`): the Theta method, seasonal naive,
seasonal naive with drift, the airline model, the damped trend and naive, Theta and the damped trend
with a multiplicative season, and Holt-Winters (a season that moves, on the logs of positive windows),
all computed on each window's own lookback (the multiplicative ones also from its offset, scale_loc /
scale_scale), and where a model has them, the trend members again on each window's last `recent` steps
(`statistical.RECENT_MEMBERS`); a model blends those it was
fitted with (`StatisticalBlend.members`).
Their shares are fitted at training time on the validation windows (the ones the interval
calibration uses, before it) by inverse mean squared error (Bates & Granger 1969) raised to a
`power`: member k gets `mse_k^-p / sum_j mse_j^-p` of the median (p = 1 is Bates & Granger's; p =
2 leans harder on the member that backtests best, which training uses for monthly and quarterly
data, see `conf.auto_steps.blend_power`).
Weights from the error ratios, not the weights that minimise the validation error, because
validation is small on monthly and quarterly data (one window per series) and chosen by early
stopping, so the network looks better there than it is: on the accuracy benchmark the
error-minimising weight was 1.0 (network only) on aus_retail, where a blend cut the holdout
MASE by 9-13 %. How the members split what the network leaves also counts earlier (training)
windows, which are many and span years (see `fit_blend`). With fewer than
`MIN_WINDOWS_PER_STEP` windows at a step, one set of weights serves all steps. The whole band
moves with the median (p10 and p90 keep their distances to it), so quantiles stay ordered; the
calibration, fitted afterwards on the blended output, then sizes the band. A network weight of 1
at every step costs nothing at scoring time. With a `local` share, each window also splits part
of the members' share by their backtests on its own data (`local_member_shares`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .statistical import (
    KNOWN_MEMBERS,
    MEMBERS,
    MULTIPLICATIVE_MEMBERS,
    RECENT_MEMBERS,
    base_member,
    member_forecasts,
    seasonal_steps,
)

MIN_WINDOWS_PER_STEP = 200  # fewer validation windows with an actual at a step: one weight for all
LOCAL_ORIGINS = 3           # in-window backtests per window for the local split (see `local_member_shares`)
MIN_BACKTEST_FIT = 3        # steps a member is refitted on in a backtest, at least
EXACT_BACKTEST = 1e-12      # a backtest MSE at most this (relative to the window's variance) is exact


def _sse(forecasts: dict[str, np.ndarray], y: np.ndarray, ok: np.ndarray, per_step: bool) -> np.ndarray:
    """(members, horizon) squared errors over the windows `ok`: per step, or the total at every step."""
    horizon = y.shape[1]
    out = []
    for f in forecasts.values():
        se = np.where(ok, (y - f) ** 2, 0.0)
        out.append(se.sum(axis=0) if per_step else np.full(horizon, se.sum()))
    return np.stack(out)


def _inverse_shares(sse: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Shares (rows) per step (columns) by inverse squared error to the `power`; a perfect row takes
    everything. Each column is divided by its smallest error first, so no power overflows."""
    exact = sse <= 0.0
    safe = np.where(exact, 1.0, sse)
    ratio = safe.min(axis=0) / safe                                   # in (0, 1], best member 1
    inv = np.where(exact.any(axis=0), exact.astype(float), ratio ** power)
    return inv / inv.sum(axis=0)


def _finite(y: np.ndarray, forecasts: dict[str, np.ndarray]) -> np.ndarray:
    return np.isfinite(y) & np.logical_and.reduce([np.isfinite(f) for f in forecasts.values()])


@dataclass(frozen=True)
class StatisticalBlend:
    """Per horizon step, the share of the median of the network and of each statistical member."""

    season: int
    network: tuple[float, ...]
    members: dict[str, tuple[float, ...]]
    # How much of the members' split each window takes from its own backtest (0: the fitted split alone;
    # a window whose own backtests are exact takes all of it, `local_member_split`).
    local: float = 0.0
    # The exponent on inverse squared error of that own split (the fitted shares are stored as numbers).
    power: float = 1.0
    # The last steps of each window the `statistical.RECENT_MEMBERS` read (0: the blend has none).
    recent: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.members) - set(KNOWN_MEMBERS)
        shares = [self.network, *self.members.values()]
        if self.season < 1 or unknown or len({len(s) for s in shares}) != 1:
            raise ValueError(f"a statistical blend needs a season >= 1, members of {list(KNOWN_MEMBERS)} and one "
                             f"weight per horizon step for each; got season {self.season}, members "
                             f"{list(self.members)}, lengths {[len(s) for s in shares]}")
        if not all(math.isfinite(w) and 0.0 <= w <= 1.0 for s in shares for w in s) or not all(
                abs(sum(col) - 1.0) < 1e-6 for col in zip(*shares, strict=True)):
            raise ValueError(f"statistical blend weights must lie in [0, 1] and add up to 1 at every step: "
                             f"network {self.network}, members {self.members}")
        if not 0.0 <= self.local <= 1.0:
            raise ValueError(f"a statistical blend's local share must lie in [0, 1], got {self.local}")
        if not (math.isfinite(self.power) and self.power > 0.0):
            raise ValueError(f"a statistical blend's power must be a positive number, got {self.power}")
        if self.recent < 0 or (self.recent == 0) == self.has_recent:
            raise ValueError(f"a statistical blend reads `recent` steps (got {self.recent}) exactly when it has "
                             f"members of {list(RECENT_MEMBERS)} (got {list(self.members)})")

    @property
    def has_recent(self) -> bool:
        """Whether members refit on each window's recent steps too (which older lakecast cannot)."""
        return bool(set(self.members) & set(RECENT_MEMBERS))

    @property
    def horizon(self) -> int:
        return len(self.network)

    @property
    def active(self) -> bool:
        """Whether any member has a share (else scoring skips computing them)."""
        return any(w < 1.0 for w in self.network)

    @property
    def needs_offset(self) -> bool:
        """Whether `apply` forecasts differently given the windows' offsets (loc / scale): whether
        the blend has a member that takes a multiplicative season out."""
        return self.active and bool({base_member(m) for m in self.members} & set(MULTIPLICATIVE_MEMBERS))

    @property
    def splits_locally(self) -> bool:
        """Whether windows split the members' share by their own backtests (which older lakecast cannot)."""
        return self.active and self.local > 0.0 and len(self.members) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"season": self.season, "network": list(self.network),
                "members": {k: list(v) for k, v in self.members.items()}, "local": self.local,
                "power": self.power, **({"recent": self.recent} if self.recent else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StatisticalBlend:
        return cls(season=int(d["season"]), network=tuple(float(w) for w in d["network"]),
                   members={str(k): tuple(float(w) for w in v) for k, v in d["members"].items()},
                   local=float(d.get("local", 0.0)), power=float(d.get("power", 1.0)),
                   recent=int(d.get("recent", 0)))

    def apply(self, q: np.ndarray, values: np.ndarray, pad: np.ndarray | None = None,
              offset: np.ndarray | None = None) -> np.ndarray:
        """Move `q` (N, horizon, 3) in place to the blended median of windows `values` (N, lookback)
        (the members skip each window's `pad` leading steps, see `padding.py`; `offset`: each
        window's loc / scale, which the multiplicative members need, see `needs_offset`)."""
        if not self.active or not len(q):
            return q
        names = tuple(self.members)
        forecasts = member_forecasts(values, self.season, self.horizon, names, pad, offset, self.recent)
        mid = q[..., 1].astype(np.float64)
        network = np.asarray(self.network)
        blended = network * mid
        fitted = np.stack([np.asarray(self.members[k]) for k in names])          # (members, horizon)
        if self.splits_locally:
            rest = 1.0 - network
            split = np.divide(fitted, rest, out=np.zeros_like(fitted), where=rest > 0)   # sums to 1 per step
            own, exact = local_member_split(values, self.season, self.horizon, names, pad, self.power,
                                            offset, self.recent)                          # (N, members), (N,)
            lam = np.where(np.isnan(own).any(axis=1), 0.0, np.where(exact > 0, 1.0, self.local))  # no backtest: fitted
            lam = lam[:, None, None]
            own = np.nan_to_num(own)[:, :, None]
            # every member backtests exactly (a series flat for the whole window, e.g. one that has stayed at
            # zero): the members take the network's share too, whose median only adds noise there
            net = np.where((exact == len(names))[:, None], 0.0, network[None, :])      # (N, horizon)
            blended = net * mid
            shares = (1.0 - net)[:, None, :] * ((1.0 - lam) * split[None] + lam * own)  # (N, members, horizon)
            for k, name in enumerate(names):
                blended += shares[:, k] * forecasts[name]
        else:
            for k, name in enumerate(names):
                blended += fitted[k] * forecasts[name]
        q += (blended - mid)[..., None].astype(q.dtype)
        return q


def _refit_floor(length: int, season: int, members: tuple[str, ...] = MEMBERS) -> int:
    """The shortest refit whose members are of the same kind as the whole window's: the longest
    `statistical.seasonal_steps` of the members in their seasonal form on this window (two seasons
    for Theta and seasonal drift, two and three steps for the airline model, one for seasonal
    naive), at least `MIN_BACKTEST_FIT`."""
    needs = (seasonal_steps(name, season) for name in members)
    return max([MIN_BACKTEST_FIT, *(n for n in needs if n <= length)])


def local_member_shares(values: np.ndarray, season: int, horizon: int, members: tuple[str, ...],
                        pad: np.ndarray | None = None, power: float = 1.0,
                        offset: np.ndarray | None = None, recent: int = 0) -> np.ndarray:
    """(N, members) split of each window's member share by the members' own backtests in that window
    (`local_member_split`)."""
    return local_member_split(values, season, horizon, members, pad, power, offset, recent)[0]


def local_member_split(values: np.ndarray, season: int, horizon: int, members: tuple[str, ...],
                       pad: np.ndarray | None = None, power: float = 1.0,
                       offset: np.ndarray | None = None,
                       recent: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, members) split of each window's member share by the members' own backtests in that
    window, and (N,) how many members' backtests matched the window exactly.

    The fitted split is one for all series, yet series differ in kind: a trending one wants the
    drift member, a stable seasonal one seasonal naive. Each member is refitted on the window
    without its last `back` steps and scored on them, from up to `LOCAL_ORIGINS` origins
    `max(1, back // 2)` steps apart (one backtest alone was too noisy on yearly data); the split
    is by inverse mean squared error over them to the `power` (relative to the window's variance,
    so the floor on it does not depend on the units). `back` is half of what the window can spare, at most
    half a horizon (at least one step); no refit is shorter than `_refit_floor`, so the members
    backtested are the ones that forecast (a window of exactly one season, e.g. weekly data with a
    lookback of 52, cannot spare a step: seasonal naive refitted on less would repeat the last
    value). NaN rows: nothing to spare; the window keeps the fitted split. The `RECENT_MEMBERS` refit on
    the last `recent` steps of each refit's window, as they forecast. An exact window (e.g. a series
    flat over its recent steps, as one that has stayed at zero) splits the share among its exact members
    alone, and `StatisticalBlend.apply` takes all of the members' share from that split there: the
    fitted split would mix in members that read years back, to when the series still moved. Where
    every member is exact (flat over the whole window), `apply` gives them the network's share too.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full((len(x), len(members)), np.nan)
    exact = np.zeros(len(x), dtype=int)
    pads = np.zeros(len(x), dtype=int) if pad is None else np.asarray(pad, dtype=int)
    for p in np.unique(pads):
        rows = pads == p
        w = x[rows, int(p):]
        c = None if offset is None else np.asarray(offset)[rows]
        length = w.shape[1]
        floor = _refit_floor(length, season, members)
        spare = length - floor
        if spare < 1:
            continue
        back = max(1, min(horizon, spare) // 2)
        step = max(1, back // 2)
        err = np.zeros((len(w), len(members)))
        done = 0
        for o in range(LOCAL_ORIGINS):
            end = length - o * step
            if end - back < floor:
                break
            f = member_forecasts(w[:, :end - back], season, back, members, offset=c, recent=recent)
            actual = w[:, end - back:end]
            err += np.stack([((actual - f[k]) ** 2).mean(axis=1) for k in members], axis=1)
            done += 1
        scale = np.maximum(w.var(axis=1, keepdims=True), 1e-12)
        rel = err / done / scale
        hit = rel <= EXACT_BACKTEST
        inv = np.where(hit.any(axis=1, keepdims=True), hit.astype(float),
                       1.0 / np.maximum(rel, EXACT_BACKTEST) ** power)
        out[rows] = inv / inv.sum(axis=1, keepdims=True)
        exact[rows] = hit.sum(axis=1)
    return out, exact


@dataclass(frozen=True)
class BlendFit:
    """The fitted blend and the validation MAE (scaled units) of the network, each member and the blend."""

    blend: StatisticalBlend
    n_windows: int
    mae: dict[str, float]   # network, each member, blend


def fit_blend(pred: np.ndarray, values: np.ndarray, y: np.ndarray, season: int,
              members: tuple[str, ...] = MEMBERS, pad: np.ndarray | None = None,
              history: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None = None,
              local: float = 0.0, power: float = 1.0, offset: np.ndarray | None = None,
              recent: int = 0) -> BlendFit:
    """Weights for the network's `pred` (N, horizon, 3) and `members` on windows `values`
    (N, lookback; `pad` leading steps of padding each) against actuals `y` (N, horizon), all in
    the same (scaled) units.

    The network's share is its inverse squared error among all on the validation windows. How
    the rest is split between the members also counts `history`: (values, actuals, pad, offsets)
    of earlier windows (a sample of the training windows), which the network has seen but the
    members, fitted on each window alone, have not. Validation is one period, on monthly data one
    window per series: a level shift there makes every member look alike (on the weekly ansett
    set the split went to 0.51 / 0.49 Theta / seasonal naive, where the training years say 0.63 /
    0.37, which forecast the holdout 15 % better). `local`: how much of that split each window
    then takes from its own backtest at prediction (`local_member_shares`). `power`: the exponent
    on inverse squared error of every share (network, members, own split). `offset`: each window's
    loc / scale, which the `statistical.MULTIPLICATIVE_MEMBERS` need (else they are additive).
    `recent`: the last steps of each window the `statistical.RECENT_MEMBERS` among `members` read.
    """
    horizon = pred.shape[1]
    if y.shape != pred.shape[:2] or values.shape[0] != pred.shape[0]:
        raise ValueError(f"a blend needs predictions (N, horizon, 3), windows (N, lookback) and actuals "
                         f"(N, horizon) of the same N, got {pred.shape}, {values.shape} and {y.shape}")
    forecasts = {"network": pred[..., 1].astype(np.float64),
                 **member_forecasts(values, season, horizon, members, pad, offset, recent)}
    yy = y.astype(np.float64)
    ok = _finite(yy, forecasts)
    if not ok.any():
        raise ValueError("no validation window has an actual to fit the statistical blend on")
    per_step = int(ok.sum(axis=0).min()) >= MIN_WINDOWS_PER_STEP
    weights = _inverse_shares(_sse(forecasts, yy, ok, per_step), power)      # (members + 1, horizon)
    if history is not None and len(history[0]) and len(members) > 1:
        h_values, h_y, h_pad, h_offset = history
        h_forecasts = member_forecasts(h_values, season, horizon, members, h_pad,
                                       h_offset if offset is not None else None, recent)
        h_yy = h_y.astype(np.float64)
        h_ok = _finite(h_yy, h_forecasts)
        if h_ok.any():
            both = int(ok.sum(axis=0).min() + h_ok.sum(axis=0).min()) >= MIN_WINDOWS_PER_STEP
            val_members = {k: v for k, v in forecasts.items() if k != "network"}
            sse = _sse(val_members, yy, ok, both) + _sse(h_forecasts, h_yy, h_ok, both)
            weights[1:] = (1.0 - weights[0]) * _inverse_shares(sse, power)
    names = list(forecasts)
    shares = {name: tuple(float(v) for v in weights[i]) for i, name in enumerate(names)}
    blend = StatisticalBlend(season, shares.pop("network"), shares, local=local, power=power,
                             recent=recent if set(members) & set(RECENT_MEMBERS) else 0)
    blended = blend.apply(pred.astype(np.float64), values, pad, offset)[..., 1]  # as scoring will blend them

    def mae(f: np.ndarray) -> float:
        return float(np.abs(yy - f)[ok].mean())

    return BlendFit(blend, int(ok.any(axis=1).sum()),
                    {**{name: mae(f) for name, f in forecasts.items()}, "blend": mae(np.asarray(blended))})
