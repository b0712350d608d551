"""A vector env whose envs each live in their own worker process (for suites that step slowly).

Workers are started with the ``spawn`` method (forking a process that holds an OpenGL context is unsafe) and
talk over pipes. All workers get their command before any reply is awaited, so envs step in parallel, and
each must answer within ``timeout_s`` of the command. A worker that fails, by dying (seen through its process
sentinel) or by hanging past ``timeout_s`` (it is then killed with SIGKILL), is restarted with a fresh seed
and its episode is reported as ended (``is_last`` without ``is_terminal``, reward 0, the last observation
repeated), so the next step starts a new episode there; the other workers' answers are used as usual. Only
an exception raised inside an env, or one worker failing more than ``max_restarts`` times, raises
:class:`WorkerError` (and stops every worker).
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from r2i_envs._episode import Episodes, Obs, stack
from r2i_envs._spaces import EnvInfo
from r2i_envs._vector import VectorEnv

# A factory gets the restart count (0 for the first start) so a restarted env gets a fresh seed.
Factory = Callable[[int], Episodes]


class WorkerError(RuntimeError):
    """A worker failure that restarting cannot fix: an exception in the env, or more than ``max_restarts``."""


class _Failed(Exception):
    """Internal: the worker process died, or hung and was killed; the message says which."""


def _worker_main(conn: Connection, factory: Factory, restart: int) -> None:
    """Entry point of a worker process: build the env, then serve ``reset``/``step``/``close`` commands."""
    env = None
    try:
        env = factory(restart)
        conn.send(("ok", None))
        while True:
            command, payload = conn.recv()
            if command == "close":
                break
            result = env.reset() if command == "reset" else env.step(payload)
            conn.send(("ok", result))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        if env is not None:
            env.close()
        conn.close()


class _Worker:
    def __init__(self, ctx: Any, factory: Factory, restart: int):
        self.restart = restart
        self.stopped = False
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, factory, restart), daemon=True)
        self.process.start()
        child.close()

    def send(self, command: str, payload: object = None) -> None:
        try:
            self.conn.send((command, payload))
        except (BrokenPipeError, ConnectionResetError, OSError) as err:
            raise _Failed(self._death()) from err

    def receive(self, env_id: str, deadline: float, timeout_s: float) -> Any:
        """The answer to the last command, due by ``deadline`` (``time.monotonic``); SIGKILLs a hung worker.

        Raises ``_Failed`` if the worker died or hung, :class:`WorkerError` if its env raised.
        """
        ready = wait([self.conn, self.process.sentinel], max(0.0, deadline - time.monotonic()))
        if not ready:
            self.process.kill()
            self.process.join(5.0)
            raise _Failed(f"pid {self.process.pid} gave no answer in {timeout_s} s and was killed")
        if self.conn in ready or self.conn.poll():
            try:
                status, result = self.conn.recv()
            except (EOFError, ConnectionResetError, OSError) as err:
                raise _Failed(self._death()) from err
            if status == "error":
                raise WorkerError(f"{env_id}: the env raised in worker pid {self.process.pid}:\n{result}")
            return result
        raise _Failed(self._death())

    def _death(self) -> str:
        self.process.join(1.0)
        return f"pid {self.process.pid} died (exit code {self.process.exitcode})"

    def stop(self, timeout_s: float = 5.0, kill: bool = False) -> None:
        """Ask the worker to close its env, kill it if it does not exit in time, and reap it. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        if kill:
            self.process.kill()
        if self.process.is_alive():
            try:
                self.conn.send(("close", None))
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout_s)
        self.conn.close()
        self.process.close()


