"""Env ids of every suite, and ``list_envs`` / ``describe`` / ``make`` / ``register`` on top of them."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable

import numpy as np

from r2i_envs import _atari, _bsuite, _debug, _dmc, _gym, _memorymaze, _popgym
from r2i_envs._episode import Episodes, SuiteEnv
from r2i_envs._spaces import EnvInfo
from r2i_envs._vector import VectorEnv
from r2i_envs._workers import ProcessVectorEnv


class UnknownEnvError(ValueError):
    """The env id names no env of any suite."""


@dataclasses.dataclass(frozen=True)
class Suite:
    """One suite: its id prefix, names, how to describe and create an env, and where it steps."""

    prefix: str
    names: tuple[str, ...]
    describe: Callable[[str, str, dict[str, object]], EnvInfo]
    create: Callable[[str, int, dict[str, object]], SuiteEnv]
    processes: bool  # step each env in its own worker process by default (slow suites)
    versions: str
    parametric: tuple[str, ...] = ()  # names that need kwargs (not listed by list_envs)
    processes_only: bool = False  # refuse processes=False (the debug suite's faults would hit the caller)
    # ProcessVectorEnv limits: seconds to answer one command, seconds to start, restarts per worker.
    timeout_s: float = 300.0
    start_timeout_s: float = 300.0
    max_restarts: int = 3
    # Open suites (gym/, user suites) take names beyond ``names``: ``accepts(name)`` says whether one exists,
    # ``catalog()`` lists them for ``list_envs(prefix)``, ``nearest(name)`` suggests ids for a wrong one.
    accepts: Callable[[str], bool] | None = None
    catalog: Callable[[], list[str]] | None = None
    nearest: Callable[[str], list[str]] | None = None


SUITES: tuple[Suite, ...] = (
    Suite(
        "bsuite",
        _bsuite.IDS,
        _bsuite.describe,
        _bsuite.create,
        False,
        _bsuite.VERSION,
        _bsuite.PARAMETRIC_IDS,
    ),
    Suite("popgym", _popgym.IDS, _popgym.describe, _popgym.create, False, _popgym.VERSION),
    Suite("memorymaze", _memorymaze.IDS, _memorymaze.describe, _memorymaze.create, True, _memorymaze.VERSION),
    Suite("dmc", _dmc.IDS, _dmc.describe, _dmc.create, True, _dmc.VERSION),
    Suite(
        "dmc-vision",
        _dmc.IDS,
        functools.partial(_dmc.describe, vision=True),
        functools.partial(_dmc.create, vision=True),
        True,
        _dmc.VERSION,
    ),
    Suite("atari", _atari.IDS, _atari.describe, _atari.create, True, _atari.VERSION),
    Suite(
        "debug",
        _debug.IDS,
        _debug.describe,
        _debug.create,
        True,
        _debug.VERSION,
        processes_only=True,
        timeout_s=_debug.TIMEOUT_S,
        start_timeout_s=_debug.START_TIMEOUT_S,
        max_restarts=_debug.MAX_RESTARTS,
    ),
    Suite(
        "gym",
        (),
        _gym.describe,
        _gym.create,
        False,
        _gym.VERSION,
        accepts=_gym.registered,
        catalog=_gym.registered_ids,
        nearest=_gym.nearest_ids,
    ),
)
_BUILT_IN = {suite.prefix: suite for suite in SUITES}
# Suites added by `register`, by prefix: the one piece of module state, as in gymnasium's own registry.
_USER_SUITES: dict[str, Suite] = {}


def _suites() -> dict[str, Suite]:
    return {**_BUILT_IN, **_USER_SUITES}


def register(prefix: str, factory: Callable[..., object], *, processes: bool = False) -> None:
    """Make ``make(f"{prefix}/NAME", **kwargs)`` build ``factory(NAME, **kwargs)``, a ``gymnasium.Env``.

    The env goes through the same adapter as ``gym/`` ids (spaces, seeding, auto-reset); its episode length
    is ``env.spec.max_episode_steps`` when it has a spec. Registering a prefix again replaces it; a built-in
    suite's prefix is refused. ``processes=True`` steps each env in a worker process by default; worker
    processes (``spawn``) need ``factory`` to be picklable, i.e. a module-level function or class.

    >>> register("mine", lambda name, **kw: MyEnv(name, **kw))  # doctest: +SKIP
    >>> env = make("mine/easy", num_envs=2)  # doctest: +SKIP
    """
    if not isinstance(prefix, str) or not prefix or "/" in prefix:
        raise ValueError(f"register: prefix must be a non-empty string without '/'; got {prefix!r}.")
    if prefix in _BUILT_IN:
        raise ValueError(
            f"register: prefix {prefix!r} is a built-in suite ({', '.join(_BUILT_IN)}); choose another one."
        )
    if not callable(factory):
        raise TypeError(f"register: factory must be callable as factory(name, **kwargs); got {factory!r}.")
    _USER_SUITES[prefix] = Suite(
        prefix,
        (),
        functools.partial(_gym.describe_user, factory),
        functools.partial(_gym.create_user, factory, prefix),
        processes,
        f"registered by the user ({getattr(factory, '__qualname__', type(factory).__name__)})",
        accepts=bool,
    )


def list_envs(suite: str | None = None) -> list[str]:
    """Env ids: of every built-in suite (``bsuite/memory_len/0``, ..., ``debug/hang``), or of ``suite``.

    Parametric ids that need kwargs are not listed: ``bsuite/memory_len`` (``memory_length=L``, optional
    ``num_bits``) and ``bsuite/discounting_chain`` (optional ``mapping_seed``). Nor are ``gym/`` ids, which
    depend on the packages installed and imported: ``list_envs("gym")`` lists gymnasium's registry now. A
    registered user suite lists nothing (it takes any name).
    """
    if suite is None:
        return [f"{s.prefix}/{name}" for s in SUITES for name in s.names]
    chosen = _suites().get(suite)
    if chosen is None:
        raise UnknownEnvError(f"Unknown suite {suite!r}; suites: {', '.join(_suites())}.")
    names = chosen.catalog() if chosen.catalog is not None else chosen.names
    return [f"{chosen.prefix}/{name}" for name in names]


def _resolve(env_id: str) -> tuple[Suite, str]:
    prefix, _, name = env_id.partition("/")
    suite = _suites().get(prefix)
    if suite is not None and (name in suite.names or name in suite.parametric):
        return suite, name
    if suite is not None and suite.accepts is not None and name and suite.accepts(name):
        return suite, name
    if suite is not None and suite.nearest is not None:
        close = [f"{prefix}/{n}" for n in suite.nearest(name)]
    else:
        known = list_envs() + [f"{s.prefix}/{n}" for s in SUITES for n in s.parametric]
        close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.6)
        if not close and suite is not None:
            close = [i for i in known if i.startswith(prefix + "/")][:5]
    hint = f" Nearest ids: {', '.join(close)}." if close else ""
    raise UnknownEnvError(
        f"Unknown env id {env_id!r}.{hint} Suites: {', '.join(_suites())}; list_envs() lists every id "
        "(gym/ takes any registered Gymnasium id)."
    )


def describe(env_id: str, *, max_steps: int | None = None, **kwargs: object) -> EnvInfo:
    """Spaces, episode length and score metric of ``env_id`` (with the kwargs ``make`` would get).

    Cheap for bsuite/popgym/memorymaze; dmc and atari build one env briefly (no rendering).
    """
    suite, name = _resolve(env_id)
    info = suite.describe(env_id, name, dict(kwargs))
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"{env_id}: max_steps must be >= 1; got {max_steps}.")
        length = max_steps if info.episode_length is None else min(info.episode_length, max_steps)
        info = dataclasses.replace(info, episode_length=length, fixed_length=info.fixed_length)
    return info


def make(
    env_id: str,
    num_envs: int = 1,
    seed: int = 0,
    *,
    processes: bool | None = None,
    max_steps: int | None = None,
    **kwargs: object,
) -> VectorEnv:
    """Create ``num_envs`` envs of ``env_id`` behind one vectorized, auto-resetting interface.

    Args:
        env_id: an id from :func:`list_envs`, a parametric bsuite id with its kwargs, ``gym/<id>`` for any
            registered Gymnasium id, or ``<prefix>/<name>`` of a suite added with :func:`register`.
        num_envs: number of environments; every array gets this leading dim.
        seed: root seed; env ``i`` gets a seed derived from ``(seed, i)``, so the same seed replays the same
            episodes (for the same actions) and different seeds give different ones.
        processes: step each env in its own worker process; default True for memorymaze, dmc, dmc-vision,
            atari and debug (which refuses False), False for bsuite, popgym and gym (a registered suite: as
            registered).
        max_steps: end episodes after this many agent steps (``is_last`` without ``is_terminal``), in
            addition to the suite's own limit. Handy for short tests.
        kwargs: suite options (e.g. ``memory_length`` for ``bsuite/memory_len``, ``sticky_actions`` for
            atari, ``action_repeat`` for dmc, ``fault_at`` for debug; passed on to ``gymnasium.make`` for
            ``gym/`` and to the factory of a registered suite).

    Returns:
        A :class:`VectorEnv`; close it (or use it as a context manager) to stop its worker processes.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
        raise ValueError(f"{env_id}: num_envs must be an integer >= 1; got {num_envs!r}.")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"{env_id}: seed must be a non-negative integer; got {seed!r}.")
    info = describe(env_id, max_steps=max_steps, **kwargs)
    suite, name = _resolve(env_id)
    factories = [
        functools.partial(_episodes, suite.create, name, int(seed), i, max_steps, dict(kwargs))
        for i in range(num_envs)
    ]
    if processes is False and suite.processes_only:
        raise ValueError(f"{env_id} runs only in worker processes (its faults would hit this process).")
    if suite.processes if processes is None else processes:
        return ProcessVectorEnv(
            info,
            factories,
            timeout_s=suite.timeout_s,
            max_restarts=suite.max_restarts,
            start_timeout_s=suite.start_timeout_s,
        )
    return VectorEnv(info, [functools.partial(f, 0) for f in factories])


def env_seed(seed: int, index: int, restart: int = 0) -> int:
    """The seed of env ``index`` (after ``restart`` worker restarts) under root ``seed``: a 31-bit int."""
    state = np.random.SeedSequence([seed, index, restart]).generate_state(1)[0]
    return int(state) % 2**31


def _episodes(
    create: Callable[[str, int, dict[str, object]], SuiteEnv],
    name: str,
    seed: int,
    index: int,
    max_steps: int | None,
    kwargs: dict[str, object],
    restart: int,
) -> Episodes:
    """Build env ``index`` with its suite's ``create`` (module level, so worker processes can unpickle it;
    ``create`` travels along, so a registered suite works there too)."""
    return Episodes(create(name, env_seed(seed, index, restart), kwargs), max_steps)
