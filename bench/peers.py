"""The tools bench/compare.py runs side by side, each as the commands of one round.

Every tool writes into its own fresh bucket of the same Ceph RGW store (or, for the
filesystem pipe, a directory), so stored bytes and objects are the bucket's. A tool
is a backup command, a restore command (into an empty database for the logical ones,
an empty data directory for the physical ones) and the command of its cheapest next
backup after churn. Installing the peers (`install`) never raises: a peer that cannot be
installed is reported with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PEERS_DIR = ROOT / "bench" / ".peers"
BARMAN_BIN = PEERS_DIR / "barman" / "bin"
PY = str(ROOT / ".venv" / "bin" / "python")
RESTIC_PASSWORD = "bench-only-restic-passphrase"  # noqa: S105 - a throw-away bench repository
PGBACKREST_CIPHER = "bench-only-passphrase"
# The allocator settings systemd/recoveryd.service gives the daemon: the bench measures
# what runs in production.
RECOVERYD_ENV = {"MALLOC_ARENA_MAX": "1"}


def as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass(frozen=True)
class Bench:
    """What every tool needs: the database, the store and a work directory."""

    work: Path
    pg_port: int
    pg_data: Path
    pg_sockets: Path
    endpoint: str  # http
    https_endpoint: str
    ca_file: Path
    access_key: str
    secret_key: str
    credentials_file: Path  # AWS-style, readable by postgres
    database: str = "registry"
    recoveryd_jobs: int | None = None  # None: the source's default

    def conn_args(self) -> str:
        return f"-h 127.0.0.1 -p {self.pg_port} -U postgres"

    def s3_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3PIPE_ENDPOINT": self.endpoint,
        }


@dataclass
class Tool:
    """One tool: its commands for a round on `bucket` (set by `prepare`)."""

    name: str
    label: str
    kind: str  # "logical" restores into a database; "physical" into a data directory
    bench: Bench
    bucket: str = ""
    state: dict[str, str] = field(default_factory=dict)

    def prepare(self, bucket: str, round_no: int) -> None:
        """Set up the tool's repository in a fresh bucket (not measured)."""
        self.bucket = bucket
        self.state = {"round": str(round_no)}

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        """(command, extra environment) of a backup; `step` is first, churn1 or churn2."""
        raise NotImplementedError

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        """(command, extra environment) restoring the last backup into `dest`."""
        raise NotImplementedError

    def after_backup(self, stdout: str) -> None:
        """Note what the restore needs from the backup's output."""


def _dump(b: Bench) -> str:
    return f"{PG_BIN}/pg_dump {b.conn_args()} -Fc -Z0 {b.database}"


def _pg_restore(b: Bench, db: str) -> str:
    return f"{PG_BIN}/pg_restore {b.conn_args()} --no-owner --exit-on-error -d {db}"


def recoveryd_settings(jobs: int | None = None) -> dict[str, object]:
    """What the bench's recoveryd runs with, recorded in each result: `jobs` (None: the
    configuration sets none, the default) and `init` creates a repository of the current
    format."""
    from recoveryd.repo.repoconfig import DEFAULT_PACK_SIZE
    from recoveryd.sources.factory import default_jobs

    return {
        "jobs": f"default (the cores, at most 4): {default_jobs()}" if jobs is None else jobs,
        "repository": f"format 2, packs of {DEFAULT_PACK_SIZE // 2**20} MiB",
        "environment": dict(RECOVERYD_ENV),
    }


class Recoveryd(Tool):
    """recoveryd's logical backup (`pg_dump`, `jobs` streams) restored into a database."""

    def _source(self) -> dict[str, object]:
        b = self.bench
        return {
            "kind": "postgresql",
            "dsn": f"host=127.0.0.1 port={b.pg_port} dbname={b.database} user=postgres",
            "targets": ["s3"],
            **({"jobs": b.recoveryd_jobs} if b.recoveryd_jobs else {}),
        }

    def prepare(self, bucket: str, round_no: int) -> None:
        super().prepare(bucket, round_no)
        b = self.bench
        cfg = b.work / f"{self.name}-{round_no}.yaml"
        cfg.write_text(
            json.dumps(
                {
                    "state_dir": str(b.work / f"{self.name}-state-{round_no}"),
                    "encryption": {"key_file": str(b.work / "master.key")},
                    "targets": {
                        "s3": {
                            "kind": "s3",
                            "bucket": bucket,
                            "endpoint_url": b.endpoint,
                            "region": "us-east-1",
                            "credentials_file": str(b.credentials_file),
                        }
                    },
                    "sources": {b.database: self._source()},
                },
                indent=1,
            )
        )
        self.state["config"] = str(cfg)
        subprocess.run(
            [PY, "-m", "recoveryd", "--config", str(cfg), "init"], check=True, capture_output=True
        )

    def _cli(self, *args: str) -> list[str]:
        return [PY, "-m", "recoveryd", "--config", self.state["config"], "--json", *args]

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        return self._cli("backup", self.bench.database), dict(RECOVERYD_ENV)

    def after_backup(self, stdout: str) -> None:
        snap = json.loads(stdout)["snapshots"][0]
        self.state["snapshot"] = str(snap["id"])
        self.state["stream_bytes"] = str(snap["size"])

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        b = self.bench
        dsn = f"host=127.0.0.1 port={b.pg_port} dbname={dest} user=postgres"
        return self._cli("restore", self.state["snapshot"], "--to", dsn), dict(RECOVERYD_ENV)


