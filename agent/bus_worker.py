"""One thread per I2C bus that serialises its transfers, and that a hung driver cannot block.

concurrent.futures' pool threads are joined at interpreter exit, so a driver stuck in a read
would keep the process from ever exiting. These workers are daemon threads, and a worker whose
call has overrun is abandoned: later calls go to a fresh thread, so the bus's other devices keep
running while the hung call is left to return (or not) on its own.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable, Optional

_Job = Optional[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]


class _Thread:
    def __init__(self, name: str) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:
                future.set_exception(e)


class BusWorker(concurrent.futures.Executor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.abandoned = 0
        self._lock = threading.Lock()
        self._thread = _Thread(name)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._thread.jobs.put((future, lambda: fn(*args, **kwargs)))
        return future

    def abandon(self) -> None:
        """The current thread is stuck in a call: give later calls a new thread."""
        with self._lock:
            old = self._thread
            self.abandoned += 1
            self._thread = _Thread(f"{self.name}-{self.abandoned}")
            # Calls queued behind the stuck one move to the new thread; the old thread is told
            # to exit once (if ever) its call returns.
            while True:
                try:
                    job = old.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self._thread.jobs.put(job)
            old.jobs.put(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._thread.jobs.put(None)
            thread = self._thread.thread
        if wait:
            thread.join(timeout=5)
