"""Errors that a user caused and can fix: the CLI prints them as one line, without a traceback."""


class InputError(Exception):
    """Bad input (scenario, parameter, experiment or target file, or command-line value).

    The message names the file, the field and what is allowed.
    """


def validation_message(error) -> str:
    """One line from a pydantic ValidationError: every field at fault and what is allowed."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        problems.append(f"field '{where}': {message}")
    return "; ".join(problems)


def yaml_error_message(error) -> str:
    """One line from a PyYAML error, with its line and column."""
    return "YAML syntax error: " + " ".join(str(error).split())


def read_yaml(path, what: str, loader=None):
    """Parse a YAML input file; InputError naming the file if it cannot be read or parsed."""
    import yaml

    try:
        return yaml.load(path.read_text(), Loader=loader or yaml.SafeLoader)  # noqa: S506 (safe loaders only)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: {yaml_error_message(exc)}") from None
