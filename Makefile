# recoveryd — the two commands of the quick start are `make run` and `make test`.
# Both set themselves up on a fresh Debian 12 machine with Python 3.11.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

# Debian packages the test suite runs for real (servers start as plain processes on 127.0.0.1).
DEB_PACKAGES := postgresql-15 postgresql-client-15 mariadb-server mariadb-client \
	openssh-server openssh-client nginx zstd \
	ceph-mon ceph-osd radosgw ceph-common \
	swift swift-proxy swift-object swift-container swift-account python3-swift memcached \
	fonts-noto-cjk poppler-utils chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
	systemd iproute2 sqlite3 procps python3-venv etcd-server
# Packages `make run` needs: venv (not in Debian's python3 itself) and the libraries PDF
# rendering loads at import time.
RUN_DEB_PACKAGES := python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b

.PHONY: run test test-faults lint typecheck unit integration bench bench-compare bench-rss bench-check deps-deb deps-deb-run venv clean fuzz

# deps-deb-run first: on a fresh Debian 12, `python3 -m venv` needs python3-venv.
$(STAMP): pyproject.toml | deps-deb-run
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Installs only what is missing; services are not started by apt (the tests start their own).
deps-deb:
	@bash scripts/install-deb.sh $(DEB_PACKAGES)

deps-deb-run:
	@bash scripts/install-deb.sh $(RUN_DEB_PACKAGES)

run: deps-deb-run $(STAMP)
	$(BIN)/python -m recoveryd.demo --dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Bytecode is compiled up front: the suite starts many fresh interpreters (the CLI, daemons,
# archive_command and restore_command), and where PYTHONDONTWRITEBYTECODE is set none of them
# caches what it compiles, so each compiled the sources again (~0.1 s of CPU a start here);
# existing .pyc files are still read.
test: deps-deb $(STAMP) lint typecheck
	$(BIN)/python -m compileall -q src tests >/dev/null
	$(BIN)/pytest -q

# The whole seeded fault campaign: tests/faults/ (kill -9 at >= 20 points per command, a
# fault proxy before Ceph RGW and Swift, source and disk faults, SSH drops, power loss,
# property tests with thousands of inputs), the crash tests, and the failover drill
# interrupted at every step boundary and inside every step. `make test` runs the same
# tests with a few points each (the crash test 4 kills of 10; the flood test on Ceph RGW
# only, here on Swift too). RECOVERYD_FAULT_SEED changes the failover drill's seed.
# The tally of a run is written to faults-tally.json (figures in docs/RELIABILITY.md).
test-faults: deps-deb $(STAMP)
	$(BIN)/python -m compileall -q src tests >/dev/null
	RECOVERYD_FAULTS=all RECOVERYD_FAULTS_TALLY=faults-tally.json \
		$(BIN)/pytest -q tests/faults tests/e2e/test_crash.py tests/e2e/test_flood.py \
		tests/integration/drills/test_pg_failover_interrupts.py

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Coverage-guided fuzzing (atheris) of the YAML loaders, the manifest decoder and the journal
# reader, FUZZ_SECONDS each; new inputs go to .fuzz/TARGET, crashes to .fuzz/TARGET/crash-*.
# `make test` runs the same targets on their seed corpus only (tests/fuzz/test_fuzz_seeds.py).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := config playbook manifest journal

fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p .fuzz/$$t; \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
		$(BIN)/python -m tests.fuzz.run_atheris $$t -max_total_time=$(FUZZ_SECONDS) \
			-rss_limit_mb=2048 -timeout=10 -artifact_prefix=.fuzz/$$t/ .fuzz/$$t; \
	done

bench: deps-deb $(STAMP)
	$(BIN)/python bench/snapshot.py

# recoveryd side by side with pgBackRest, barman-cloud, restic and plain pipes (installed
# when missing); writes bench/results/compare-DATE.json and the table in docs/PERFORMANCE.md.
COMPARE_SCALE ?= 1
COMPARE_ROUNDS ?= 3
bench-compare: deps-deb $(STAMP)
	$(BIN)/python bench/compare.py --scale $(COMPARE_SCALE) --rounds $(COMPARE_ROUNDS)

# recoveryd's peak RSS at 1 GB and at 10 GB (logical and base backups, and their restores);
# writes bench/results/rss-scale-DATE.json.
bench-rss: deps-deb $(STAMP)
	$(BIN)/python bench/rss.py --to 10

# Fails on a ratio more than 10% worse than the committed compare-*.json with the latest date.
bench-check: $(STAMP)
	$(BIN)/python bench/check.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
