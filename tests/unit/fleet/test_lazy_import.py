"""Without `fleet` in the configuration, the daemon and the CLI never load tooz."""

from __future__ import annotations

import subprocess
import sys


def test_the_daemon_and_the_cli_load_no_coordination_library_without_a_fleet() -> None:
    """Importing the daemon, the fleet port and the CLI's command table leaves tooz (and
    what it pulls in: futurist, which may load a distribution's eventlet) unloaded, so a
    single daemon neither pays for nor breaks on a library it does not use."""
    code = (
        "import sys\n"
        "import recoveryd.daemon.service, recoveryd.daemon.jobs, recoveryd.fleet\n"
        "import recoveryd.cli.main, recoveryd.cli.cmd_daemon, recoveryd.cli.cmd_fleet\n"
        "loaded = sorted(m for m in ('tooz', 'futurist', 'etcd3gw', 'eventlet')"
        " if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
