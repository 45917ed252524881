"""Errors that end a `gan-jax` command with one line naming what to fix.

`gan_jax.main` prints any of `USER_ERRORS` as ``gan-jax <command>: error: <message>`` and exits
with status 2; the message alone must tell the user which file, key or directory is at fault and
how to fix it (the traceback goes to the log file, or to the terminal with ``--debug``).
`config.ConfigError` is one of them; it is defined in `gan_jax.config`, which imports no module
of the project, so this module imports it rather than the other way round.
"""

from gan_jax.config import ConfigError


class UserError(Exception):
    """A mistake the user can fix (a config value, a path, a data folder); exit status 2."""


class DataError(UserError, ValueError):
    """The data cannot be read as configured: names the file or folder and the config key."""


# What `except` and `isinstance` use for "the user's mistake, not damage and not a bug".
USER_ERRORS = (UserError, ConfigError)


class EnvironmentFault(Exception):
    """A fault of the machine or its storage, not of the user's input (a full disk, every
    checkpoint damaged); the CLI prints it as one line and exits with status 1."""
