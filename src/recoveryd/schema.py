"""JSON Schemas of the configuration file and of playbooks, generated from the models.

`recoveryd config schema [--playbook]` prints them, so that an editor's YAML
language server completes and checks both files. The schema describes the
file as written: durations and sizes may be text (`30s`, `64MiB`); in a
playbook any value may be a `{{ variable }}` template, and a rollback or an
`only_if` guard needs no name. What only the loader can check (variables,
includes, hosts, marks, cross-references) stays with `config check` and
`drill validate`.
"""

from __future__ import annotations

import copy
from typing import Any

from recoveryd.config import Config
from recoveryd.drills.models import Playbook

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TEMPLATE = {"type": "string", "pattern": r"\{\{.*\}\}", "description": "a {{ variable }}"}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "recoveryd configuration"
    return schema


def playbook_schema() -> dict[str, Any]:
    """The JSON Schema of a playbook, as written (before variables are substituted)."""
    schema = Playbook.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema.get("$defs", {})
    step = defs.get("Step")
    if step is not None:
        rollback = copy.deepcopy(step)
        rollback["required"] = [r for r in rollback.get("required", []) if r != "name"]
        rollback["title"] = "Rollback"
        defs["Rollback"] = rollback
        unnamed = {
            "rollback": "the step that undoes this one (named after it when unnamed)",
            "only_if": "a probe that must hold just before the step runs (name optional)",
        }
        for holder in (step, rollback):
            for key, text in unnamed.items():
                if key in holder["properties"]:
                    holder["properties"][key] = {
                        "anyOf": [{"$ref": "#/$defs/Rollback"}, {"type": "null"}],
                        "description": text,
                    }
    schema = {**_templates_allowed(schema)}
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "recoveryd playbook"
    return schema


def _templates_allowed(node: Any) -> Any:
    """Every typed value also accepts a `{{ variable }}` template string."""
    if isinstance(node, list):
        return [_templates_allowed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _templates_allowed(v) for k, v in node.items()}
    if _is_leaf(out):
        return {"anyOf": [out, _TEMPLATE]}
    return out


def _is_leaf(node: dict[str, Any]) -> bool:
    """A schema of a single value other than free text (a number, a boolean, an enum, a
    constant or a string with a pattern)."""
    kind = node.get("type")
    if "const" in node or "enum" in node:
        return True
    if kind in ("integer", "number", "boolean"):
        return True
    return kind == "string" and ("pattern" in node or "format" in node)
