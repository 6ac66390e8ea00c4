"""Remote commands are built from argument lists, every argument quoted once."""

from __future__ import annotations

import shlex

import pytest

from recoveryd.errors import RemoteError
from recoveryd.remote.runner import remote_command


def test_each_argument_survives_the_remote_shell_as_one_word() -> None:
    """Whatever an argument holds, the remote shell splits the command back into the same list."""
    argv = ["pg_dump", "--dbname=host=x password='a b'", "$(reboot)", "a;b", "`id`", "", "*"]
    assert shlex.split(remote_command(argv)) == argv


def test_environment_is_passed_with_env_and_quoted() -> None:
    """Environment variables become leading `env NAME=VALUE` words, quoted like the rest."""
    line = remote_command(["psql"], {"PGPASSWORD": "x y;z"})
    assert shlex.split(line) == ["env", "PGPASSWORD=x y;z", "psql"]


def test_an_empty_command_is_refused() -> None:
    """An empty argument list is an error, not an empty remote shell."""
    with pytest.raises(RemoteError):
        remote_command([])
