"""Errors that a user caused and can fix: the CLI prints them as one line, without a traceback."""


class InputError(Exception):
    """Bad input (scenario, parameter, experiment or target file, or command-line value).

    The message names the file, the field and what is allowed.
    """
