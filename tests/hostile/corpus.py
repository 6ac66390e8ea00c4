"""Hostile configurations and playbooks, generated: what an attacker or bad luck writes.

Each `Case` is one file (or one special path: a FIFO, `/dev/zero`, a
directory) and what the single error line must name: the key path, and the
file. The kinds: input that never ends (alias bombs, deep nesting, huge and
endless files), YAML tags, NUL characters, numbers too large to read, and
values that parse but mean nothing (inverted thresholds, percentages over
100, zero intervals, ports above 65535, addresses and URLs that are not, an
unknown time zone, a `wait` with nothing to wait for, `timeout: [1]`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes | None
    names: tuple[str, ...]
    """What the one error line must contain (key path, file name)."""
    make: Callable[[Path, Path], None] | None = None
    """Builds the file at the given path (special files) when `text` is None."""
    args: tuple[str, ...] = field(default=())
    """Extra command-line arguments."""


def billion_laughs(indent: str = "") -> str:
    """Nine levels of nine aliases: 9^9 values once expanded."""
    out = f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        out += f"{indent}l{i}: &l{i} [{refs}]\n"
    return out


def many_aliases(n: int) -> str:
    return "x: &x 1\nmany: [" + ", ".join(["*x"] * n) + "]\n"


def deep_flow(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_block(depth: int, indent: str = "") -> str:
    return (
        "".join(f"{indent}{'  ' * i}k{i}:\n" for i in range(depth)) + f"{indent}{'  ' * depth}v\n"
    )


def fifo(path: Path, _: Path) -> None:
    os.mkfifo(path)


def dev_zero(path: Path, _: Path) -> None:
    path.symlink_to("/dev/zero")


def directory(path: Path, _: Path) -> None:
    path.mkdir()


def sparse(size: int) -> Callable[[Path, Path], None]:
    def make(path: Path, _: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return make


def huge_yaml(size: int, prefix: str = "") -> Callable[[Path, Path], None]:
    def make(path: Path, _: Path) -> None:
        line = b"- padding padding padding padding padding padding padding padding\n"
        with path.open("wb") as f:
            f.write(prefix.encode())
            f.write(b"pad:\n")
            for _i in range(size // len(line) + 1):
                f.write(line)

    return make


# --- configurations -------------------------------------------------------------------

CONFIG = "c.yaml"
BASE = """\
state_dir: ./state
encryption: {key_file: ./k}
targets:
  local: {kind: filesystem, path: ./store}
"""
SOURCE = "sources:\n  reg: {kind: sqlite, path: ./reg.db, targets: [local]}\n"


def cfg(extra: str = "", *, source: str = SOURCE) -> str:
    return BASE + source + extra


def src(fields: str) -> str:
    return cfg(
        source=f"sources:\n  reg: {{kind: sqlite, path: ./reg.db, targets: [local], {fields}}}\n"
    )


def gov(signals: str, extra: str = "") -> str:
    return cfg(f"governor:\n  signals:\n    {signals}\n{extra}")


def s3(fields: str) -> str:
    return BASE + f"  off: {{kind: s3, bucket: b, {fields}}}\n" + SOURCE


def write_regular_file(name: str) -> Callable[[Path, Path], None]:
    def make(path: Path, folder: Path) -> None:
        (folder / name).write_text("not a directory\n")
        path.write_text(BASE.replace("./state", f"./{name}") + SOURCE)

    return make


PLAYBOOK_OK = """\
apiVersion: recoveryd/v1
kind: Drill
name: ok
vars: {target: db}
steps:
  - {name: s, run: [echo, "{{ target }}"]}
