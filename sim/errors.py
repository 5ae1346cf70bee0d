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
