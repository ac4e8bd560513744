"""dbt's rendering of profiles.yml for the common case, without importing dbt.

Importing dbt's profile renderer costs every pusher run about a second and 80 MB (five seconds
on a loaded machine), more than a whole no-change sync. Most profiles use nothing but
`env_var()` and dbt's filters (as_number, as_bool, as_native, as_text) or Jinja's built-in
ones, and that subset is small enough to render exactly as dbt does:

  - each string value is rendered with a sandboxed native Jinja environment; a value made of
    one node keeps that node's type, several nodes are joined as text
    (dbt_common.clients.jinja.quoted_native_concat);
  - as_number / as_bool / as_native mark text to be read as a Python literal (and as_number /
    as_bool insist on a number / a bool); as_text keeps text as text;
  - env_var(name, default) reads the environment, the default, or fails naming the variable
    (dbt.context.base.BaseContext.env_var);
  - the target is rendered first, then only that target's outputs (so a missing variable of
    another target does not matter), dates become ISO text (dbt.config.renderer.BaseRenderer).

Anything else (another name such as var() or target, a parse error) returns None and the
caller falls back to dbt's own renderer; tests/pusher/test_profile.py compares both.

A value without "{" (which opens every Jinja construct) or a line break (Jinja normalizes line
endings and drops a final one) renders as itself, so a profile of plain values never imports
Jinja (about 50 ms of every run's start).
"""

from __future__ import annotations

from ast import literal_eval
from datetime import date
from itertools import chain, islice
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from pusher.errors import ConfigError

JINJA_MARKS = ("{", "\n", "\r")     # without any of them, a value renders as itself


class _Text(str):
    """as_text: stays text."""


class _Native(str):
    """as_native: read as a Python literal."""


class _Bool(_Native):
    pass


class _Number(_Native):
    pass


@lru_cache(maxsize=None)
def _native_sandbox_class() -> type:
    import jinja2.nativetypes
    import jinja2.sandbox

    class NativeSandbox(jinja2.sandbox.SandboxedEnvironment):
        code_generator_class = jinja2.nativetypes.NativeCodeGenerator

    return NativeSandbox


def _concat(nodes: Iterable[Any]) -> Any:
    """dbt's quoted_native_concat."""
    nodes = iter(nodes)
    head = list(islice(nodes, 2))
    if not head:
        return ""
    if len(head) > 1:
        return "".join(str(node) for node in chain(head, nodes))
    raw = head[0]
    if isinstance(raw, _Text) or not isinstance(raw, _Native):
        return str(raw) if isinstance(raw, _Text) else raw
    try:
        result = literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError):
        result = raw
    if isinstance(raw, _Bool) and not isinstance(result, bool):
        raise ConfigError(f"profiles.yml: could not convert value {str(raw)!r} into type 'bool'")
    if isinstance(raw, _Number) and (not isinstance(result, (int, float)) or isinstance(result, bool)):
        raise ConfigError(f"profiles.yml: could not convert value {str(raw)!r} into type 'number'")
    return result


class _Unsupported(Exception):
    """The profile uses something only dbt's renderer knows."""


def _environment(env: Mapping[str, str]) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(the sandbox, made on first use; the names a value may use)"""
    @lru_cache(maxsize=None)
    def sandbox() -> Any:
        import jinja2

        made = _native_sandbox_class()(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])
        made.filters.update(as_text=_Text, as_bool=_Bool, as_native=_Native, as_number=_Number)
        return made

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"profiles.yml needs the environment variable {name}, which is not set")

    return sandbox, {"env_var": env_var}


def _render_value(value: Any, sandbox: Callable[[], Any], context: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _render_value(item, sandbox, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, sandbox, context) for item in value]
    if not isinstance(value, str):
        return value.isoformat() if isinstance(value, date) else value
    if not any(mark in value for mark in JINJA_MARKS):
        return value
    import jinja2
    import jinja2.meta

    try:
        names = jinja2.meta.find_undeclared_variables(sandbox().parse(value))
    except jinja2.TemplateSyntaxError as exc:
        raise _Unsupported from exc
    if names - set(context):
        raise _Unsupported
    template = sandbox().from_string(value)
    try:
        return _concat(template.root_render_func(template.new_context(context)))
    except jinja2.TemplateError as exc:
        raise _Unsupported from exc


def render_profile(raw: Mapping[str, Any], target: str | None,
                   env: Mapping[str, str]) -> tuple[str, Any] | None:
    """(target name, that target's rendered settings; None if the profile has no such target),
    or None when only dbt can render this profile."""
    sandbox, context = _environment(env)
    try:
        if target is None:
            target = str(_render_value(raw["target"], sandbox, context)) if "target" in raw else "default"
        outputs = raw.get("outputs") or {}
        if not isinstance(outputs, dict) or not isinstance(outputs.get(target), dict):
            return target, None
        return target, _render_value(outputs[target], sandbox, context)
    except _Unsupported:
        return None
