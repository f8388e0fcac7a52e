"""Load `conf/default.yaml`, a run's `--conf FILE`, `LAKECAST_HOME` and `--set` overrides.

Precedence, lowest first: packaged defaults, the `--conf` file, the `LAKECAST_HOME`
environment variable, then each `--set dotted.key=value` in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from conf.schema import LakecastConfig
from conf.secrets import is_secret_name, redact

DEFAULT_FILE = Path(__file__).with_name("default.yaml")


class ConfigError(ValueError):
    """Invalid configuration; the message names the key (or file) and what is wrong."""


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and k != "conf":
            out[k] = _merge(out[k], v)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _apply_set(data: dict[str, Any], item: str) -> dict[str, Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r} must look like section.key=value (e.g. train.max_epochs=5)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    # Free-form maps take the rest of the key whole: spark.conf.spark.executor.memory=4g
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = ["spark", "conf", ".".join(parts[2:])]
        value = str(value).lower() if isinstance(value, bool) else str(value)
    nested: Any = value
    for p in reversed(parts):
        nested = {p: nested}
    return _merge(data, nested)


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against conf/default.yaml)"
        elif any(is_secret_name(str(p)) for p in e["loc"]):
            pass  # never echo a secret; the message names the variable or file at fault
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {redact(e['input'])!r})"  # a section's mapping may hold a secret
        lines.append(f"{key}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(
    conf_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
) -> LakecastConfig:
    """Build the run's configuration; raises ConfigError naming the bad key."""
    env = os.environ if env is None else env
    data = _read_yaml(DEFAULT_FILE)
    if conf_file:
        data = _merge(data, _read_yaml(Path(conf_file)))
    if env.get("LAKECAST_HOME"):
        data["home"] = env["LAKECAST_HOME"]
    for item in overrides:
        data = _apply_set(data, item)
    try:
        # Secrets given as {env: VAR} read `env` (conf/secrets.py), so tests can pass their own.
        cfg = LakecastConfig.model_validate(data, context={"env": env})
    except ValidationError as e:
        raise ConfigError(_format(e)) from None
    return cfg.model_copy(update={"home": Path(cfg.home).expanduser().resolve()})
