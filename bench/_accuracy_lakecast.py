"""lakecast's side of `bench.accuracy_bench`: its own commands, as a user runs them, in a fresh home.

export -> (the bench holds out the last h steps) -> ingest -> train -> predict --as-of origin
-> `lakecast sql --format csv` reads the forecasts back. `train` makes its first version
champion, so no `promote` is needed in a fresh home. Each command is its own process (its own
JVM), as on a scheduler; the wall time of ingest + train + predict includes their start-up, not
the one-time download of the Delta JARs (the repository's Ivy cache is shared, as in the other
benchmarks).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._commands import IVY

LAKECAST = str(Path(sys.executable).with_name("lakecast"))


@dataclass
class LakecastRun:
    p10: np.ndarray  # (series, h), NaN where lakecast gave no forecast
    p50: np.ndarray
    p90: np.ndarray
    seconds: dict[str, float]  # per command: ingest, train, predict

    @property
    def wall(self) -> float:
        return sum(self.seconds.values())


class LakecastFailed(RuntimeError):
    """A lakecast command exited non-zero; the message carries its last output lines."""


def _run(args: list[str], home: Path, log: Path) -> str:
    env = {**os.environ, "LAKECAST_HOME": str(home)}
    proc = subprocess.run([LAKECAST, *args], env=env, capture_output=True, text=True, check=False)
    with log.open("a") as fh:
        fh.write(f"$ lakecast {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LakecastFailed(f"`lakecast {' '.join(args[:2])}` exited {proc.returncode} (log: {log}):\n{tail}")
    return proc.stdout


def export(name: str, out_dir: Path, home: Path, log: Path) -> Path:
    """`lakecast datasets export NAME DIR`; the file it writes."""
    _run(["datasets", "export", name, str(out_dir)], home, log)
    return out_dir / f"{name}.csv"


def run(train_csv: Path, origin_iso: str, series: list[str], horizon: int, settings: dict[str, str],
        home: Path, log: Path) -> LakecastRun:
    """Ingest the training file, train, predict at the holdout origin; forecasts as arrays."""
    # The repository's Ivy cache, as every other benchmark: a fresh home would otherwise resolve
    # the Delta JARs from Maven Central on its first command (about 35 s, once per machine for a user).
    sets = [a for k, v in {"spark.ivy_dir": str(IVY), **settings}.items() for a in ("--set", f"{k}={v}")]
    seconds: dict[str, float] = {}
    steps = {
        "ingest": ["ingest", str(train_csv), "--freq", settings["data.freq"]],
        "train": ["train"],
        "predict": ["predict", "--as-of", origin_iso],
    }
    for name, args in steps.items():
        t0 = time.perf_counter()
        _run([*args, *sets], home, log)
        seconds[name] = time.perf_counter() - t0
        print(f"  lakecast {name}: {seconds[name]:.1f} s", flush=True)
    out = _run(["sql", "SELECT series_id, horizon_step, p10, p50, p90 FROM forecasts_latest",
                "--format", "csv", "--limit", "0", *sets], home, log)
    return LakecastRun(*_arrays(out, series, horizon), seconds)


def _arrays(csv_text: str, series: list[str], horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`lakecast sql --format csv` rows -> p10, p50, p90 as (series, h) arrays in `series` order."""
    pos = {s: i for i, s in enumerate(series)}
    out = np.full((3, len(series), horizon), np.nan)
    lines = [ln for ln in csv_text.splitlines() if ln and not ln.startswith(("WARNING", "SLF4J"))]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("series_id,"))
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        i, k = pos.get(row["series_id"]), int(row["horizon_step"]) - 1
        if i is not None and 0 <= k < horizon:
            out[:, i, k] = [float(row["p10"]), float(row["p50"]), float(row["p90"])]
    return out[0], out[1], out[2]
