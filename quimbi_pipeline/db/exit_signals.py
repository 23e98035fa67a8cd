"""Turn SIGTERM and SIGHUP into a normal interpreter exit, so atexit cleanup still runs."""

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_installed = False


def install_exit_on_signals() -> None:
    """Make SIGTERM and SIGHUP raise SystemExit in the main thread.

    Python's default for both is to die at once, skipping atexit (where pgserver stops its
    server). Only the main thread may install handlers; elsewhere this does nothing. A signal
    that is ignored (``nohup``) stays ignored; a handler installed earlier still runs first.
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:  # Windows has no SIGHUP
            continue
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN:
            continue
        signal.signal(signum, exit_handler(previous))
    _installed = True


def exit_handler(previous: Any) -> Callable[[int, FrameType | None], None]:
    """Return a handler that runs ``previous`` (if it is a function) and then raises SystemExit."""
    exiting = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal exiting
        if exiting:
            return  # a repeated signal must not interrupt the cleanup the first one started
        exiting = True
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    return handle