class ProcessVectorEnv(VectorEnv):
    """:class:`VectorEnv` with one worker process per env; same interface and semantics.

    Args:
        info: the env description.
        factories: one picklable factory per env, called in the worker with the restart count.
        timeout_s: the longest a worker may take to answer one command; one that takes longer is killed and
            restarted like a dead one.
        max_restarts: how often a single worker may be restarted (after dying or hanging) before
            :class:`WorkerError`.
        start_timeout_s: the longest a worker may take to start and build its env (default ``timeout_s``).
    """

    def __init__(
        self,
        info: EnvInfo,
        factories: Sequence[Factory],
        timeout_s: float = 300.0,
        max_restarts: int = 3,
        start_timeout_s: float | None = None,
    ):
        self._info = info
        self._factories = list(factories)
        self._timeout_s = timeout_s
        self._start_timeout_s = timeout_s if start_timeout_s is None else start_timeout_s
        self._max_restarts = max_restarts
        self._ctx = mp.get_context("spawn")
        self._last: list[Obs | None] = [None] * len(self._factories)
        self._workers: list[_Worker] = []
        try:
            self._workers = [_Worker(self._ctx, f, 0) for f in self._factories]
            deadline = time.monotonic() + self._start_timeout_s
            for i, worker in enumerate(self._workers):
                try:
                    worker.receive(self.env_id, deadline, self._start_timeout_s)
                except _Failed as err:
                    self._restart(i, str(err))
        except BaseException:
            self.close()
            raise

    @property
    def num_envs(self) -> int:
        return len(self._factories)

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers (for monitoring and tests)."""
        return [w.process.pid for w in self._workers]

    @property
    def restarts(self) -> list[int]:
        """How often each worker has been restarted so far."""
        return [w.restart for w in self._workers]

    def reset(self) -> Obs:
        return self._broadcast("reset", [None] * self.num_envs)

    def step(self, action: np.ndarray) -> Obs:
        self._ensure_open()
        return self._broadcast("step", list(self._check(action)))

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def __del__(self) -> None:
        if getattr(self, "_workers", None):
            self.close()

    def _broadcast(self, command: str, payloads: list[object]) -> Obs:
        self._ensure_open()
        failed: dict[int, str] = {}
        results: dict[int, Obs] = {}
        try:
            deadline = time.monotonic() + self._timeout_s
            for i, (worker, payload) in enumerate(zip(self._workers, payloads, strict=True)):
                try:
                    worker.send(command, payload)
                except _Failed as err:
                    failed[i] = str(err)
            # Collect every answer before restarting anyone, so a restart does not eat into others' time.
            for i, worker in enumerate(self._workers):
                if i not in failed:
                    try:
                        results[i] = worker.receive(self.env_id, deadline, self._timeout_s)
                    except _Failed as err:
                        failed[i] = str(err)
            for i, reason in failed.items():
                results[i] = self._recover(i, reason, command)
        except BaseException:
            # Other workers may still owe answers, so the env cannot continue: stop every worker now.
            for worker in self._workers:
                worker.stop(timeout_s=1.0, kill=True)
            self._workers = []
            raise
        ordered = [results[i] for i in range(self.num_envs)]
        self._last[:] = ordered
        return stack(ordered)

    def _ensure_open(self) -> None:
        if not self._workers:
            raise RuntimeError(f"{self.env_id}: the env is closed.")

    def _recover(self, i: int, reason: str, command: str) -> Obs:
        """Restart failed worker ``i`` and return its observation for this step: its episode ends here."""
        last = self._last[i]
        if not (command == "reset" or last is None or last["is_last"]):
            self._restart(i, reason)
            return {
                **last,
                "reward": np.float32(0.0),
                "is_first": np.bool_(False),
                "is_last": np.bool_(True),
                "is_terminal": np.bool_(False),
            }
        while True:  # the step was starting a new episode anyway: start it in the new worker
            self._restart(i, reason)
            worker = self._workers[i]
            try:
                worker.send("reset")
                return worker.receive(self.env_id, time.monotonic() + self._timeout_s, self._timeout_s)
            except _Failed as err:
                reason = str(err)

    def _restart(self, i: int, reason: str) -> None:
        """Replace failed worker ``i`` by a started fresh one (next restart count, so a fresh seed)."""
        while True:
            old = self._workers[i]
            old.stop(timeout_s=1.0, kill=True)
            count = old.restart + 1
            if count > self._max_restarts:
                raise WorkerError(
                    f"{self.env_id}: worker {i} failed {count} times, more than max_restarts="
                    f"{self._max_restarts}; giving up. Last failure: {reason}."
                )
            self._workers[i] = new = _Worker(self._ctx, self._factories[i], count)
            try:
                new.receive(self.env_id, time.monotonic() + self._start_timeout_s, self._start_timeout_s)
                return
            except _Failed as err:
                reason = str(err)
