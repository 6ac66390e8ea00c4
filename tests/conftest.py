"""Shared fixtures. Real servers (PostgreSQL, MariaDB, Ceph RGW, Swift, OpenSSH, nginx,
HTTP, SMTP, etcd) are started once per test session on 127.0.0.1 by the modules under
tests/fixtures/ and torn down at the end."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.postgres",
    "tests.fixtures.mariadb",
    "tests.fixtures.objectstores",
    "tests.fixtures.sshd",
    "tests.fixtures.web",
    "tests.fixtures.pgcluster",
    "tests.fixtures.nginx",
    "tests.fixtures.etcd",
]
