"""The command line's one error type: a failure reported as one clear line (exit code 1)."""


class CliError(Exception):
    """A failure to report as one clear line, not a traceback."""
