"""How a PostgreSQL post-data part is split over restore workers, and its foreign keys
added NOT VALID then validated in parallel."""

from __future__ import annotations

from recoveryd.sources.pgpostdata import (
    ForeignKey,
    psql_entry,
    psql_script,
    read_foreign_keys,
    split_toc,
    validation_groups,
)

LISTING = """;
; Archive created at 2026-12-03 10:00:00 UTC
;
; Selected TOC Entries:
;
3345; 2606 16390 CONSTRAINT public citizen citizen_pkey backup
3346; 2606 16392 CONSTRAINT public region region_pkey backup
3190; 1259 16400 INDEX public citizen_name backup
3191; 1259 16401 INDEX public citizen_born backup
3192; 0 0 INDEX ATTACH public measurement_2026_pkey backup
3200; 2606 16420 FK CONSTRAINT public citizen citizen_region_id_fkey backup
3201; 2620 16421 TRIGGER public citizen audit backup
3202; 0 0 COMMENT public CONSTRAINT citizen_region_id_fkey ON citizen backup
"""


def _ids(lines: list[str]) -> list[str]:
    return [ln.split(";")[0] for ln in lines]


def test_post_data_is_split_into_steps() -> None:
    """Indexes and non-FK constraints are dealt over the workers in archive order; index
    attachments come next; foreign keys are set apart, and every other entry stays in
    archive order with them (`later`) or without them (`rest`)."""
    toc = split_toc(LISTING, 2)
    assert [_ids(w) for w in toc.parallel] == [["3345", "3190"], ["3346", "3191"]]
    assert _ids(toc.attach) == ["3192"]
    assert _ids(toc.foreign_keys) == ["3200"]
    assert _ids(toc.later) == ["3200", "3201", "3202"]
    assert _ids(toc.rest) == ["3201", "3202"]
    assert split_toc(LISTING, 8).parallel[3] == [
        "3191; 1259 16401 INDEX public citizen_born backup"
    ]


SCRIPT = '''--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: citizen citizen_region_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.citizen
    ADD CONSTRAINT citizen_region_id_fkey FOREIGN KEY (region_id) REFERENCES public.region(id);


--
-- Name: citizen citizen_mother_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.citizen
    ADD CONSTRAINT citizen_mother_fkey FOREIGN KEY (mother) REFERENCES public.citizen(id) NOT VALID;


--
-- Name: Odd "t"; Type: FK CONSTRAINT; Schema: my schema; Owner: -
--

ALTER TABLE ONLY "my schema"."Odd ""t"""
    ADD CONSTRAINT "k;ey" FOREIGN KEY (r) REFERENCES public.region(id) ON DELETE CASCADE;


--
-- Name: measurement measurement_region_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.measurement
    ADD CONSTRAINT measurement_region_fkey FOREIGN KEY (region) REFERENCES public.region(id);


--
-- PostgreSQL database dump complete
--
'''


def test_foreign_keys_are_added_not_valid_for_validation() -> None:
    """Each foreign key of a regular table is rewritten to be added NOT VALID and marked
    for validation; one dumped NOT VALID stays so and is not validated; one declared on a
    partitioned table (no ONLY) is added as dumped. Quoted names are read whole."""
    keys = read_foreign_keys(SCRIPT, 4)
    assert keys is not None
    assert [(k.table, k.name, k.validate) for k in keys] == [
        ("public.citizen", "citizen_region_id_fkey", True),
        ("public.citizen", "citizen_mother_fkey", False),
        ('"my schema"."Odd ""t"""', '"k;ey"', True),
        ("public.measurement", "measurement_region_fkey", False),
    ]
    assert keys[0].statement == (
        "ALTER TABLE ONLY public.citizen\n    ADD CONSTRAINT citizen_region_id_fkey FOREIGN KEY"
        " (region_id) REFERENCES public.region(id) NOT VALID;"
    )
    assert keys[1].statement.endswith("REFERENCES public.citizen(id) NOT VALID;")
    assert keys[2].statement.endswith("ON DELETE CASCADE NOT VALID;")
    assert keys[3].statement.endswith("REFERENCES public.region(id);")


def test_foreign_keys_not_read_as_expected_are_restored_as_dumped() -> None:
    """When the script holds another number of foreign keys than the listing, none is
    rewritten (None: pg_restore adds them as dumped)."""
    assert read_foreign_keys(SCRIPT, 5) is None
    assert read_foreign_keys("", 0) == []


def _key(table: str, name: str, validate: bool = True) -> ForeignKey:
    return ForeignKey(table, name, "", validate)


def test_validations_of_one_table_share_a_worker() -> None:
    """Keys to validate are grouped by referencing table (validations of one table would
    wait for each other), the tables with most keys first, each to the emptiest worker;
    keys not to validate are left out; never more groups than jobs."""
    keys = [
        _key("public.a", "a1"),
        _key("public.b", "b1"),
        _key("public.a", "a2"),
        _key("public.c", "c1"),
        _key("public.d", "d1", validate=False),
    ]
    groups = validation_groups(keys, 2)
    assert [[k.name for k in g] for g in groups] == [["a1", "a2"], ["b1", "c1"]]
    assert [[k.name for k in g] for g in validation_groups(keys, 8)] == [
        ["a1", "a2"],
        ["b1"],
        ["c1"],
    ]
    assert validation_groups([], 4) == []


def test_a_failed_psql_statement_is_named() -> None:
    """psql's `psql:<stdin>:LINE: ERROR` is mapped to the statement ending on or after that
    line (statements may span lines); None without such a line."""
    script, ends = psql_script(["ALTER TABLE a\n ADD x;", "ALTER TABLE b VALIDATE y;"])
    assert script.decode().endswith("ALTER TABLE a\n ADD x;\nALTER TABLE b VALIDATE y;\n")
    entry = psql_entry(["key x on a", "key y on b"], ends)
    first, second = ends
    assert entry(f"psql:<stdin>:{first}: ERROR:  boom", 3) == "key x on a"
    assert entry(f"psql:<stdin>:{second}: ERROR:  insert or update violates", 3) == "key y on b"
    assert entry("psql: error: connection to server failed", 2) is None
