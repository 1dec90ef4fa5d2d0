"""Child processes that leave Ctrl-C to their parent.

Ctrl-C on a terminal sends SIGINT to the whole foreground process group: a command's worker
processes (Dask workers, the live broker's planner) each raised KeyboardInterrupt and printed
their own traceback, while the parent stops them anyway when its ``with`` blocks unwind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started inside the block ignore SIGINT.

    An ignored signal survives ``exec``, and a Python started with SIGINT ignored installs no
    KeyboardInterrupt handler. The caller ignores Ctrl-C too while the block runs (only the
    start of the children). Off the main thread, where signals cannot be set, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
