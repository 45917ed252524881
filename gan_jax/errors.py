"""Errors that end a `gan-jax` command with one line naming what to fix.

`gan_jax.main` prints any `UserError` as ``gan-jax <command>: error: <message>`` and exits with
status 2; the message alone must tell the user which file, key or directory is at fault and how
to fix it (the traceback goes to the log file, or to the terminal with ``--debug``).
"""


class UserError(Exception):
    """A mistake the user can fix (a config value, a path, a data folder); exit status 2."""


class DataError(UserError, ValueError):
    """The data cannot be read as configured: names the file or folder and the config key."""


class EnvironmentFault(Exception):
    """A fault of the machine or its storage, not of the user's input (a full disk, every
    checkpoint damaged); the CLI prints it as one line and exits with status 1."""