"""


def with_playbook(drill: str) -> Callable[[Path, Path], None]:
    def make(path: Path, folder: Path) -> None:
        (folder / "p.yaml").write_text(PLAYBOOK_OK)
        path.write_text(cfg(drill))

    return make


C = CONFIG
CONFIG_CASES: list[Case] = [
    # input that never ends, or explodes
    Case("alias-bomb", cfg("x:\n" + billion_laughs("  ")), (C,)),
    Case("alias-bomb-top", billion_laughs() + cfg(), (C,)),
    Case("alias-bomb-in-source", src("exclude: *l9") + billion_laughs(), (C,)),
    Case("alias-recursive", cfg("x: &a [*a]\n"), (C, "x[0]")),
    Case("alias-recursive-map", cfg("x: &a {y: *a}\n"), (C, "x.y")),
    Case("too-many-aliases", cfg(many_aliases(400)), (C, "many")),
    Case("deep-flow", cfg("x: " + deep_flow(5000) + "\n"), (C, "x")),
    Case("deep-block", cfg("x:\n" + deep_block(200, "  ")), (C, "x.k0")),
    Case("deep-map-flow", cfg("x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"), (C, "x.a")),
    Case("many-values", cfg("x: [" + ",".join(["1"] * 60000) + "]\n"), (C, "x")),
    Case("fifo", None, (C, "named pipe"), make=fifo),
    Case("dev-zero", None, (C, "device"), make=dev_zero),
    Case("directory", None, (C, "directory"), make=directory),
    Case("50MB-zeros", None, (C, "larger than"), make=sparse(50 * 1024 * 1024)),
    Case("50MB-yaml", None, (C, "larger than"), make=huge_yaml(50 * 1024 * 1024, BASE)),
    Case("300KB-yaml", None, (C, "larger than"), make=huge_yaml(300 * 1024, BASE)),
    Case(
        "int-5000-digits",
        cfg("daemon: {max_concurrent_jobs: " + "9" * 5000 + "}\n"),
        (C, "daemon.max_concurrent_jobs"),
    ),
    Case(
        "bad-timestamp", cfg("daemon: {prune_schedule: 2026-13-45}\n"), (C, "daemon.prune_schedule")
    ),
    # tags
    Case("tag-include", cfg("governor: !include other.yaml\n"), (C, "governor", "tags")),
    Case(
        "tag-binary",
        BASE.replace("./k}", "!!binary aGVsbG8=}") + SOURCE,
        (C, "encryption.key_file"),
    ),
    Case("tag-python-apply", cfg("x: !!python/object/apply:os.system [touch pwned]\n"), (C, "x")),
    Case("tag-python-name", cfg("x: !!python/name:os.system\n"), (C, "x")),
    Case("tag-python-module", cfg("x: !!python/module:os\n"), (C, "x")),
    Case("tag-set", cfg("x: !!set {a, b}\n"), (C, "x")),
    Case("tag-local", cfg("daemon: {timezone: !env TZ}\n"), (C, "daemon.timezone")),
    Case("tag-on-key", cfg("!!str daemon: {}\n"), (C,)),
    # NUL, encodings, structure
    Case(
        "nul-raw-state-dir", cfg().replace("./state", "./st\0ate").encode(), (C, "state_dir", "NUL")
    ),
    Case("nul-escaped-path", src('exclude: ["a\\0b"]'), (C, "sources.reg.exclude[0]", "NUL")),
    Case(
        "nul-escaped-sqlite-path",
        cfg(source='sources:\n  reg: {kind: sqlite, path: "./r\\0.db", targets: [local]}\n'),
        (C, "sources.reg.path", "NUL"),
    ),
    Case(
        "nul-in-probe-command",
        gov('command: {run: ["echo\\0", x], value: {elevated: 1, critical: 2}}'),
        (C, "governor.signals.command.run[0]", "NUL"),
    ),
    Case("nul-in-key", cfg('"da\\0emon": {}\n'), (C, "NUL")),
    Case("not-utf8", cfg("language: \xe9\n").encode("latin-1"), (C, "UTF-8")),
    Case("duplicate-key", cfg("language: en\nlanguage: zh\n"), (C, "language", "duplicate")),
    Case("top-level-list", "- a\n- b\n", (C, "mapping")),
    Case("two-documents", cfg() + "---\n" + cfg(), (C, "YAML")),
    Case("complex-key", cfg("? [a, b]\n: c\n"), (C, "keys must be plain")),
    # values that parse but mean nothing
    Case(
        "inverted-cpu",
        gov("cpu: {elevated: 90, critical: 70}"),
        (C, "governor.signals.cpu.critical"),
    ),
    Case(
        "inverted-load",
        gov("load: {elevated: 8, critical: 8}"),
        (C, "governor.signals.load.critical"),
    ),
    Case(
        "inverted-db-connections",
        gov("db_connections: {source: reg, active: {elevated: 50, critical: 10}}"),
        (C, "governor.signals.db_connections.active.critical"),
    ),
    Case(
        "percent-over-100",
        gov("memory: {elevated: 50, critical: 150}"),
        (C, "governor.signals.memory.critical"),
    ),
    Case(
        "pressure-over-100",
        gov("io_pressure: {elevated: 50, critical: 101}"),
        (C, "governor.signals.io_pressure.critical"),
    ),
    Case(
        "threshold-infinite",
        gov("load: {elevated: 1, critical: .inf}"),
        (C, "governor.signals.load.critical"),
    ),
    Case(
        "threshold-nan",
        gov("load: {elevated: .nan, critical: 4}"),
        (C, "governor.signals.load.elevated"),
    ),
    Case(
        "threshold-astronomical",
        gov("load: {elevated: 1, critical: 1.0e+300}"),
        (C, "governor.signals.load.critical"),
    ),
    Case(
        "exit-ratio-2",
        gov("cpu: {elevated: 50, critical: 80, exit_ratio: 2}"),
        (C, "governor.signals.cpu.exit_ratio"),
    ),
    Case("governor-interval-zero", cfg("governor: {interval: 0s}\n"), (C, "governor.interval")),
    Case(
        "governor-timeout-list",
        gov("command: {run: [echo, '1'], timeout: [1], value: {elevated: 1, critical: 2}}"),
        (C, "governor.signals.command.timeout"),
    ),
    Case(
        "probe-timeout-mapping",
        gov(
            "service_latency: {http: {url: 'http://127.0.0.1:8080/', timeout: {a: 1}},"
            " p95_ms: {elevated: 1, critical: 2}}"
        ),
        (C, "governor.signals.service_latency.http.timeout"),
    ),
    Case(
        "probe-url-no-scheme",
        gov("service_latency: {http: {url: 'localhost:80'}, p95_ms: {elevated: 1, critical: 2}}"),
        (C, "governor.signals.service_latency.http.url"),
    ),
    Case(
        "throttled-bandwidth-zero",
        cfg("governor: {throttled_bandwidth: 0}\n"),
        (C, "governor.throttled_bandwidth"),
    ),
    Case("hold-enter-bool", cfg("governor: {hold: {enter: true}}\n"), (C, "governor.hold.enter")),
    Case(
        "fleet-lease-short",
        cfg("fleet: {coordination: 'etcd3+http://127.0.0.1:2379', lease: 2s}\n"),
        (C, "fleet.lease", "5s or more"),
    ),
    Case(
        "fleet-url-scheme",
        cfg("fleet: {coordination: ['http://127.0.0.1:2379']}\n"),
        (C, "fleet.coordination[0]", "etcd3+http://"),
    ),
    Case("fleet-no-coordination", cfg("fleet: {group: g}\n"), (C, "fleet", "coordination")),
    Case(
        "fleet-serves-bad-label",
        cfg("fleet: {coordination: 'etcd3+http://e1:2379', serves: ['core site']}\n"),
        (C, "fleet.serves[0]"),
    ),
    Case("source-site-bad", src("site: 'a/b'"), (C, "sources.reg.site")),
    Case("rpo-zero", src("rpo: 0s"), (C, "sources.reg.rpo")),
    Case("rpo-negative", src("rpo: -5s"), (C, "sources.reg.rpo")),
    Case("rpo-astronomical", src("rpo: 99999999999999999999d"), (C, "sources.reg.rpo")),
    Case(
        "retention-astronomical",
        src("retention: {keep_last: 100000000000000000000000000000}"),
        (C, "sources.reg.retention.keep_last"),
    ),
    Case(
        "retention-within-zero", src("retention: {within: 0s}"), (C, "sources.reg.retention.within")
    ),
    Case(
        "restore-drill-rto-zero",
        src("restore_drill: {into: ./x.db, rto: 0}"),
        (C, "sources.reg.restore_drill.rto"),
    ),
    Case(
        "classification-newline", src('classification: "a\\nb"'), (C, "sources.reg.classification")
    ),
    Case(
        "unknown-target",
        src("targets: [local, ofsite]").replace("targets: [local], ", ""),
        (C, "sources.reg.targets[1]"),
    ),
    Case("bad-cron", src('schedule: "61 * * * *"'), (C, "sources.reg.schedule")),
    Case(
        "host-port-70000",
        cfg("hosts:\n  h: {address: db1, port: 70000, user: u, key_file: k, known_hosts: kh}\n"),
        (C, "hosts.h.port"),
    ),
    Case(
        "host-address-bad",
        cfg("hosts:\n  h: {address: 'bad host!', user: u, key_file: k, known_hosts: kh}\n"),
        (C, "hosts.h.address"),
    ),
    Case(
        "host-connect-timeout-zero",
        cfg(
            "hosts:\n  h: {address: db1, user: u, key_file: k, known_hosts: kh,"
            " connect_timeout: 0}\n"
        ),
        (C, "hosts.h.connect_timeout"),
    ),
    Case("listen-not-address", cfg("metrics: {listen: banana}\n"), (C, "metrics.listen")),
    Case("listen-port-99999", cfg("metrics: {listen: '127.0.0.1:99999'}\n"), (C, "metrics.listen")),
    Case("listen-no-port", cfg("metrics: {listen: '127.0.0.1:'}\n"), (C, "metrics.listen")),
    Case("listen-bad-host", cfg("metrics: {listen: 'a b:9187'}\n"), (C, "metrics.listen")),
    Case("state-dir-regular-file", None, (C, "state_dir"), make=write_regular_file("afile")),
    Case("state-dir-empty", cfg().replace("./state", "' '"), (C, "state_dir")),
    Case("s3-endpoint-not-url", s3("endpoint_url: 'not a url'"), (C, "targets.off.endpoint_url")),
    Case("s3-endpoint-ftp", s3("endpoint_url: 'ftp://store'"), (C, "targets.off.endpoint_url")),
    Case(
        "s3-endpoint-port-0", s3("endpoint_url: 'http://store:0'"), (C, "targets.off.endpoint_url")
    ),
    Case("s3-part-size-tiny", s3("part_size: 1KiB"), (C, "targets.off.part_size")),
    Case(
        "s3-object-lock-zero",
        s3("object_lock: {mode: compliance, days: 0}"),
        (C, "targets.off.object_lock.days"),
    ),
    Case("s3-concurrency-zero", s3("upload_concurrency: 0"), (C, "targets.off.upload_concurrency")),
    Case(
        "s3-bandwidth-astronomical",
        s3("max_bandwidth: 10000000000000000000000000000000000000000"),
        (C, "targets.off.max_bandwidth"),
    ),
    Case(
        "s3-bucket-slash",
        s3("prefix: p").replace("bucket: b", "bucket: 'a/b'"),
        (C, "targets.off.bucket"),
    ),
    Case(
        "unknown-timezone",
        src('schedule: "0 3 * * *"') + "daemon: {timezone: Mars/Olympus_Mons}\n",
        (C, "daemon.timezone"),
    ),
    Case(
        "jobs-astronomical",
        cfg("daemon: {max_concurrent_jobs: 1000000}\n"),
        (C, "daemon.max_concurrent_jobs"),
    ),
    Case("jitter-words", cfg("daemon: {jitter: forever}\n"), (C, "daemon.jitter")),
    Case(
        "webhook-not-url", cfg("notify:\n  - {kind: webhook, url: hooks}\n"), (C, "notify[0].url")
    ),
    Case(
        "email-not-address",
        cfg("notify:\n  - {kind: email, to: [nobody], smtp: mail}\n"),
        (C, "notify[0].to[0]"),
    ),
    Case(
        "smtp-port-99999",
        cfg("notify:\n  - {kind: email, to: [a@b.org], smtp: 'mail:99999'}\n"),
        (C, "notify[0].smtp"),
    ),
    Case(
        "drill-var-typo",
        None,
        ("p.yaml", "vars", "nmae"),
        make=with_playbook(
            'drills:\n  - {playbook: ./p.yaml, schedule: "0 4 * * *", vars: {nmae: x}}\n'
        ),
    ),
    Case(
        "drill-schedule-empty",
        None,
        (C, "drills[0].schedule"),
        make=with_playbook('drills:\n  - {playbook: ./p.yaml, schedule: ""}\n'),
    ),
]


# --- playbooks ------------------------------------------------------------------------

PLAYBOOK = "p.yaml"
HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: hostile
vars: {target: db, name: x}
"""


