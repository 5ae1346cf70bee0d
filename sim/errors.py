"""Errors that a user caused and can fix: the CLI prints them as one line, without a traceback.

Also the two things every input file shares: the one YAML reader (UTF-8, no duplicate keys) and
the base of every input schema (unknown fields refused, ``true``/``false`` never read as a number).
"""

from __future__ import annotations

import re
import typing

import yaml
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class InputError(Exception):
    """Bad input (scenario, parameter, experiment or target file, or command-line value).

    The message names the file, the field and what is allowed.
    """


def validation_message(error, prefix: str = "") -> str:
    """One line from a pydantic ValidationError: every field at fault and what is allowed.

    ``prefix`` is where the validated mapping sits in its file (e.g. an experiment's scenario override)."""
    problems = []
    for item in error.errors():
        parts = ([prefix] if prefix else []) + [str(part) for part in item["loc"]]
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        # a check across fields (no location) names its fields itself
        problems.append(f"field '{'.'.join(parts)}': {message}" if parts else message)
    return "; ".join(problems)


def yaml_error_message(error) -> str:
    """One line from a PyYAML error, with its line and column."""
    if isinstance(error, DuplicateKeyError):
        return error.problem
    return "YAML syntax error: " + " ".join(str(error).split())


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in first_line:
                        raise DuplicateKeyError(
                            None, None, f"duplicate key '{key}' on line {key_node.start_mark.line + 1} (first given "
                            f"on line {first_line[key] + 1}); give each key once", key_node.start_mark)
                    first_line[key] = key_node.start_mark.line
                except TypeError:
                    pass  # an unhashable key: PyYAML's own error follows
        return super().construct_mapping(node, deep)


def read_yaml(path, what: str, loader=None):
    """Parse a YAML input file; InputError naming the file if it cannot be read or parsed.

    ``loader`` must be UniqueKeyLoader or a subclass."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                         f"position {exc.start}); save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=loader or UniqueKeyLoader)  # noqa: S506 (safe loaders only)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: {yaml_error_message(exc)}") from None


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(value: str) -> str:
    """A name that becomes part of a file or folder name: no '/', no leading '.', nothing a shell quotes."""
    if not SAFE_NAME.fullmatch(value):
        raise ValueError(f"'{value}' cannot be part of a file name; use letters, digits, '_', '-' and '.', "
                         "starting with a letter or digit (at most 100 characters)")
    return value


class InputModel(BaseModel):
    """Base of the input schemas: unknown fields are refused, and ``true``/``false`` is not a number
    (pydantic would read ``staff: true`` as a trust of one person)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value, info: ValidationInfo):
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and annotation is not bool and bool not in typing.get_args(annotation):
            raise ValueError(f"{str(value).lower()} is not allowed here (a yes/no value); give a number or text")
        return value
