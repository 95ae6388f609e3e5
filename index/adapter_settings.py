"""The settings the installed adapters declare: each adapter's own settings class (a subclass
of `index.settings.Settings`, adding its fields), named in its `pyproject.toml`:

    [project.entry-points."newsbot.settings"]
    bot = "bot.settings:BotSettings"

The core's commands accept those keys in `.env` (and leave them to the adapter); any other
unknown key is still a typo. `.env.example` lists them too (`index.env_example`).
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import Any

from pydantic import AliasChoices
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

log = logging.getLogger("newsbot.settings")

SETTINGS_GROUP = "newsbot.settings"


class AdapterKeysSetAside(PydanticBaseSettingsSource):
    """`.env` as `dotenv` reads it, without the keys that only an installed adapter declares:
    they are its settings, not typos, and its own settings class reads them."""

    def __init__(
        self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self.dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: `__call__` hands on what `dotenv` read

    def __call__(self) -> dict[str, Any]:
        theirs = {name.lower() for cls in adapter_settings() for name, _ in fields_of(cls)}
        theirs -= {name.lower() for name, _ in fields_of(self.settings_cls)}
        return {key: value for key, value in self.dotenv().items() if key.lower() not in theirs}


@functools.cache
def adapter_settings() -> tuple[type[BaseSettings], ...]:
    """The settings classes the installed adapters declare (`newsbot.settings` entry points);
    one that cannot be imported (its adapter's dependencies missing) is left out."""
    found = []
    for entry in sorted(entry_points(group=SETTINGS_GROUP), key=lambda e: e.name):
        try:
            found.append(entry.load())
        except ImportError as exc:
            log.debug("adapter settings %s not available: %s", entry.name, exc)
    return tuple(found)


def fields_of(cls: type[BaseSettings]) -> list[tuple[str, Any]]:
    """(environment variable name, field) of each of `cls`'s settings."""
    fields = []
    for field in cls.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        fields.append((str(alias.choices[0]), field))
    return fields
