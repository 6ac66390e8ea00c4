"""Parsing the binlog position from the head of a MySQL/MariaDB dump."""

from __future__ import annotations

import io

from recoveryd.sources.mysql import read_head

MARIADB_HEAD = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Server version\t10.11.19-MariaDB-0+deb12u1-log

--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS
--

-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=4711;

--
-- Table structure for table `citizen`
--
"""

MYSQL8_HEAD = b"""-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='mysql-bin.000012', SOURCE_LOG_POS=157;
"""


def test_mariadb_change_master_comment_gives_the_binlog_position() -> None:
    """MariaDB's `-- CHANGE MASTER TO ...` comment is parsed into file and position,
    and every byte read is handed back to be streamed first."""
    stream = io.BytesIO(MARIADB_HEAD + b"CREATE TABLE x (a int);\n" * 1000)
    head, point = read_head(stream)
    assert point == {"binlog_file": "binlog.000003", "binlog_position": "4711"}
    assert head + stream.read() == MARIADB_HEAD + b"CREATE TABLE x (a int);\n" * 1000


def test_mysql8_replication_source_comment_is_understood() -> None:
    """MySQL 8's `CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE=...` form is parsed too."""
    _, point = read_head(io.BytesIO(MYSQL8_HEAD))
    assert point == {"binlog_file": "mysql-bin.000012", "binlog_position": "157"}


def test_head_without_position_records_none() -> None:
    """With binary logging off the head holds no position: none is recorded, and reading
    stops at the first table instead of buffering the whole dump."""
    body = b"-- MariaDB dump\n--\n-- Table structure for table `x`\n" + b"INSERT 1;\n" * 100000
    stream = io.BytesIO(body)
    head, point = read_head(stream)
    assert point == {}
    assert len(head) <= 16384
    assert head + stream.read() == body
