"""docs/CONFIGURATION.md documents every key of the configuration file and of playbooks,
and `recoveryd config schema` describes the files the project ships."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from recoveryd.cli.main import main
from recoveryd.config import Config
from recoveryd.demo.run import CONFIG as DEMO_CONFIG
from recoveryd.drills.models import Playbook
from recoveryd.yamlsrc import load, loads
from tests.docs.model_keys import key_paths

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "CONFIGURATION.md"
PLAYBOOKS = sorted((ROOT / "playbooks").rglob("*.yaml"))


@pytest.mark.parametrize("model", [Config, Playbook], ids=["configuration", "playbook"])
def test_every_model_field_is_documented(model: type[Config] | type[Playbook]) -> None:
    """Each key path of the models has its row (`| \\`key\\` |`) in CONFIGURATION.md."""
    text = DOC.read_text(encoding="utf-8")
    missing = [p for p in key_paths(model) if f"| `{p}` |" not in text]
    assert not missing, f"keys missing from docs/CONFIGURATION.md: {missing}"


def schema_of(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["config", "schema", *args]) == 0
    schema: dict[str, object] = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_the_schema_validates_the_demo_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    """`recoveryd config schema` (no configuration needed) accepts the demo configuration
    and rejects a value the models reject."""
    validator = jsonschema.Draft202012Validator(schema_of(capsys))
    demo = loads(DEMO_CONFIG, source="demo").data
    assert list(validator.iter_errors(demo)) == []
    bad = {**demo, "daemon": {"max_concurrent_jobs": 1000}}
    assert list(validator.iter_errors(bad))


def test_the_playbook_schema_validates_every_shipped_playbook(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`recoveryd config schema --playbook` accepts every playbook in playbooks/, templates
    included, and rejects a step with a misspelt key."""
    validator = jsonschema.Draft202012Validator(schema_of(capsys, "--playbook"))
    assert PLAYBOOKS
    for path in PLAYBOOKS:
        errors = [e.message for e in validator.iter_errors(load(path).data)]
        assert errors == [], f"{path.name}: {errors}"
    bad = {"apiVersion": "recoveryd/v1", "kind": "Drill", "name": "x", "steps": [{"nmae": 1}]}
    assert list(validator.iter_errors(bad))
