"""Run a function in several fresh processes that start it at the same moment."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def run_at_once(target: Callable[..., Any], *args: Any, processes: int = 2) -> list[Any]:
    """Call ``target(start, results, *args)`` in ``processes`` spawned processes (no fork of a
    process that may hold TensorFlow); ``target`` waits on the barrier ``start`` and puts one
    value on the queue ``results``. Returns those values, sorted."""
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(processes), spawn.Queue()
    children = [
        spawn.Process(target=target, args=(start, results, *args)) for _ in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0] * processes
    return sorted(results.get(timeout=5) for _ in children)
