"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class LenetError(Exception):
    """Bad input or a failed stage: the message names the file or key and what is allowed."""


def one_line(error):
    """An exception's message folded into one line; its type where it has no message."""
    return " ".join(str(error).split()) or type(error).__name__


def os_error_line(error):
    """A failed file operation in one line: the path, then what the system said (no space left on
    device, permission denied, is a directory, ...)."""
    what = error.strerror or one_line(error)
    what = what[:1].lower() + what[1:]
    return f"{error.filename}: {what}" if error.filename else what