class RecoverydPhysical(Recoveryd):
    """recoveryd's base backup (`mode: physical`: `pg_basebackup`'s tar stream, chunked,
    deduplicated, LZ4-compressed as barman-cloud's is, encrypted), restored into an empty
    data directory: the like-for-like of pgBackRest and barman-cloud, which copy the
    cluster's files."""

    def _source(self) -> dict[str, object]:
        b = self.bench
        return {
            "kind": "postgresql",
            "mode": "physical",
            "compression": "lz4",
            "dsn": f"host=127.0.0.1 port={b.pg_port} dbname=postgres user=postgres",
            "targets": ["s3"],
        }

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        return self._cli("restore", self.state["snapshot"], "--to", dest), dict(RECOVERYD_ENV)


class PipeS3(Tool):
    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        self.state["key"] = f"{self.bench.database}-{step}.dump.zst"
        cmd = f"{_dump(self.bench)} | zstd -q -T2 -3 | {PY} {ROOT}/bench/s3pipe.py put "
        return cmd + f"{self.bucket} {self.state['key']}", self.bench.s3_env()

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        get = f"{PY} {ROOT}/bench/s3pipe.py get {self.bucket} {self.state['key']}"
        return f"{get} | zstd -q -dc | {_pg_restore(self.bench, dest)}", self.bench.s3_env()


class PipeFs(Tool):
    def _dir(self) -> Path:
        return self.bench.work / "fs" / self.bucket

    def prepare(self, bucket: str, round_no: int) -> None:
        super().prepare(bucket, round_no)
        self._dir().mkdir(parents=True)

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        out = self._dir() / f"{self.bench.database}-{step}.dump.zst"
        self.state["file"] = str(out)
        return f"{_dump(self.bench)} | zstd -q -T2 -3 -o {out} && sync {out}", {}

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        return f"zstd -q -dc {self.state['file']} | {_pg_restore(self.bench, dest)}", {}


class Restic(Tool):
    def _env(self) -> dict[str, str]:
        return {
            **self.bench.s3_env(),
            "RESTIC_REPOSITORY": f"s3:{self.bench.endpoint}/{self.bucket}",
            "RESTIC_PASSWORD": RESTIC_PASSWORD,
            "RESTIC_CACHE_DIR": str(self.bench.work / "restic-cache"),
        }

    def prepare(self, bucket: str, round_no: int) -> None:
        super().prepare(bucket, round_no)
        subprocess.run(
            ["restic", "init", "--repository-version", "2"],
            check=True,
            capture_output=True,
            env={**os.environ, **self._env()},
        )

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        name = f"{self.bench.database}.dump"
        return f"{_dump(self.bench)} | restic backup -q --stdin --stdin-filename {name}", {
            **self._env()
        }

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        name = f"{self.bench.database}.dump"
        return f"restic dump -q latest {name} | {_pg_restore(self.bench, dest)}", self._env()


