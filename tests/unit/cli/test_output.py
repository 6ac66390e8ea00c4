"""What the CLI writes to stderr never shows a secret: errors and warnings alike."""

from __future__ import annotations

import pytest

from recoveryd.cli import output
from recoveryd.secrets import REDACTOR


def test_warnings_mask_known_secrets_and_dsn_passwords(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A warning quoting a store's or tool's message (e.g. a target that could not be listed)
    masks resolved secret values and DSN/URI passwords, as error lines do."""
    REDACTOR.add("s3-secret-7Hq2")
    output.warn("target off not listed: signature s3-secret-7Hq2 rejected")
    output.warn("source pg: could not reach postgresql://backup:pg-pass-91@db1/population")
    err = capsys.readouterr().err
    assert "s3-secret-7Hq2" not in err and "pg-pass-91" not in err
    assert err.count("recoveryd: warning: ") == 2
    assert "***" in err
