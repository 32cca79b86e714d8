"""Validate task arguments against the same argument_spec the Ansible module uses.

Each task declares one ARGUMENT_SPEC (Ansible's format). The module hands it to
AnsibleModule; job files on the host, where Ansible is absent, are checked here with the
subset of that format the engine uses: type, required, default, choices, elements,
options, aliases and no_log. Engine-only types ride in `context`, which AnsibleModule ignores:
`context: {type: duration}` (or `{elements: duration}`) converts durations to seconds
(foundation/durations.py), and `context: {renamed_to, unit}` folds a deprecated option
whose name carried its unit into its successor.
"""

from __future__ import annotations

from . import durations
from .errors import ConfigError

_TRUE = {"yes", "on", "true", "1", "y", "t"}
_FALSE = {"no", "off", "false", "0", "n", "f"}


def _to_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _to_int(value):
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def _to_float(value):
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def _to_str(value):
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string, got a " + type(value).__name__)
    return str(value)


def _to_list(value):
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (int, float)):
        return [value]
    raise ValueError("expected a list, got a " + type(value).__name__)


def _to_dict(value):
    if isinstance(value, dict):
        return value
    raise ValueError("expected a mapping, got a " + type(value).__name__)


CONVERTERS = {
    "str": _to_str,
    "path": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "list": _to_list,
    "dict": _to_dict,
    "raw": lambda value: value,
    "duration": durations.parse,
}


def validate(spec: dict, params: dict | None, source: str = "", prefix: str = "") -> dict:
    """Return params converted and completed with defaults, or raise ConfigError."""
    params = dict(params or {})
    for name, rules in spec.items():  # an alias (an option's old name) counts as the option
        for alias in rules.get("aliases", ()):
            if alias in params:
                if name in params:
                    raise ConfigError(f"set {name} or its old name {alias}, not both", field=prefix + name, source=source)
                params[name] = params.pop(alias)
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ConfigError(
            f"unsupported option(s) {', '.join(unknown)}; supported: {', '.join(sorted(spec))}",
            field=prefix.rstrip(".") or None,
            source=source,
        )
    result = {}
    for name, rules in spec.items():
        field = prefix + name
        value = params.get(name)
        if value is None:
            if rules.get("required"):
                raise ConfigError("is required", field=field, source=source)
            value = rules.get("default")
            if value is None:
                result[name] = None
                continue
        result[name] = _check_value(rules, value, field, source)
    for name, rules in spec.items():
        renamed = rules.get("context", {}).get("renamed_to")
        if renamed and result[name] is not None:
            given = params.get(renamed)
            if given is not None and given != spec[renamed].get("default"):
                raise ConfigError(f"give {renamed} or the deprecated {name}, not both", field=prefix + name, source=source)
            result[renamed] = result[name] * durations.UNITS[rules["context"]["unit"]]
            result[name] = None
    return result


def _check_value(rules, value, field, source):
    kind = rules.get("context", {}).get("type") or rules.get("type", "str")
    try:
        value = CONVERTERS[kind](value)
    except ValueError as exc:
        raise ConfigError(str(exc), field=field, source=source) from None
    if kind == "list":
        value = [_check_element(rules, item, f"{field}[{index}]", source) for index, item in enumerate(value)]
    elif kind == "dict" and "options" in rules:
        value = validate(rules["options"], value, source, prefix=field + ".")
    if "choices" in rules and kind != "list" and value not in rules["choices"]:
        raise ConfigError(
            f"must be one of {', '.join(map(str, rules['choices']))}, got {value!r}", field=field, source=source
        )
    return value


def _check_element(rules, item, field, source):
    elements = rules.get("context", {}).get("elements") or rules.get("elements")
    if elements is None:
        return item
    element_rules = {"type": elements}
    if "options" in rules:
        element_rules["options"] = rules["options"]
    if "choices" in rules:
        element_rules["choices"] = rules["choices"]
    return _check_value(element_rules, item, field, source)


def redact(spec: dict, params):
    """A copy of params with every no_log value replaced, for logs and module output."""
    if not isinstance(params, dict):
        return params
    clean = {}
    for name, value in params.items():
        rules = spec.get(name, {})
        if rules.get("no_log") and value is not None:
            clean[name] = "********"
        elif "options" in rules and isinstance(value, dict):
            clean[name] = redact(rules["options"], value)
        elif "options" in rules and isinstance(value, list):
            clean[name] = [redact(rules["options"], item) for item in value]
        else:
            clean[name] = value
    return clean
