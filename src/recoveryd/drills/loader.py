"""Load and validate a playbook completely before anything runs.

`load_playbook(path, cfg=None, vars={})` reads the YAML through
`recoveryd.yamlsrc` (so every error names file, line and key), substitutes
`{{ name }}` variables with a sandboxed jinja2 environment (undefined names
are errors; in `shell: true` command strings every value is shell-quoted, in
argument lists a value stays one argument), expands `include`s (with cycle
detection), validates the schema of `models.py` and cross-checks what the
schema cannot: step kinds per section, host names (from the playbook or the
daemon configuration), `fault`/`recovered` marks, expectations, sources.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from recoveryd import yamlsrc
from recoveryd.config import Host, LoadedConfig
from recoveryd.drills.expect import check_syntax
from recoveryd.drills.models import LoadedPlaybook, Playbook, Step
from recoveryd.drills.steps.http import HttpRequest
from recoveryd.drills.steps.include import IncludeStep
from recoveryd.drills.steps.registry import KINDS, PROBE_KINDS, STEP_KEYS
from recoveryd.drills.steps.sql import engine_of
from recoveryd.errors import ConfigError, problems_error
from recoveryd.secrets import embedded_secrets, is_secret_name, register

_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
_SECTIONS = ("preflight", "steady_state", "stop_conditions", "steps")
_MAX_INCLUDE_DEPTH = 8


def load_playbook(
    path: Path | str,
    cfg: LoadedConfig | None = None,
    *,
    vars: Mapping[str, str] | None = None,
    builtins: Mapping[str, str] | None = None,
) -> LoadedPlaybook:
    """Validate everything; ConfigError (exit 2) naming file, line and key of every problem.

    A variable given in `vars` (`--var`, a drill's `vars` in the configuration) must be
    one the playbook or its includes declare under `vars` or use in a `{{ }}` template:
    a misspelt name is refused instead of the drill running on the default.
    """
    source = Path(path)
    given = dict(vars or {})
    known: set[str] = set()
    loaded = _load(source, cfg, given, dict(builtins or {}), stack=(), known=known)
    unknown = sorted(set(given) - known)
    if unknown:
        declared = ", ".join(sorted(loaded.playbook.vars)) or "none"
        raise ConfigError(
            f'variable "{unknown[0]}" is given (--var or a drill\'s vars) but the playbook '
            f"has no variable of that name; its variables: {declared}",
            path=str(path),
            line=_line_of_vars(loaded),
            key="vars",
        )
    return loaded


def _line_of_vars(loaded: LoadedPlaybook) -> int:
    doc = yamlsrc.load(loaded.path, what="playbook")
    return doc.line_of(("vars",)) or 1


def _load(
    path: Path,
    cfg: LoadedConfig | None,
    overrides: dict[str, str],
    builtins: dict[str, str],
    *,
    stack: tuple[Path, ...],
    known: set[str],
) -> LoadedPlaybook:
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(p.name for p in (*stack, real))
        raise ConfigError(f"include cycle ({chain}); remove one of the includes", path=str(path))
    if len(stack) >= _MAX_INCLUDE_DEPTH:
        raise ConfigError("includes nest too deeply; flatten them", path=str(path))
    doc = yamlsrc.load(path, what="playbook")
    if not isinstance(doc.data, dict):
        raise doc.error((), "a playbook must be a mapping (apiVersion, kind, name, steps...)")
    _check_kinds(doc)
    variables = _variables(doc, overrides, builtins, path)
    known.update(_names_used(doc.data))
    rendered = _render(doc, doc.data, (), variables, shell=False)
    rdoc = yamlsrc.Document(doc.source, rendered, doc.lines)
    book = rdoc.validate(Playbook)
    base = path.parent
    hosts: dict[str, Host] = {}
    if cfg is not None:
        hosts.update({k: _absolute(h, cfg.path.parent) for k, h in cfg.config.hosts.items()})
    hosts.update({k: _absolute(h, base) for k, h in book.hosts.items()})
    book = _expand_includes(
        book, rdoc, cfg, variables, builtins, base, (*stack, real), hosts, known
    )
    warnings = _cross_check(book, rdoc, hosts, cfg)
    secrets = [v for k, v in variables.items() if is_secret_name(k) and v]
    secrets += [v for v in _step_secrets(book) if v not in secrets]
    register(*secrets)
    return LoadedPlaybook(
        playbook=book,
        path=str(path),
        sha256=doc.sha256,
        hosts=hosts,
        vars=variables,
        base_dir=str(base),
        secrets=secrets,
        warnings=warnings,
    )


def _step_secrets(book: Playbook) -> list[str]:
    """Values written into the playbook itself under a secret-looking name: a command's
    `env` (`API_TOKEN: ...`), HTTP headers (`Authorization`, `Cookie`, `X-Auth-Token`) and
    passwords inside request URLs."""
    found: list[str] = []

    def http(request: HttpRequest) -> None:
        found.extend(v for k, v in request.headers.items() if v and is_secret_name(k))
        found.extend(embedded_secrets(request.url))

    def step(s: Step | None) -> None:
        if s is None:
            return
        found.extend(v for k, v in s.env.items() if v and is_secret_name(k))
        for request in s.http_requests():
            http(request)
        step(s.rollback)
        step(s.only_if)

    for group in (book.preflight, book.steady_state, book.stop_conditions, book.steps):
        for s in group:
            step(s)
    return found


def _absolute(host: Host, base: Path) -> Host:
    """Key and known_hosts paths made absolute against the file that named them."""

    def fix(value: str) -> str:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    return host.model_copy(
        update={"key_file": fix(host.key_file), "known_hosts": fix(host.known_hosts)}
    )


def _variables(
    doc: yamlsrc.Document, overrides: dict[str, str], builtins: dict[str, str], path: Path
) -> dict[str, str]:
    declared = doc.data.get("vars", {})
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise doc.error(("vars",), "vars must be a mapping of name to value")
    out = {"playbook_dir": str(path.parent.resolve()), **builtins}
    for name, value in declared.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise doc.error(("vars", name), "variable names are letters, digits and _")
        if isinstance(value, dict | list) or value is None:
            raise doc.error(("vars", name), "a variable is a single value (text or number)")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    out.update(overrides)
    return out


def _render(
    doc: yamlsrc.Document, node: Any, path: yamlsrc.PathKey, variables: dict[str, str], shell: bool
) -> Any:
    if path == ("vars",):
        return {k: variables.get(k, v) for k, v in node.items()}
    if isinstance(node, dict):
        rollback = node.get("rollback")
        if isinstance(rollback, dict) and "name" not in rollback:
            # docs/PLAYBOOKS.md writes rollbacks without a name: they are named after their step
            node = {**node, "rollback": {"name": f"undo: {node.get('name', 'step')}", **rollback}}
        guard = node.get("only_if")
        if isinstance(guard, dict) and "name" not in guard:
            node = {**node, "only_if": {"name": f"only_if: {node.get('name', 'step')}", **guard}}
        is_shell = node.get("shell") is True
        return {
            k: _render(doc, v, (*path, k), variables, shell=is_shell and k == "run")
            for k, v in node.items()
        }
    if isinstance(node, list):
        # the words of a `shell: true` list are joined into one shell line: quote there too
        return [_render(doc, v, (*path, i), variables, shell=shell) for i, v in enumerate(node)]
    if isinstance(node, str) and ("{{" in node or "{%" in node):
        context = {k: shlex.quote(v) for k, v in variables.items()} if shell else variables
        try:
            return _ENV.from_string(node).render(context)
        except jinja2.UndefinedError as exc:
            name = _undefined_name(str(exc))
            raise doc.error(
                path, f'undefined variable "{name}"; define it under vars or pass --var {name}=...'
            ) from None
        except jinja2.TemplateError as exc:
            raise doc.error(path, f"bad {{{{ }}}} template: {exc}") from None
    return node


def _undefined_name(message: str) -> str:
    m = re.search(r"'([^']+)' is undefined", message)
    return m.group(1) if m else message


def _check_kinds(doc: yamlsrc.Document) -> None:
    """Unknown step kinds get their own sentence before the schema speaks."""
    for section in _SECTIONS:
        items = doc.data.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if isinstance(item, dict):
                _check_step_keys(doc, item, (section, i))


def _check_step_keys(doc: yamlsrc.Document, item: dict[str, Any], path: yamlsrc.PathKey) -> None:
    unknown = [k for k in item if k not in STEP_KEYS]
    kinds = [k for k in item if k in KINDS]
    if unknown and not kinds:
        raise doc.error(
            (*path, unknown[0]),
            f'unknown step kind "{unknown[0]}"; use one of: {", ".join(KINDS)}',
        )
    for key in ("rollback", "only_if"):
        nested = item.get(key)
        if isinstance(nested, dict):
            _check_step_keys(doc, nested, (*path, key))


def _expand_includes(
    book: Playbook,
    doc: yamlsrc.Document,
    cfg: LoadedConfig | None,
    variables: dict[str, str],
    builtins: dict[str, str],
    base: Path,
    stack: tuple[Path, ...],
    hosts: dict[str, Host],
    known: set[str],
) -> Playbook:
    """Top-level `include` merges checks; an `include` step inlines the other playbook's steps."""
    update: dict[str, Any] = {}
    merged: dict[str, list[Step]] = {"preflight": [], "steady_state": [], "stop_conditions": []}
    for i, ref in enumerate(book.include):
        sub = _included(doc, ("include", i), ref, cfg, variables, builtins, base, stack, known)
        hosts.update({k: v for k, v in sub.hosts.items() if k not in hosts})
        for section, items in merged.items():
            items.extend(sub.playbook.sections()[section])
    if book.include:
        for section, items in merged.items():
            update[section] = [*items, *book.sections()[section]]
    steps: list[Step] = []
    for i, step in enumerate(book.steps):
        if not isinstance(step, IncludeStep):
            steps.append(step)
            continue
        sub = _included(
            doc,
            ("steps", i, "include"),
            step.include,
            cfg,
            {**variables, **step.vars},
            builtins,
            base,
            stack,
            known,
        )
        hosts.update({k: v for k, v in sub.hosts.items() if k not in hosts})
        prefix = f"{step.name} / "
        steps.extend(s.model_copy(update={"name": prefix + s.name}) for s in sub.playbook.steps)
    if len(steps) != len(book.steps) or any(isinstance(s, IncludeStep) for s in book.steps):
        update["steps"] = steps
    return book.model_copy(update=update) if update else book


def _included(
    doc: yamlsrc.Document,
    key: yamlsrc.PathKey,
    ref: str,
    cfg: LoadedConfig | None,
    variables: dict[str, str],
    builtins: dict[str, str],
    base: Path,
    stack: tuple[Path, ...],
    known: set[str],
) -> LoadedPlaybook:
    target = Path(ref) if Path(ref).is_absolute() else base / ref
    if not target.is_file():
        raise doc.error(key, f"included playbook {ref} not found (relative to {base})")
    inherited = {k: v for k, v in variables.items() if k != "playbook_dir"}
    return _load(target, cfg, inherited, builtins, stack=stack, known=known)


def _names_used(data: dict[str, Any]) -> set[str]:
    """Variables a playbook declares under `vars` or uses in its `{{ }}` templates."""
    names = set(data["vars"]) if isinstance(data.get("vars"), dict) else set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and ("{{" in node or "{%" in node):
            # a broken template is reported with its key when it is rendered
            with contextlib.suppress(jinja2.TemplateError):
                names.update(meta.find_undeclared_variables(_ENV.parse(node)))

    walk(data)
    return names


def _cross_check(
    book: Playbook, doc: yamlsrc.Document, hosts: dict[str, Host], cfg: LoadedConfig | None
) -> list[str]:
    """What the schema cannot check; every problem is reported, not only the first.
    Errors raise; what is allowed but risky comes back as warning sentences."""
    problems: list[ConfigError] = []

    def collect(check: Any, *args: Any) -> None:
        try:
            check(*args)
        except ConfigError as exc:
            problems.append(exc)

    for section, steps in book.sections().items():
        for i, step in enumerate(steps):
            collect(_check_step, doc, section, (section, i), step, hosts, cfg)
    collect(_check_marks, doc, book.steps)
    collect(_check_canary, book, doc)
    if problems:
        raise problems_error(problems)
    return [
        str(
            doc.error(
                ("steps", i, "rollback"),
                f'the rollback of destructive step "{step.name}" has no only_if: if the step '
                "is cut short, it cannot tell whether the step took effect and will not run; "
                "add only_if with a probe of what must be true for the rollback to be safe",
            )
        )
        for i, step in enumerate(book.steps)
        if step.is_destructive and step.rollback is not None and step.rollback.only_if is None
    ]


def _check_canary(book: Playbook, doc: yamlsrc.Document) -> None:
    if book.canary is not None and engine_of(book.canary.dsn) != "postgresql":
        raise doc.error(("canary", "dsn"), "the canary writes to PostgreSQL; give a libpq DSN")
    if book.canary is not None and book.objectives.rpo is None:
        raise doc.error(("canary",), "a canary measures RPO; set objectives.rpo too")
    if book.objectives.rpo is not None and book.canary is None:
        raise doc.error(("objectives", "rpo"), "an RPO objective needs a canary to measure it")


def _check_step(
    doc: yamlsrc.Document,
    section: str,
    path: yamlsrc.PathKey,
    step: Step,
    hosts: dict[str, Host],
    cfg: LoadedConfig | None,
) -> None:
    kind = KINDS[step.kind]
    if section != "steps" and not (kind.probe or kind.name == "wait"):
        probes = ", ".join(k for k in KINDS if k in PROBE_KINDS or k == "wait")
        raise doc.error(
            (*path, kind.name),
            f"{section} entries are read-only probes ({probes}), not {kind.name}",
        )
    if section == "steps" and not kind.step:
        raise doc.error((*path, kind.name), f"{kind.name} is a stop condition, not a step")
    if section != "steps" and (step.marks or step.rollback or step.destructive):
        raise doc.error(path, f"{section} entries cannot have marks, rollback or destructive")
    if section == "only_if" and (step.only_if is not None or step.interruptible):
        raise doc.error(path, "an only_if probe cannot have only_if or interruptible itself")
    for host, key in step.host_refs():
        if host not in hosts:
            known = ", ".join(sorted(hosts)) or "none defined"
            raise doc.error(
                (*path, *key), f'unknown host "{host}"; define it under hosts (known: {known})'
            )
    for expect, key in step.expectations():
        problem = check_syntax(expect)
        if problem:
            raise doc.error((*path, *key), problem)
    for key, message in kind.validate(step, cfg):
        raise doc.error((*path, *key), message)
    if step.rollback is not None:
        rb = step.rollback
        if not KINDS[rb.kind].rollback or rb.rollback or rb.marks:
            raise doc.error(
                (*path, "rollback"), "a rollback is one plain step (no include, marks or rollback)"
            )
        _check_step(doc, section, (*path, "rollback"), rb, hosts, cfg)
    if step.only_if is not None:
        _check_step(doc, "only_if", (*path, "only_if"), step.only_if, hosts, cfg)


def _check_marks(doc: yamlsrc.Document, steps: Sequence[Step]) -> None:
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.marks is None:
            continue
        if step.marks in seen:
            raise doc.error(("steps", i, "marks"), f'only one step can mark "{step.marks}"')
        if step.marks == "recovered" and "fault" not in seen:
            raise doc.error(
                ("steps", i, "marks"), "marks: recovered must come after a step with marks: fault"
            )
        seen[step.marks] = i
    if "fault" in seen and "recovered" not in seen:
        raise doc.error(
            ("steps", seen["fault"], "marks"),
            "marks: fault has no matching marks: recovered; mark the step where service is back",
        )
