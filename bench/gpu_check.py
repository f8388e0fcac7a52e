"""The CUDA path of the model, checked on a GPU: training, scoring in each precision, the guard.

CI and the development machine have no GPU, so `train.device: auto` and the scoring loader's
`device=cuda` (cuDNN LSTM; bf16/fp16 autocast) run the same code as on the CPU but are not
exercised there. This script needs torch, numpy, pyarrow, pandas and pydantic only (no Spark,
no MLflow), so it runs on a lent GPU machine as it is:

    python -m bench.gpu_check [--windows N] [--epochs E]

On generated windows of the default hourly shape (lookback 168, horizon 24, 6 features): trains
with `train.device=cuda` (twice, to see whether a seed reproduces), scores the same windows with
the trained network on the CPU (fp32, the reference) and on the GPU in fp32, bf16 and fp16, runs
the precision guard (`precision_check`) and the job-start choice (`choose_precision` with its
calibration) as `lakecast predict` would on that device, and times GPU scoring per precision and
batch size. Prints RESULT lines; `--json FILE` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

LOOKBACK, HORIZON, N_FEATURES, SEASON = 168, 24, 6, 24


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, loc, scale): daily-seasonal series with noise, scaled per window as lakecast scales."""
    rng = np.random.default_rng(seed)
    t = np.arange(LOOKBACK + HORIZON)[None, :] + rng.integers(0, SEASON, size=(n, 1))
    level, amp = rng.uniform(5, 50, (n, 1)), rng.uniform(0.2, 0.5, (n, 1))
    series = level * (1 + amp * np.sin(2 * np.pi * t / SEASON)) + 0.1 * level * rng.standard_normal(t.shape)
    x, y = series[:, :LOOKBACK], series[:, LOOKBACK:]
    loc, scale = x.mean(axis=1), x.std(axis=1)
    X = np.zeros((n, LOOKBACK, N_FEATURES), dtype=np.float32)
    X[:, :, 0] = (x - loc[:, None]) / scale[:, None]
    hour = 2 * np.pi * (t[:, :LOOKBACK] % SEASON) / SEASON
    X[:, :, 2], X[:, :, 3] = np.sin(hour), np.cos(hour)  # features 4-5 (day of week) stay 0
    return X, ((y - loc[:, None]) / scale[:, None]).astype(np.float32), loc, scale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=20_000, help="training windows (default 20,000)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--score-windows", type=int, default=100_000, help="windows per timed scoring pass")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu runs the same steps as a smoke test")
    a = ap.parse_args(argv)

    from conf import load_config
    from models.arrays import WindowArrays
    from models.lakecast_forecaster.predictor import ModelMeta, Predictor
    from models.precision import available_precisions, calibrate, choose_precision, precision_check, predict_fn
    from models.train import fit

    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (--device cpu runs the same steps on the CPU)", file=sys.stderr)
        return 2
    results: dict[str, object] = {"device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
                                  "torch": torch.__version__, "cudnn": torch.backends.cudnn.version()}
    print(f"{results['device']}, torch {torch.__version__}, cuDNN {results['cudnn']}", flush=True)
    train_device = "auto" if dev == "cuda" else "cpu"  # auto must find the GPU by itself
    cfg = load_config(None, [f"train.device={train_device}", f"train.max_epochs={a.epochs}", "train.patience=10"],
                      env={})
    train = WindowArrays(*_windows(a.windows, 1))
    val = WindowArrays(*_windows(a.windows // 10, 2))
    test = WindowArrays(*_windows(a.windows // 2, 3))

    runs = [fit(train, val, cfg) for _ in range(2)]
    first = runs[0]
    assert first.device.startswith(dev), f"train.device=auto trained on {first.device}"
    epoch_s = [round(h.seconds, 3) for h in first.history]
    results.update(train_device=first.device, train_epoch_seconds=epoch_s,
                   train_windows_per_s=round(a.windows / min(epoch_s[1:] or epoch_s)),
                   val_loss_run1=first.best_val_loss, val_loss_run2=runs[1].best_val_loss)
    print(f"trained on {first.device}: epochs {epoch_s} s ({results['train_windows_per_s']:,} windows/s), "
          f"validation loss {first.best_val_loss:.6f} / again {runs[1].best_val_loss:.6f}", flush=True)

    meta = ModelMeta(lookback=LOOKBACK, n_features=N_FEATURES, feature_names=tuple(f"f{i}" for i in range(N_FEATURES)),
                     horizon=HORIZON, quantiles=(0.1, 0.5, 0.9), freq="h", network=first.spec)
    cpu_model = type(first.model)(first.spec)
    cpu_model.load_state_dict({k: v.detach().cpu() for k, v in first.model.state_dict().items()})
    reference = Predictor(cpu_model, meta, "cpu").predict(test.X, batch_size=1024)
    on_device = Predictor(first.model, meta, dev)
    reduced = available_precisions(dev)
    for precision in ("fp32", *reduced):
        out = predict_fn(on_device, precision, 4096)(test.X)
        results[f"max_abs_diff_{precision}_vs_cpu_fp32"] = float(np.abs(out - reference).max())
        print(f"{dev} {precision}: max |diff| vs CPU fp32 {results[f'max_abs_diff_{precision}_vs_cpu_fp32']:.2e} "
              "(scaled units)", flush=True)
    assert test.y is not None  # training windows carry targets
    tags = precision_check(on_device, test.X, test.y, test.loc, test.scale, SEASON, cfg.scoring.precision_tolerance)
    results["guard_tags"] = tags
    for p in reduced:
        print(f"guard {p}: MASE rel diff {tags.get(f'lakecast.precision.{p}.mase_rel_diff')}, ok "
              f"{tags.get(f'lakecast.precision.{p}.ok')}", flush=True)
    s = cfg.scoring
    choice = choose_precision(
        s.precision, device=dev, available=reduced, tags=tags,
        tolerance=s.precision_tolerance, min_speedup=s.calibration_min_speedup,
        calibrate_fn=lambda p: calibrate(on_device, p, n_windows=s.calibration_windows, batch_size=s.batch_size_for(p),
                                          threads=s.torch_threads, fp32_batch_size=s.batch_size_for("fp32")))
    results["auto_choice"] = choice.as_details()
    print(f"scoring.precision=auto on {dev} chooses {choice.precision}: {choice.reason}", flush=True)

    # The workers' path: the predictor folder packed into the bytes a run broadcasts, loaded by
    # `ModelLoader` on the device in the chosen precision, as `pipelines.scoring.worker` calls it.
    import tempfile

    from models.lakecast_forecaster.predictor import save_predictor
    from models.shipping import ModelLoader, pack_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        blob = pack_model_dir(save_predictor(first.model, meta, tmp))
    loader = ModelLoader(blob, key="gpu_check/1", device=dev, precision=choice.precision,
                         batch_size=s.batch_size_for(choice.precision), windows=(LOOKBACK, N_FEATURES, HORIZON))
    shipped = loader()(test.X)
    direct = predict_fn(on_device, choice.precision, s.batch_size_for(choice.precision))(test.X)
    results["shipped_vs_direct_max_abs_diff"] = float(np.abs(shipped - direct).max())
    results["shipped_vs_cpu_fp32_max_abs_diff"] = float(np.abs(shipped - reference).max())
    print(f"ModelLoader on {dev} in {choice.precision} ({len(blob):,} bytes shipped): max |diff| vs the direct "
          f"predictor {results['shipped_vs_direct_max_abs_diff']:.2e}, vs CPU fp32 "
          f"{results['shipped_vs_cpu_fp32_max_abs_diff']:.2e}", flush=True)

    X = np.concatenate([test.X] * max(1, a.score_windows // len(test)))
    for precision in ("fp32", *reduced):
        for batch in (1024, 4096, 16384):
            fn = predict_fn(on_device, precision, batch)
            fn(X[:batch])
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn(X)
            rate = len(X) / (time.perf_counter() - t0)
            results[f"{dev}_{precision}_batch{batch}_windows_per_s"] = round(rate)
            print(f"{dev} {precision} batch {batch}: {rate:,.0f} windows/s (numpy in, numpy out)", flush=True)

    for k in ("train_windows_per_s", "shipped_vs_direct_max_abs_diff", "max_abs_diff_fp32_vs_cpu_fp32", *(
            f"max_abs_diff_{p}_vs_cpu_fp32" for p in reduced)):
        print(f"RESULT gpu_{k}={results[k]}")
    best = max((v, k) for k, v in results.items() if k.startswith(f"{dev}_") and isinstance(v, int))
    print(f"RESULT gpu_scoring_best_windows_per_s={best[0]}  # {best[1]}")
    print(f"RESULT gpu_auto_precision={choice.precision}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
