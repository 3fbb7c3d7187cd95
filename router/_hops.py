"""The async driver's trips to worker threads: the steps of a request that can block (the ledger's
database, a judge's model call) run there, so the event loop never waits on them. A step that only
touches memory (an unchecked answer billed to the queue) runs on the loop: a trip costs about as
much as the rest of the request's own work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from router._core import Call, Replay
from router._plan import Sleep
from router._run import Run
from router._types import RoutedResponse

_T = TypeVar("_T")


async def next_call_off_loop(run: Run) -> Call | Sleep | None:
    """run.next_call() on a worker thread (it reads and writes the ledger). If the caller goes away
    meanwhile, a hold it took is released once the thread is done."""
    task = asyncio.ensure_future(asyncio.to_thread(run.next_call))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _drop_after(done, run))
        raise


def _begin(start: Callable[..., Run | Replay], args: tuple[Any, ...]) -> tuple[Run | Replay, Call | Sleep | None]:
    """Claim and plan a request, and plan its first call (its budget held): one worker-thread trip."""
    found = start(*args)
    return found, found.next_call() if isinstance(found, Run) else None


async def begin_off_loop(start: Callable[..., Run | Replay], args: tuple[Any, ...]) -> tuple[Run | Replay, Call | Sleep | None]:
    """`_begin` on a worker thread. If the caller goes away meanwhile, the hold it took is released
    (or the id it claimed), once the thread is done."""
    task = asyncio.ensure_future(asyncio.to_thread(_begin, start, args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_drop_begun)
        raise


def _drop_begun(task: asyncio.Future[Any]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    run, step = task.result()
    if isinstance(run, Run) and isinstance(step, Call):
        run.dropped(step)
    elif isinstance(run, Run):
        run.abandon()


def _settle_and_step(run: Run, call: Call, response: Any, tries: int) -> Call | Sleep | RoutedResponse:
    """Bill and check an answer, then plan the next step; the answer itself once the run is over."""
    run.succeeded(call, response, tries)
    step = run.next_call()
    return run.result() if step is None else step


def _drop_after(task: asyncio.Future[Any], run: Run) -> None:
    call = None if task.cancelled() or task.exception() is not None else task.result()
    if isinstance(call, Call):
        run.dropped(call)


async def off_loop(run: Run, step: Callable[..., _T], *args: Any) -> _T:
    """Run a step that bills and checks an answer on a worker thread: the ledger's I/O and a judge's
    model call (the sync client) never block the event loop."""
    task = asyncio.ensure_future(asyncio.to_thread(step, *args))
    try:
        return await asyncio.shield(task)  # a thread cannot be stopped: let the step end
    except asyncio.CancelledError:
        # The caller went away while the judge was asked. The step still ends on its thread and
        # bills what it called; then run.abandon() stores a passed answer or releases the id.
        task.add_done_callback(lambda _task: _abandon_after(_task, run))
        raise


def _abandon_after(task: asyncio.Future[Any], run: Run) -> None:
    """Once the step has ended on its thread: release a hold it took for a next call, then store a
    passed answer or release the id."""
    result = None if task.cancelled() or task.exception() is not None else task.result()
    if isinstance(result, Call):
        run.dropped(result)
    else:
        run.abandon()


async def settle_and_step(run: Run, call: Call, response: Any, tries: int) -> Call | Sleep | RoutedResponse:
    """`_settle_and_step`, on the loop when billing the answer touches only memory (`Run.settles_in_memory`;
    a commit that must be awaited goes to a thread), else on a worker thread."""
    if not run.settles_in_memory():
        return await off_loop(run, _settle_and_step, run, call, response, tries)
    try:
        run.succeed_on_loop(call, response, tries)
    finally:
        if run.commit_due is not None:  # near the cap, a full queue, flush_s 0: committed before the answer is given
            await asyncio.to_thread(run.core.ledger.await_commit, run.commit_due)
    if run.answered:
        return run.result()
    step = await next_call_off_loop(run)
    return await asyncio.to_thread(run.result) if step is None else step
