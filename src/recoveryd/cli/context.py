"""What every command gets: parsed global options and the configuration, loaded once on demand."""

from __future__ import annotations

import argparse

from recoveryd.config import LoadedConfig, load_config
from recoveryd.errors import ConfigError


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(args.json)
        self.log_level: str = str(args.log_level)
        self._config: LoadedConfig | None = None
        self._failure: ConfigError | None = None

    @property
    def config(self) -> LoadedConfig:
        """The validated configuration; ConfigError (exit 2) when it is not.

        The file is read once: a failed or interrupted load is remembered and
        raised again, so the audit hook asking afterwards never parses it twice.
        """
        if self._config is not None:
            return self._config
        if self._failure is not None:
            raise self._failure
        try:
            self._config = load_config(self.args.config)
        except ConfigError as exc:
            self._failure = exc
            raise
        except BaseException:
            self._failure = ConfigError("the configuration was not loaded (interrupted)")
            raise
        return self._config
