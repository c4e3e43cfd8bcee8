"""Command-line flags that are settings: one definition, shown with their env variable."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError
from .settings import Settings

_PREFIX = "setting__"


def env_var(field: str) -> str:
    """The environment variable of a setting."""
    return f"HHAR_{field.upper()}"


def add_setting(parser: argparse.ArgumentParser, *flags: str, field: str, **kwargs: Any) -> None:
    """Add a flag that overrides setting `field`; its help names the env variable and default.

    Boolean settings become switches (``--loop``) unless `kwargs` says otherwise.
    """
    info = Settings.model_fields[field]
    default = info.default
    shown = "unset" if default in (None, "") else getattr(default, "value", default)
    if field == "sasl_password":
        shown = "unset"
    help_text = kwargs.pop("help", info.description)
    kwargs["help"] = f"{help_text} [env: {env_var(field)}; default: {shown}]"
    if info.annotation is bool and "action" not in kwargs:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif "action" not in kwargs:
        kwargs.setdefault("metavar", field.upper())
    parser.add_argument(*flags, dest=_PREFIX + field, default=None, **kwargs)


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Build the settings: environment first, then the flags given on the command line."""
    overrides = {
        key.removeprefix(_PREFIX): value
        for key, value in vars(args).items()
        if key.startswith(_PREFIX) and value is not None
    }
    overrides |= {key: value for key, value in extra.items() if value is not None}
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_settings_error(error)) from None


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each invalid setting, its flag's env variable and the problem."""
    parts = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        where = f"{field} ({env_var(field)})" if field in Settings.model_fields else "settings"
        parts.append(f"{where}: {item['msg']}")
    return "invalid setting " + "; ".join(parts)
