"""How a PostgreSQL snapshot is split into parts, and its post-data into workers."""

from __future__ import annotations

from recoveryd.sources.pgparallel import (
    MAX_NAMED_TABLES,
    Table,
    part_arguments,
    pattern,
    plan_parts,
)


def test_large_tables_get_a_part_each_and_small_ones_are_grouped() -> None:
    """Tables go largest first to the part with the fewest bytes: two large tables get a
    part each, the small ones share the remaining part (which also takes whatever no part
    names); with more parts than tables the empty ones are dropped."""
    tables = [Table("public.big", 1000), Table("public.big2", 900)] + [
        Table(f"public.small{i}", 10) for i in range(5)
    ]
    plan = plan_parts(tables, 3)
    assert [t.name for t in plan[1]] == ["public.big"]
    assert [t.name for t in plan[2]] == ["public.big2"]
    assert len(plan[0]) == 5
    assert plan_parts([Table("public.only", 5)], 4) == [[], [Table("public.only", 5)]]
    assert plan_parts([], 4) == [[]]


def test_named_parts_are_bounded() -> None:
    """A part past the first names at most MAX_NAMED_TABLES tables (argv stays short); the
    rest fall to the first part."""
    tables = [Table(f"public.t{i}", 1) for i in range(3 * MAX_NAMED_TABLES)]
    plan = plan_parts(tables, 2)
    assert len(plan[1]) == MAX_NAMED_TABLES
    assert len(plan[0]) == 2 * MAX_NAMED_TABLES


def test_patterns_match_exactly_one_table() -> None:
    """Names as `format('%I.%I')` writes them become patterns with both parts double-quoted,
    so dots, stars, question marks and quotes in names are taken literally."""
    assert pattern("public.citizen") == '"public"."citizen"'
    assert pattern('public."Odd ""table"" *?.x"') == '"public"."Odd ""table"" *?.x"'
    assert pattern('"my schema".t') == '"my schema"."t"'


def test_part_arguments() -> None:
    """pre-data, data-1 (everything but the other parts' tables), data-2…, post-data."""
    plan = [[Table("public.a", 1)], [Table("public.b", 9)]]
    assert part_arguments(plan) == [
        ("pre-data", ["--section=pre-data"]),
        ("data-1", ["--section=data", '--exclude-table-data="public"."b"']),
        ("data-2", ["--section=data", '--table="public"."b"']),
        ("post-data", ["--section=post-data"]),
    ]
