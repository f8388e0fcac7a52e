"""The MLflow model registry as lakecast uses it: versions of `model.name`, aliases, downloads.

`champion` is the live version (what scoring uses), `challenger` the newest trained one.
Callers resolve an alias to a FIXED version once (`resolve`) and use that version for the
whole run, so an alias moved mid-run changes nothing. The URIs come from the configuration
and are only applied when a job calls `use_tracking` (never at import).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.secrets import reveal

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
_COMPLETE = ".lakecast-download-complete"


class RegistryError(LakecastError):
    """The registry lacks what was asked for; the message lists what it has."""


class ModelNotFoundError(RegistryError):
    pass


class AliasNotFoundError(RegistryError):
    pass


class VersionNotFoundError(RegistryError):
    pass


@dataclass(frozen=True)
class ModelRef:
    """One fixed registered model version (what an alias pointed at when it was resolved)."""

    name: str
    version: str
    run_id: str | None
    alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def export_credentials(cfg: LakecastConfig) -> None:
    """Hand the configured MLflow/S3 credentials to MLflow the only way it takes them: its env vars.

    Unset keys leave the environment alone (credentials may come from it directly).
    """
    m = cfg.mlflow
    values = {"MLFLOW_TRACKING_USERNAME": m.tracking_username, "MLFLOW_S3_ENDPOINT_URL": m.s3_endpoint_url,
              "MLFLOW_TRACKING_PASSWORD": m.tracking_password and reveal(m.tracking_password),
              "AWS_ACCESS_KEY_ID": m.s3_access_key_id and reveal(m.s3_access_key_id),
              "AWS_SECRET_ACCESS_KEY": m.s3_secret_access_key and reveal(m.s3_secret_access_key)}
    os.environ.update({k: v for k, v in values.items() if v})


def client(cfg: LakecastConfig) -> MlflowClient:
    """A client bound to the configured tracking and registry URIs, with the configured credentials."""
    export_credentials(cfg)
    return MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=cfg.registry_uri)


def use_tracking(cfg: LakecastConfig) -> str:
    """Point this process's MLflow at the configured store; ensure the experiment exists.

    The experiment's artifacts go under `cfg.artifact_root` (inside the home), not the working
    directory. Returns the experiment id. Called by jobs, never at import time.
    """
    cfg.home.mkdir(parents=True, exist_ok=True)
    export_credentials(cfg)
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.registry_uri)
    name = cfg.mlflow.experiment
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        exp_id = mlflow.create_experiment(name, artifact_location=(cfg.artifact_root / name).as_uri())
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def _ref(mv: ModelVersion, alias: str | None = None) -> ModelRef:
    return ModelRef(name=mv.name, version=str(mv.version), run_id=mv.run_id, alias=alias, tags=dict(mv.tags))


def aliases(cfg: LakecastConfig, name: str | None = None) -> dict[str, str]:
    """Alias -> version of the registered model; raises ModelNotFoundError when it is not registered."""
    name = name or cfg.model.name
    c = client(cfg)
    try:
        rm = c.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = sorted(m.name for m in c.search_registered_models())
        raise ModelNotFoundError(
            f"registered model {name!r} not found in {cfg.registry_uri} (registered: "
            f"{', '.join(known) or 'none'}); run `lakecast train` first or check model.name"
        ) from None
    return {str(k): str(v) for k, v in (rm.aliases or {}).items()}


def role_of(cfg: LakecastConfig, ref: ModelRef) -> str:
    """The version's role now: `champion` or `challenger` when that alias points at it, else `other`
    (written on each forecast, so accuracy can be told apart by role as it was when scored)."""
    current = aliases(cfg, ref.name)
    for role in (CHAMPION, CHALLENGER):
        if current.get(role) == str(ref.version):
            return role
    return "other"


def backtest_mase(cfg: LakecastConfig, name: str, version: str) -> float | None:
    """The version's backtest MASE logged at training (`test_lstm_mase`); None when unknown."""
    try:
        c = client(cfg)
        run_id = c.get_model_version(name, str(version)).run_id
        return c.get_run(run_id).data.metrics.get("test_lstm_mase") if run_id else None
    except MlflowException:
        return None


