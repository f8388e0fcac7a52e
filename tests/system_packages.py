"""Debian packages a test needs (chromium, the compose client): installed with apt-get on first
use when missing, as root (the CI machine); elsewhere the caller skips with the command to run."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_packages(packages: tuple[str, ...], binaries: tuple[str, ...]) -> tuple[str, ...] | str:
    """Paths of `binaries`, installing Debian `packages` with apt-get when one is missing (as root,
    the CI machine); else why not (a string: the command to run)."""
    def found() -> tuple[str, ...] | None:
        paths = [shutil.which(b) for b in binaries]
        return tuple(p for p in paths if p) if all(paths) else None

    have = found()
    if have:
        return have
    if os.geteuid() != 0:
        return f"{' / '.join(binaries)} not installed and not root: sudo apt-get install -y {' '.join(packages)}"
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, text=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=900)
        res = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            raise RuntimeError(f"apt-get could not install {' '.join(packages)}:\n{res.stderr[-2000:]}")
    have = found()
    if not have:
        raise RuntimeError(f"{' '.join(packages)} installed but {' / '.join(binaries)} not on PATH")
    return have