def book(steps: str, extra: str = "") -> str:
    return HEAD + extra + "steps:\n" + steps


def step(body: str) -> str:
    return f"  - {{name: s, {body}}}\n"


def include_of(target: str) -> Callable[[Path, Path], None]:
    def make(path: Path, folder: Path) -> None:
        path.write_text(book(step(f"include: {target}")))

    return make


def include_cycle(path: Path, folder: Path) -> None:
    (folder / "q.yaml").write_text(book(step(f"include: {path.name}")))
    path.write_text(book(step("include: q.yaml")))


def include_fifo(path: Path, folder: Path) -> None:
    os.mkfifo(folder / "pipe.yaml")
    path.write_text(book(step("include: pipe.yaml")))


P = PLAYBOOK
PLAYBOOK_CASES: list[Case] = [
    Case("alias-bomb", billion_laughs() + book(step("run: [echo, a]")), (P,)),
    Case("alias-bomb-in-step", billion_laughs() + book(step("run: *l9")), (P,)),
    Case("alias-recursive", book(step("run: &a [echo, *a]")), (P, "steps[0].run")),
    Case("too-many-aliases", many_aliases(400) + book(step("run: [echo, a]")), (P, "many")),
    Case("deep-flow", book(step("run: " + deep_flow(5000))), (P, "steps")),
    Case("deep-block", book(step("run: [echo]"), "x:\n" + deep_block(200, "  ")), (P, "x.k0")),
    Case("many-values", book(step("run: [" + ",".join(["a"] * 60000) + "]")), (P, "steps[0].run")),
    Case("fifo", None, (P, "named pipe"), make=fifo),
    Case("dev-zero", None, (P, "device"), make=dev_zero),
    Case("directory", None, (P, "directory"), make=directory),
    Case("50MB-zeros", None, (P, "larger than"), make=sparse(50 * 1024 * 1024)),
    Case("50MB-yaml", None, (P, "larger than"), make=huge_yaml(50 * 1024 * 1024, HEAD)),
    Case(
        "tag-include",
        book(step("run: [echo]")).replace("steps:", "include: !include x.yaml\nsteps:"),
        (P, "include", "tags"),
    ),
    Case(
        "tag-python",
        book(step("run: !!python/object/apply:os.system [touch pwned]")),
        (P, "steps[0].run"),
    ),
    Case("tag-binary", book(step("sql: !!binary U0VMRUNUIDE=, on: db")), (P, "steps[0].sql")),
    Case("nul-raw", book(step("run: [echo, a\0b]")).encode(), (P, "steps[0]", "NUL")),
    Case("nul-escaped-run", book(step('run: [echo, "a\\0b"]')), (P, "steps[0].run[1]", "NUL")),
    Case(
        "nul-escaped-sql", book(step('sql: "SELECT 1\\0", on: ./x.db')), (P, "steps[0].sql", "NUL")
    ),
    Case("nul-in-env", book(step('run: [env], env: {A: "x\\0y"}')), (P, "steps[0].env.A", "NUL")),
    Case("not-utf8", book(step("run: [echo, \xe9]")).encode("latin-1"), (P, "UTF-8")),
    Case(
        "int-5000-digits",
        book(step("run: [echo], retries: " + "9" * 5000)),
        (P, "steps[0].retries"),
    ),
    Case("timeout-list", book(step("run: [echo], timeout: [1]")), (P, "steps[0].timeout")),
    Case("timeout-zero", book(step("run: [echo], timeout: 0s")), (P, "steps[0].timeout")),
    Case("timeout-infinite", book(step("run: [echo], timeout: .inf")), (P, "steps[0].timeout")),
    Case(
        "timeout-astronomical",
        book(step("run: [echo], timeout: 100000000000000000000000d")),
        (P, "steps[0].timeout"),
    ),
    Case("interval-zero", book(step("run: [echo], interval: 0")), (P, "steps[0].interval")),
    Case("delay-nan", book(step("run: [echo], delay: .nan")), (P, "steps[0].delay")),
    Case("sleep-list", book(step("sleep: [1]")), (P, "steps[0].sleep")),
    Case("sleep-words", book(step("sleep: forever")), (P, "steps[0].sleep")),
    Case(
        "retries-astronomical",
        book(step("run: [echo], retries: 1000000000")),
        (P, "steps[0].retries"),
    ),
    Case("wait-nothing", book(step("wait: {expect: 1}")), (P, "steps[0].wait")),
    Case("wait-empty", book(step("wait: {}")), (P, "steps[0].wait")),
    Case(
        "wait-two-probes",
        book(step("wait: {run: [echo], http: {url: 'http://a/'}}")),
        (P, "steps[0].wait"),
    ),
    Case("wait-sql-no-on", book(step("wait: {sql: SELECT 1}")), (P, "steps[0].wait")),
    Case("http-not-url", book(step("http: {url: localhost}")), (P, "steps[0].http.url")),
    Case(
        "http-timeout-negative",
        book(step("http: {url: 'http://a/', timeout: -1}")),
        (P, "steps[0].http.timeout"),
    ),
    Case("rto-zero", book(step("run: [echo]"), "objectives: {rto: 0s}\n"), (P, "objectives.rto")),
    Case(
        "approvals-timeout-zero",
        book(step("run: [echo]"), "approvals: {timeout: 0}\n"),
        (P, "approvals.timeout"),
    ),
    Case(
        "fault-port-70000",
        book(step("fault: {action: block_port, port: 70000}")),
        (P, "steps[0].fault.port"),
    ),
    Case(
        "fault-fill-150",
        book(step("fault: {action: fill_disk, path: /tmp, level: 150}")),
        (P, "steps[0].fault.level"),
    ),
    Case(
        "fault-address-bad",
        book(step("fault: {action: block_port, port: 1, address: 'no where'}")),
        (P, "steps[0].fault.address"),
    ),
    Case(
        "host-port-70000",
        book(
            step("run: [echo]"),
            "hosts:\n  h: {address: a, port: 70000, user: u, key_file: k, known_hosts: kh}\n",
        ),
        (P, "hosts.h.port"),
    ),
    Case(
        "var-nested", book(step("run: [echo]")).replace("name: x}", "name: [x]}"), (P, "vars.name")
    ),
    Case("undefined-var", book(step('run: [echo, "{{ nmae }}"]')), (P, "steps[0].run[1]", "nmae")),
    Case("duplicate-key", book(step("run: [echo], run: [true]")), (P, "steps[0].run", "duplicate")),
    Case("no-steps", HEAD + "steps: []\n", (P, "steps")),
    Case("unknown-kind", book(step("rnu: [echo]")), (P, "steps[0].rnu")),
    Case("include-cycle", None, (P, "cycle"), make=include_cycle),
    Case("include-fifo", None, (P, "steps[0].include"), make=include_fifo),
    Case("include-missing", None, (P, "steps[0].include"), make=include_of("absent.yaml")),
    Case(
        "var-typo",
        book(step('run: [echo, "{{ name }}"]')),
        (P, "vars", "nmae", "name"),
        args=("--var", "nmae=x"),
    ),
]

RUN_CASES: list[str] = [
    "alias-bomb",
    "fifo",
    "timeout-list",
    "wait-nothing",
    "nul-escaped-run",
    "var-typo",
]
"""Playbook cases also given to `drill run` (which must refuse them before anything runs)."""
