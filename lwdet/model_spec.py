"""Model-spec errors and the row checks that lwdet's model YAMLs and the engine's share (below both).

``lwdet.models`` (lwdet's rows) and ``lwdet.engine_models`` (the engine's scaled YAMLs) both name the file and line
of a problem (``where``), check rows the same way (``validate_rows``) and raise ``ModelConfigError``; this module
owns those, so neither imports the other for them.
"""

from __future__ import annotations

import yaml

from lwdet.backbones import suggest
from lwdet.errors import ConfigError

__all__ = ["ModelConfigError", "check_literal", "row_lines", "validate_rows", "where"]


class ModelConfigError(ConfigError):
    """A model YAML that cannot be built; the message names the file, line and row."""


def row_lines(text: str) -> dict:
    """Line numbers (1-based) of top-level keys and of each row of 'backbone' and 'head'."""
    lines = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        lines[key.value] = key.start_mark.line + 1
        if key.value in ("backbone", "head") and isinstance(value, yaml.SequenceNode):
            for j, row in enumerate(value.value):
                lines[(key.value, j)] = row.start_mark.line + 1
    return lines


def where(spec: dict, lines: dict, key) -> str:
    """``file:line`` of ``key`` (a top-level key or a (section, row) pair), or the file alone."""
    file = spec.get("yaml_file", "<model dict>")
    line = lines.get(key)
    return f"{file}:{line}" if line else file


def check_literal(value, at: str):
    """Arguments are data: numbers, booleans, null, short names and lists of these. Never code."""
    if isinstance(value, list):
        for v in value:
            check_literal(v, at)
    elif isinstance(value, str):
        if not value.replace("_", "").replace(".", "").isalnum():
            raise ModelConfigError(f"{at}: argument {value!r} is not a plain name; YAML arguments are never evaluated")
    elif not (value is None or isinstance(value, (int, float, bool))):
        raise ModelConfigError(f"{at}: argument {value!r} of type {type(value).__name__} is not allowed")


def validate_rows(spec: dict, lines: dict, known, multi_input, heads, known_names=(), what: str = "") -> None:
    """Rows are [from, repeats, module, args] with earlier sources, a known module and literal args; a head last."""
    for key in ("nc", "backbone", "head"):
        if key not in spec:
            raise ModelConfigError(f"{where(spec, lines, None)}: missing key '{key}'")
    nc = spec["nc"]
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        raise ModelConfigError(f"{where(spec, lines, 'nc')}: 'nc' must be a positive integer, got {nc!r}")
    i = 0
    for section in ("backbone", "head"):
        rows = spec[section]
        if not isinstance(rows, list) or not rows:
            raise ModelConfigError(f"{where(spec, lines, section)}: '{section}' must be a non-empty list of rows")
        for j, row in enumerate(rows):
            at = f"{where(spec, lines, (section, j))}: {section} row {j} (layer {i})"
            if not isinstance(row, list) or len(row) != 4:
                raise ModelConfigError(f"{at}: a row is [from, repeats, module, args], got {row!r}")
            src, n, module, args = row
            srcs = src if isinstance(src, list) else [src]
            if not srcs or not all(isinstance(s, int) and not isinstance(s, bool) for s in srcs):
                raise ModelConfigError(f"{at}: 'from' must be a layer index or a list of them, got {src!r}")
            for s in srcs:
                if not (-i <= s < i or (i == 0 and s == -1)):
                    raise ModelConfigError(f"{at}: 'from' {s} does not name an earlier layer")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ModelConfigError(f"{at}: repeats must be a positive integer, got {n!r}")
            if not known(module):
                listed = f" Known: {', '.join(known_names)}" if known_names else f" Expected {what}."
                raise ModelConfigError(
                    f"{at}: module {module!r} is not known{suggest(str(module), known_names)}{listed}"
                )
            if isinstance(src, list) and not multi_input(module):
                raise ModelConfigError(f"{at}: {module} takes one input, got 'from' {src!r}")
            if not isinstance(args, list):
                raise ModelConfigError(f"{at}: args must be a list, got {args!r}")
            check_literal(args, at)
            i += 1
    if spec["head"][-1][2] not in heads:
        raise ModelConfigError(
            f"{where(spec, lines, ('head', len(spec['head']) - 1))}: the last row must be one of {', '.join(heads)}"
        )
