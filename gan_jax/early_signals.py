"""SIGTERM and SIGINT from the first moment of a `gan-jax train` process.

A batch system may stop a job while it is still importing JAX. `install()` (called first thing
by the command line, before any heavy import) records such a signal instead of letting it kill
the process with status 143; the trainer's own handler (`gan_jax.train.StopSignals`) takes the
recorded signal over and stops before its first step, so the run exits 0 as documented. Kept free
of heavy imports for that reason.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

_pending: int | None = None
_armed = False  # install() (the command line) arms abort's timer; a library user's loop is spared
_abort_timer: threading.Timer | None = None
# After a second signal, the seconds the process gets to unwind before it is ended (see abort).
ABORT_GRACE_S = 10.0
ABORT_STATUS = 130


def abort(signum: int) -> None:
    """A second SIGTERM / SIGINT: raises KeyboardInterrupt, which the command line turns into a
    one-line message and status 130. In a command-line process (`install()`), a daemon timer
    also ends the process with that status ABORT_GRACE_S later should it still run: the
    exception can be swallowed where the handler happens to run (a finaliser, a library's
    catch-all), and the exit can wait on a thread that never ends (seen in CI: no exit 120 s
    after the second signal). Nothing is saved either way; checkpoints are written atomically,
    so the last finished one is intact."""
    name = signal.Signals(signum).name

    def force_exit() -> None:
        sys.stdout.flush()  # os._exit skips Python's flushing: keep what was printed
        print(
            f"gan-jax: aborted (second {name}): the process had not stopped "
            f"{ABORT_GRACE_S:.0f} s later, so it ends now; nothing was saved for the current "
            "step, the last finished checkpoint is kept",
            file=sys.stderr,
            flush=True,
        )
        os._exit(ABORT_STATUS)

    global _abort_timer
    if _armed and _abort_timer is None:
        _abort_timer = threading.Timer(ABORT_GRACE_S, force_exit)
        _abort_timer.daemon = True
        _abort_timer.start()
    raise KeyboardInterrupt(f"second {name}: aborting")


def cancel_abort() -> None:
    """Stops abort's timer, if one runs (for a process that goes on after an abort: tests)."""
    global _abort_timer
    if _abort_timer is not None:
        _abort_timer.cancel()
        _abort_timer = None


def _record(signum, frame) -> None:
    global _pending
    if _pending is not None:
        abort(signum)
    _pending = signum
    print(
        f"gan-jax: received {signal.Signals(signum).name} while starting; stopping before the "
        "first step (send it again to abort at once)",
        file=sys.stderr,
        flush=True,
    )


def install() -> None:
    """Records SIGTERM / SIGINT until the trainer installs its handler (main thread only), and
    arms `abort`'s timer: this is a command-line process."""
    global _armed
    _armed = True
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _record)


def take_pending() -> int | None:
    """The signal received before the trainer's handler was installed, if any; clears it."""
    global _pending
    signum, _pending = _pending, None
    return signum
