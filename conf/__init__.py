"""lakecast configuration: YAML files in this folder, validated into one typed object."""

from conf.load import ConfigError, load_config
from conf.schema import LakecastConfig

__all__ = ["ConfigError", "LakecastConfig", "load_config"]
