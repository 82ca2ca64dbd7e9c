"""An asyncio event loop in a worker thread, and futures delivered back to Qt as signals.

The Qt thread never awaits anything: it hands a coroutine to :class:`AsyncBridge`, which runs it
on its loop, and later receives the result (or the exception) through a queued Qt signal, in the
Qt thread. Nothing here blocks the caller except :meth:`AsyncBridge.stop`, which joins the
worker thread with a short timeout at exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Relay(QObject):
    """Lives in the Qt thread; a signal emitted from the worker thread is queued to it."""

    deliver = Signal(object, object)  # (callable, argument)

    def __init__(self) -> None:
        super().__init__()
        # Always queued: even a future that is already done when its callback is added (so the
        # callback runs in the Qt thread) is delivered later, never re-entrantly.
        self.deliver.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object, object)
    def _run(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:  # a bug in a callback must not kill the event loop
            log.exception("callback failed")


class QtFuture(QObject):
    """A pending call on the loop; `finished(result)` or `failed(exception)` fire in Qt."""

    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, future: concurrent.futures.Future[Any], relay: _Relay,
                 on_ok: Callback | None = None, on_err: Callback | None = None,
                 on_any: Callable[[QtFuture], None] | None = None) -> None:
        super().__init__()
        self.future = future
        self._relay = relay
        # Plain Python callbacks, called before the signals fire (no Qt connection needed).
        self._on_ok = on_ok
        self._on_err = on_err
        self._on_any = on_any
        future.add_done_callback(self._on_done)

    def _on_done(self, future: concurrent.futures.Future[Any]) -> None:
        # Runs in the worker thread (or immediately, if already done): hop to the Qt thread.
        self._relay.deliver.emit(self._emit, future)

    def _emit(self, future: concurrent.futures.Future[Any]) -> None:
        if self._on_any is not None:
            self._on_any(self)
        if future.cancelled():
            exc: BaseException | None = asyncio.CancelledError()
        else:
            exc = future.exception()
        if exc is not None:
            if self._on_err is not None:
                self._on_err(exc)
            self.failed.emit(exc)
        else:
            result = future.result()
            if self._on_ok is not None:
                self._on_ok(result)
            self.finished.emit(result)

    def cancel(self) -> None:
        self.future.cancel()

    def done(self) -> bool:
        return self.future.done()


class AsyncBridge(QObject):
    """Owns one asyncio loop running forever in a daemon thread.

    Create it in the Qt thread (its relay must live there). ``call(coro, on_ok, on_err)``
    schedules ``coro`` on the loop and calls ``on_ok(result)`` or ``on_err(exc)`` in Qt.
    """

    def __init__(self, name: str = "kaflab-asyncio") -> None:
        super().__init__()
        self._relay = _Relay()
        self._pending: set[QtFuture] = set()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(
                        asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Schedule a coroutine on the loop; returns a thread-safe future (never wait in Qt)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, Any], on_ok: Callback | None = None,
             on_err: Callback | None = None) -> QtFuture:
        """Run ``coro`` on the loop; deliver its outcome to ``on_ok`` / ``on_err`` in Qt."""
        qf = QtFuture(self.submit(coro), self._relay, on_ok, on_err, self._pending.discard)
        self._pending.add(qf)
        return qf

    def post(self, fn: Callback, arg: Any = None) -> None:
        """From any thread: run ``fn(arg)`` in the Qt thread (queued)."""
        self._relay.deliver.emit(fn, arg)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread: run a plain function on the loop thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (cancelling its tasks) and join the thread."""
        if not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