class PgBackRest(Tool):
    def _conf(self) -> Path:
        return self.bench.work / f"pgbackrest-{self.state['round']}.conf"

    def prepare(self, bucket: str, round_no: int) -> None:
        super().prepare(bucket, round_no)
        b = self.bench
        # pgBackRest 2.45 matches the certificate's DNS names only (not its IP address)
        host, port = b.https_endpoint.removeprefix("https://").split(":")
        host = "localhost" if host == "127.0.0.1" else host
        for sub in ("pgbackrest-log", "pgbackrest-lock"):
            (b.work / sub).mkdir(exist_ok=True)
            shutil.chown(b.work / sub, "postgres", "postgres")
        conf = self._conf()
        conf.write_text(
            "[global]\n"
            f"repo1-type=s3\nrepo1-path=/pgbackrest\nrepo1-s3-bucket={bucket}\n"
            f"repo1-s3-endpoint={host}\nrepo1-storage-port={port}\nrepo1-s3-region=us-east-1\n"
            f"repo1-s3-uri-style=path\nrepo1-storage-ca-file={b.ca_file}\n"
            f"repo1-s3-key={b.access_key}\nrepo1-s3-key-secret={b.secret_key}\n"
            "repo1-retention-full=99\n"
            f"repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={PGBACKREST_CIPHER}\n"
            "compress-type=zst\nprocess-max=2\nstart-fast=y\narchive-check=n\n"
            f"log-path={b.work}/pgbackrest-log\nlock-path={b.work}/pgbackrest-lock\n"
            "log-level-console=warn\nlog-level-file=off\n"
            f"[{b.database}]\n"
            f"pg1-path={b.pg_data}\npg1-port={b.pg_port}\npg1-socket-path={b.pg_sockets}\n"
        )
        shutil.chown(conf, "postgres", "postgres")
        conf.chmod(0o600)
        subprocess.run([*self._cmd(), "stanza-create"], check=True, capture_output=True)

    def _cmd(self) -> list[str]:
        return as_postgres(
            "pgbackrest", f"--config={self._conf()}", f"--stanza={self.bench.database}"
        )

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        kind = "full" if step == "first" else "incr"
        return [*self._cmd(), f"--type={kind}", "backup"], {}

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        return [*self._cmd(), f"--pg1-path={dest}", "restore"], {}


class BarmanCloud(Tool):
    def _url(self) -> str:
        return f"s3://{self.bucket}/barman"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        env = f"AWS_SHARED_CREDENTIALS_FILE={self.bench.credentials_file}"
        return as_postgres(
            "env", env, str(BARMAN_BIN / tool), "--cloud-provider", "aws-s3",
            "--endpoint-url", self.bench.endpoint, *args,
        )  # fmt: skip

    def backup(self, step: str) -> tuple[list[str] | str, dict[str, str]]:
        b = self.bench
        return self._cmd(
            "barman-cloud-backup", "--lz4", "--immediate-checkpoint",
            "-h", str(b.pg_sockets), "-p", str(b.pg_port), "-U", "postgres",
            self._url(), b.database,
        ), {}  # fmt: skip

    def restore(self, dest: str) -> tuple[list[str] | str, dict[str, str]]:
        listing = subprocess.run(
            self._cmd("barman-cloud-backup-list", "--format", "json", self._url(), "registry"),
            check=True,
            capture_output=True,
            text=True,
        )
        backups = json.loads(listing.stdout)["backups_list"]
        last = max(backups, key=lambda x: str(x["backup_id"]))["backup_id"]
        return self._cmd("barman-cloud-restore", self._url(), self.bench.database, last, dest), {}


def _install_deb(package: str) -> str | None:
    """None when installed; else why not."""
    res = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-deb.sh"), package],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        return f"Debian package {package} could not be installed: {res.stderr.strip()[-300:]}"
    return None


def _install_barman() -> str | None:
    if (BARMAN_BIN / "barman-cloud-backup").exists():
        return None
    venv = BARMAN_BIN.parent
    steps = [
        ["/usr/bin/python3.11", "-m", "venv", str(venv)],
        [str(BARMAN_BIN / "pip"), "install", "--quiet", "barman[cloud,lz4]"],
    ]
    for step in steps:
        res = subprocess.run(step, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            return f"barman[cloud] could not be installed from PyPI: {res.stderr.strip()[-300:]}"
    return None


def install() -> dict[str, str | None]:
    """Install the peers that are missing; {tool name: None when ready, else the reason}."""
    return {
        "pgbackrest": _install_deb("pgbackrest"),
        "restic": _install_deb("restic"),
        "barman_cloud": _install_barman(),
    }


def make_tools(bench: Bench, missing: dict[str, str | None]) -> list[Tool]:
    """The tools of a run, recoveryd first; peers that are not installed are left out."""
    tools: list[Tool] = [
        Recoveryd("recoveryd", "recoveryd (S3)", "logical", bench),
        RecoverydPhysical(
            "recoveryd_physical", "recoveryd base backup (S3, lz4)", "physical", bench
        ),
        PipeS3("pipe_s3", "`pg_dump | zstd -T2 | upload` (S3)", "logical", bench),
        PgBackRest("pgbackrest", "pgBackRest (zst, process-max 2, TLS)", "physical", bench),
        BarmanCloud("barman_cloud", "barman-cloud (lz4)", "physical", bench),
        Restic("restic", "restic (dump on stdin)", "logical", bench),
        PipeFs("pipe_fs", "`pg_dump | zstd` (filesystem)", "logical", bench),
    ]
    return [t for t in tools if missing.get(t.name) is None]
