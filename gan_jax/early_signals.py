"""SIGTERM and SIGINT from the first moment of a `gan-jax train` process.

A batch system may stop a job while it is still importing JAX. `install()` (called first thing
by the command line, before any heavy import) records such a signal instead of letting it kill
the process with status 143; the trainer's own handler (`gan_jax.train.StopSignals`) takes the
recorded signal over and stops before its first step, so the run exits 0 as documented. Kept free
of heavy imports for that reason.
"""

from __future__ import annotations

import signal
import sys
import threading

_pending: int | None = None


def _record(signum, frame) -> None:
    global _pending
    if _pending is not None:
        raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: aborting")
    _pending = signum
    print(
        f"gan-jax: received {signal.Signals(signum).name} while starting; stopping before the "
        "first step (send it again to abort at once)",
        file=sys.stderr,
        flush=True,
    )


def install() -> None:
    """Records SIGTERM / SIGINT until the trainer installs its handler (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _record)


def take_pending() -> int | None:
    """The signal received before the trainer's handler was installed, if any; clears it."""
    global _pending
    signum, _pending = _pending, None
    return signum
