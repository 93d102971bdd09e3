"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class LenetError(Exception):
    """Bad input or a failed stage: the message names the file or key and what is allowed."""


def first_line(error):
    """An exception's message fit for a one-line error; its type where it has no message."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
