"""Step kinds: one module each, selected by the kind key a step is written with."""

from __future__ import annotations

import importlib

from recoveryd.drills.models import Playbook
from recoveryd.drills.steps.backup import BackupStep
from recoveryd.drills.steps.registry import KINDS
from recoveryd.drills.steps.wait import WaitStep


def test_every_kind_is_one_module_holding_its_model_and_functions() -> None:
    """Each registered kind comes from one module of `drills/steps/` that defines its model,
    run and describe (and validate) together and exports them as `KIND`."""
    for name, kind in KINDS.items():
        module = importlib.import_module(kind.model.__module__)
        assert module.KIND is kind, name
        assert kind.model.kind == name
        assert kind.run.__module__ == module.__name__
        assert kind.describe.__module__ == module.__name__


def test_the_kind_key_selects_the_model() -> None:
    """A step written with `backup:` is a BackupStep, its rollback with `wait:` a WaitStep."""
    book = Playbook.model_validate(
        {
            "apiVersion": "recoveryd/v1",
            "kind": "Drill",
            "name": "kinds",
            "steps": [
                {
                    "name": "snapshot",
                    "backup": {"sources": ["reg"]},
                    "rollback": {"name": "calm", "wait": {"run": ["true"]}},
                }
            ],
        }
    )
    (step,) = book.steps
    assert isinstance(step, BackupStep) and step.sources() == ["reg"]
    assert isinstance(step.rollback, WaitStep)
    assert KINDS[step.kind].describe(step) == "backup reg"
