"""Command-line flags that are settings: one definition, shown with their env variable."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from pydantic import ValidationError

from .errors import ConfigError
from .settings import SETTING_ERROR, Settings, env_var

_PREFIX = "setting__"

__all__ = [
    "Commands",
    "Flags",
    "add_setting",
    "default_text",
    "describe_settings_error",
    "env_var",
    "settings_from_args",
]


def default_text(field: str) -> str:
    """A setting's default as people write it ('' when it has none, or is a secret)."""
    default = Settings.model_fields[field].default
    if default in (None, "", ()) or field == "sasl_password":
        return ""
    shown = Settings.__pydantic_serializer__.to_python(
        Settings.model_construct(**{field: default}), include={field}, mode="json"
    )[field]
    return str(shown)


class Flags(Protocol):
    """What flags are added to: a parser or one of its argument groups."""

    def add_argument(self, *name_or_flags: str, **kwargs: Any) -> argparse.Action:
        """Add a flag (`argparse.ArgumentParser.add_argument`)."""
        ...


class Commands(Protocol):
    """Where commands are added: `hhar`'s sub-parsers (``add_subparsers()``)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add the parser of command `name` (`argparse` sub-parsers' ``add_parser``)."""
        ...


def add_setting(parser: Flags, *flags: str, field: str, **kwargs: Any) -> None:
    """Add a flag that overrides setting `field`; its help names the env variable and default.

    Boolean settings become switches (``--loop``) unless `kwargs` says otherwise.
    """
    info = Settings.model_fields[field]
    shown = default_text(field) or "unset"
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
    ours, parts = [], []
    for item in error.errors(include_url=False):
        if item["type"] == SETTING_ERROR:
            ours.append(item["msg"])
            continue
        field = str(item["loc"][0]) if item["loc"] else ""
        where = f"{field} ({env_var(field)})" if field in Settings.model_fields else "settings"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(ours + (["invalid setting " + "; ".join(parts)] if parts else []))
