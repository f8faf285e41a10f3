"""The policy repository's configuration as the commands' defaults: found once per command
line (from the current folder up), and always beaten by an option given on the command line."""

from __future__ import annotations

from typing import Any

import click

from kvmpmu.spec.config import Config, discover

_KEY = "kvmpmu.config"


def current_config() -> Config:
    """The configuration of the command being run (none outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Config()
    meta = ctx.find_root().meta
    if _KEY not in meta:
        meta[_KEY] = discover()
    config: Config = meta[_KEY]
    return config


def default(value: Any, key: str) -> Any:
    """`value` as the command line gave it, else the configuration's `key`."""
    return value if value is not None else current_config().get(key)


def config_path(key: str) -> str | None:
    """A path the configuration gives, relative to the configuration file's folder."""
    config = current_config()
    value = config.get(key)
    return str(config.folder / value) if value is not None else None
