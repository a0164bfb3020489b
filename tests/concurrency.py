"""Work run from several threads at once, each on its own database connection: the races the tests stage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def run_at_once(work: Callable[[], T], *, threads: int, timeout: float = 60) -> list[T]:
    """Runs `work` in `threads` threads released together, each on a connection of its own (closed after), and
    returns what each returned, in the order they finished. Any thread's error fails the test, after all ended."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work())
        except BaseException as error:  # noqa: BLE001 — reported below, from the test's own thread
            errors.append(error)
        finally:
            connection.close()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in started), f"a thread was still running after {timeout} s"
    assert errors == []
    return results
