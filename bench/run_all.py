"""`make bench`: run every benchmark script in bench/ (each `python -m bench.<name>`), one after another.

Each runs in its own process (its own SparkSession and JVM) with its default sizes; name
scripts to run only those (`python -m bench.run_all scoring_bench`). Prints each script's
output as it comes, then all RESULT lines together. Exits non-zero if any script failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SKIP = {"__init__", "run_all"}


def scripts(only: list[str] | None = None) -> list[str]:
    """Module names of the bench scripts (`*_bench.py` and any other module but this one), sorted."""
    names = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_"))
    return [n for n in names if not only or n in only]


def main(argv: list[str]) -> int:
    results: list[str] = []
    failed: list[str] = []
    for name in scripts(argv or None):
        print(f"\n=== bench.{name} ===", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=BENCH.parent,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("RESULT "):
                results.append(f"{line.strip()}  [{name}]")
        if proc.wait() != 0:
            failed.append(name)
        took = time.perf_counter() - t0
        print(f"=== bench.{name}: exit {proc.returncode} after {took:.0f} s ===", flush=True)
    print("\n=== all RESULT lines ===")
    print("\n".join(results))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
