"""Run one `lakecast` command as a fresh process, timed: what the command-level benchmarks share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IVY = REPO / ".lakecast" / "ivy"  # the repository's Ivy cache: no benchmark downloads the Delta JARs again


def timed_lakecast(home: Path, args: tuple[str, ...], sets: list[str], *, env: dict[str, str] | None = None,
                   what: str = "") -> tuple[float, str]:
    """(wall seconds, stdout) of `lakecast ARGS --set spark.ivy_dir=... --set S ...` in `home`;
    a failure stops the benchmark with the command's output."""
    sets = [f"spark.ivy_dir={IVY}", *sets]
    full_env = {**os.environ, "LAKECAST_HOME": str(home), **(env or {})}
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "lakecast"), *args, *[x for s in sets for x in ("--set", s)]],
                         capture_output=True, text=True, env=full_env, cwd=REPO)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"lakecast {' '.join(args)}{what} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return took, res.stdout
