"""A vector env whose envs each live in their own worker process (for suites that step slowly).

Workers are started with the ``spawn`` method (forking a process that holds an OpenGL context is unsafe) and
talk over pipes. All workers get their command before any reply is awaited, so envs step in parallel. A worker
that dies is detected through its process sentinel: it is restarted with a fresh seed and its episode is
reported as ended (``is_last`` without ``is_terminal``, reward 0, the last observation repeated), so the next
step starts a new episode there. A worker that neither answers nor dies within ``timeout_s`` raises
:class:`WorkerError` instead of hanging.
"""

from __future__ import annotations

import multiprocessing as mp
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
    """A worker process failed in a way that restarting cannot fix (an exception in the env, or a hang)."""


class _Died(Exception):
    """Internal: the worker process is gone."""


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
            raise _Died from err

    def receive(self, env_id: str, timeout_s: float) -> Any:
        ready = wait([self.conn, self.process.sentinel], timeout_s)
        if not ready:
            raise WorkerError(f"{env_id}: worker pid {self.process.pid} gave no answer in {timeout_s} s.")
        if self.conn in ready or self.conn.poll():
            try:
                status, result = self.conn.recv()
            except (EOFError, ConnectionResetError, OSError) as err:
                raise _Died from err
            if status == "error":
                raise WorkerError(f"{env_id}: the env raised in worker pid {self.process.pid}:\n{result}")
            return result
        raise _Died

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
        timeout_s: the longest a worker may take to answer one command before :class:`WorkerError`.
        max_restarts: how often a single worker may be restarted before :class:`WorkerError`.
    """

    def __init__(
        self,
        info: EnvInfo,
        factories: Sequence[Factory],
        timeout_s: float = 300.0,
        max_restarts: int = 3,
    ):
        self._info = info
        self._factories = list(factories)
        self._timeout_s = timeout_s
        self._max_restarts = max_restarts
        self._ctx = mp.get_context("spawn")
        self._last: list[Obs | None] = [None] * len(self._factories)
        self._workers: list[_Worker] = []
        try:
            self._workers = [_Worker(self._ctx, f, 0) for f in self._factories]
            for i in range(len(self._workers)):
                if not self._try_receive(i)[0]:
                    self._restart(i)
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
        sent = []
        for worker, payload in zip(self._workers, payloads, strict=True):
            try:
                worker.send(command, payload)
                sent.append(True)
            except _Died:
                sent.append(False)
        results = []
        try:
            for i, ok in enumerate(sent):
                alive, result = self._try_receive(i) if ok else (False, None)
                if not alive:  # the worker died: restart it and end its episode
                    self._restart(i)
                    result = self._crashed_episode(i, command)
                self._last[i] = result
                results.append(result)
        except BaseException:
            # Other workers may still owe answers, so the env cannot continue: stop every worker now.
            for worker in self._workers:
                worker.stop(timeout_s=1.0, kill=True)
            self._workers = []
            raise
        return stack(results)

    def _ensure_open(self) -> None:
        if not self._workers:
            raise RuntimeError(f"{self.env_id}: the env is closed.")

    def _try_receive(self, i: int) -> tuple[bool, Any]:
        """``(True, answer)`` from worker ``i``, or ``(False, None)`` if it died."""
        try:
            return True, self._workers[i].receive(self.env_id, self._timeout_s)
        except _Died:
            return False, None

    def _restart(self, i: int) -> None:
        old = self._workers[i]
        count = old.restart + 1
        old.stop(timeout_s=1.0)
        if count > self._max_restarts:
            raise WorkerError(f"{self.env_id}: worker {i} died {count} times; giving up.")
        self._workers[i] = _Worker(self._ctx, self._factories[i], count)
        if not self._try_receive(i)[0]:
            self._restart(i)

    def _crashed_episode(self, i: int, command: str) -> Obs:
        last = self._last[i]
        if command == "reset" or last is None or last["is_last"]:
            # The step was starting a new episode anyway: start it in the new worker.
            try:
                self._workers[i].send("reset")
                return self._workers[i].receive(self.env_id, self._timeout_s)
            except _Died as err:
                raise WorkerError(f"{self.env_id}: worker {i} died right after its restart.") from err
        return {
            **last,
            "reward": np.float32(0.0),
            "is_first": np.bool_(False),
            "is_last": np.bool_(True),
            "is_terminal": np.bool_(False),
        }
