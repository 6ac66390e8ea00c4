"""`python -m tests.fuzz.run_atheris TARGET [libFuzzer options]`: coverage-guided fuzzing of one
target with atheris, starting from its seed corpus (`make fuzz` runs each for minutes).

A crash (an exception other than the target's documented error) stops the run and leaves
the input as `crash-*` in the current directory, as libFuzzer does.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-not-found, unused-ignore]

with atheris.instrument_imports(include=["recoveryd", "yaml", "json"]):
    from tests.fuzz.targets import SEEDS, TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run_atheris.py {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    target = TARGETS[name]
    argv = [sys.argv[0], *sys.argv[2:], str(SEEDS / name)]
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