def resolve(cfg: LakecastConfig, *, alias: str | None = None, version: str | int | None = None,
            name: str | None = None) -> ModelRef:
    """The fixed version an alias points at now, or a given version; clear errors when missing.

    Exactly one of `alias` and `version` must be given.
    """
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias= or version=")
    name = name or cfg.model.name
    current = aliases(cfg, name)
    if alias is not None:
        if alias not in current:
            have = ", ".join(f"{a} -> v{v}" for a, v in sorted(current.items())) or "none"
            raise AliasNotFoundError(
                f"registered model {name!r} has no alias {alias!r} (aliases: {have}); "
                f"train a model or run `lakecast promote --version N` to set one"
            )
        version = current[alias]
    c = client(cfg)
    try:
        mv = c.get_model_version(name, str(version))
    except MlflowException as e:
        if e.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        known = sorted(int(v.version) for v in c.search_model_versions(f"name='{name}'"))
        raise VersionNotFoundError(
            f"registered model {name!r} has no version {version} (versions: "
            f"{', '.join(map(str, known)) or 'none'})"
        ) from None
    return _ref(mv, alias)


def register(cfg: LakecastConfig, model_uri: str, *, run_id: str, tags: dict[str, str] | None = None,
             ) -> tuple[ModelRef, bool]:
    """Register a new version of `model.name` and make it `challenger`.

    When the model has no `champion` yet, the new version becomes champion too (returned
    flag), so the registry always has a live version once anything was trained.
    """
    name = cfg.model.name
    c = client(cfg)
    try:
        c.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        c.create_registered_model(name, description="lakecast global LSTM forecaster (p10/p50/p90)")
    mv = c.create_model_version(name, model_uri, run_id=run_id, tags=tags or {})
    version = str(mv.version)
    c.set_registered_model_alias(name, CHALLENGER, version)
    first = CHAMPION not in aliases(cfg, name)
    if first:
        c.set_registered_model_alias(name, CHAMPION, version)
        c.set_model_version_tag(name, version, "promotion.decision", "first version: champion by default")
    log.info("registered %s version %s as %s%s", name, version, CHALLENGER,
             f" and {CHAMPION}" if first else "")
    return resolve(cfg, version=version, name=name), first


def set_alias(cfg: LakecastConfig, alias: str, version: str, name: str | None = None) -> None:
    """Point `alias` at `version` (one atomic update: the alias is never absent)."""
    client(cfg).set_registered_model_alias(name or cfg.model.name, alias, str(version))


def tag_version(cfg: LakecastConfig, version: str, tags: dict[str, str], name: str | None = None) -> None:
    c = client(cfg)
    for k, v in tags.items():
        c.set_model_version_tag(name or cfg.model.name, str(version), k, str(v))


def download_version(cfg: LakecastConfig, ref: ModelRef, dst_root: str | Path | None = None) -> Path:
    """Copy a version's model files to `dst_root/<name>/<version>` and return that folder.

    Versions are immutable, so a complete earlier download is reused (no registry call);
    a half-finished one is replaced. Defaults under `<home>/model_cache`.
    """
    root = Path(dst_root) if dst_root is not None else cfg.home / "model_cache"
    dst = root / ref.name / ref.version
    if (dst / _COMPLETE).is_file():
        return dst
    tmp = root / ref.name / f".{ref.version}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        # The storage location of the version's files, resolved with this config's client:
        # a `models:/` URI would be resolved against the process-global registry instead.
        source = client(cfg).get_model_version_download_uri(ref.name, ref.version)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp),
                                                         tracking_uri=cfg.tracking_uri))
        (local / _COMPLETE).write_text(f"{ref.uri} {source}")
        if dst.exists():  # an incomplete earlier attempt
            shutil.rmtree(dst, ignore_errors=True)
        try:
            local.rename(dst)
        except OSError:
            if not (dst / _COMPLETE).is_file():  # not a concurrent download that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("downloaded %s to %s", ref.uri, dst)
    return dst
