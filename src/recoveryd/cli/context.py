"""What every command gets: parsed global options and the configuration, loaded once on demand."""

from __future__ import annotations

import argparse
from functools import cached_property

from recoveryd.config import LoadedConfig, load_config


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(args.json)
        self.log_level: str = str(args.log_level)

    @cached_property
    def config(self) -> LoadedConfig:
        """The validated configuration; ConfigError (exit 2) when it is not."""
        return load_config(self.args.config)
