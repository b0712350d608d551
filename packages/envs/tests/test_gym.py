"""Gymnasium envs: gym/<id> for registered ids and user suites from `register`, through the contract."""

import numpy as np
import pytest

import r2i_envs
from r2i_envs import UnknownEnvError, env_seed

gym = pytest.importorskip("gymnasium")
spaces = gym.spaces


class Flags(gym.Env):
    """``vector`` [t, noise]; an asymmetric 2-d Box action it records; ends after ``length`` steps,
    ``terminated`` or ``truncated`` as ``end`` says."""

    observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32))

    def __init__(self, end="terminate", length=3):
        self.end, self.length, self.actions, self.t = end, length, [], 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.actions.append(np.array(action))
        self.t += 1
        done = self.t >= self.length
        return self._obs(), 1.0, done and self.end == "terminate", done and self.end == "truncate", {}

    def _obs(self):
        return np.array([self.t, self.np_random.uniform()], np.float32)


class DictObs(gym.Env):
    """A Dict observation with one 32×32 RGB camera and vector leaves of every kind."""

    observation_space = spaces.Dict(
        {
            "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "key": spaces.Discrete(3, start=1),
            "bits": spaces.MultiBinary(2),
            "camera": spaces.Box(0, 255, (32, 32, 3), np.uint8),
        }
    )
    action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), float(action), False, False, {}

    def _obs(self):
        rng = self.np_random
        colour = rng.integers(0, 256, 3).astype(np.uint8)
        return {
            "pos": rng.uniform(-1, 1, 2).astype(np.float32),
            "key": int(rng.integers(1, 4)),
            "bits": rng.integers(0, 2, 2).astype(np.int8),
            "camera": np.broadcast_to(colour, (32, 32, 3)).copy(),  # one colour: resizing keeps it exactly
        }


class Grey(gym.Env):
    """A 64×64×1 grey image observation, 2 actions, episodes of 5 steps."""

    observation_space = spaces.Box(0, 255, (64, 64, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, self.t >= 5, False, {}

    def _obs(self):
        return self.np_random.integers(0, 256, (64, 64, 1)).astype(np.uint8)


class Odd(gym.Env):
    """Spaces r2i_envs refuses, chosen by ``kind``."""

    def __init__(self, kind):
        image = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.observation_space = spaces.Tuple((image, image)) if kind == "two_images" else image
        self.action_space = spaces.MultiBinary(3) if kind == "multibinary_action" else spaces.Discrete(2)


TINY = {"flags": Flags, "dict": DictObs, "grey": Grey, "odd": Odd}


@pytest.fixture(scope="module", autouse=True)
def tiny_suite():
    r2i_envs.register("tiny", lambda name, **kwargs: TINY[name](**kwargs))


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("gym/CartPole-v1", {}),
        ("gym/Pendulum-v1", {"max_episode_steps": 30}),
        ("tiny/flags", {}),
        ("tiny/dict", {"max_steps": 6}),
        ("tiny/grey", {}),
    ],
)
def test_contract(env_id, kwargs):
    r2i_envs.check_env(env_id, **kwargs)


def test_spaces_and_episode_lengths():
    cartpole = r2i_envs.describe("gym/CartPole-v1")
    assert cartpole.act_space["action"] == r2i_envs.Space((), "int32", 0, 1, n=2)
    assert cartpole.obs_space["vector"].shape == (4,) and "image" not in cartpole.obs_space
    assert cartpole.episode_length == 500 and cartpole.extra == "gym"
    pendulum = r2i_envs.describe("gym/Pendulum-v1", max_episode_steps=30)
    assert pendulum.act_space["action"] == r2i_envs.Space((1,), "float32", -1.0, 1.0)
    assert pendulum.obs_space["vector"] == r2i_envs.Space((3,), "float32", -8.0, 8.0)
    assert pendulum.episode_length == 30
    info = r2i_envs.describe("tiny/dict")
    assert info.obs_space["vector"] == r2i_envs.Space((7,), "float32", -1.0, 1.0)  # bits 2, key 3, pos 2
    assert info.obs_space["image"] == r2i_envs.Space((64, 64, 3), "uint8", 0, 255)
    assert info.episode_length is None


def _inner(env, i=0):
    """The gymnasium env behind env ``i`` of a VectorEnv (Episodes -> GymEnv -> gymnasium.Env)."""
    return env._envs[i]._env._env


def test_box_actions_reach_the_env_at_its_bounds():
    with r2i_envs.make("gym/Pendulum-v1", num_envs=2) as env:
        env.reset()
        env.step(np.array([[-1.0], [1.0]], np.float32))
        assert [_inner(env, i).unwrapped.last_u for i in range(2)] == [-2.0, 2.0]
    with r2i_envs.make("tiny/flags", length=10) as env:
        env.reset()
        for action in ([-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]):
            env.step(np.array([action], np.float32))
        np.testing.assert_allclose(_inner(env).actions, [[-2, 0], [2, 10], [0, 7.5]])
        assert _inner(env).actions[0].dtype == np.float32


@pytest.mark.parametrize("env_id", ["gym/Pendulum-v1", "gym/CartPole-v1", "tiny/dict", "tiny/flags"])
def test_an_env_pickles_mid_episode_and_its_copy_steps_alike(env_id):
    """The agent's checkpoints keep an in-process env by pickling it, so that a resumed run continues the
    same episodes: every observation encoder and action decoder must pickle."""
    import pickle

    with r2i_envs.make(env_id, num_envs=2, seed=4) as env:
        space = env.act_space["action"]
        rng = np.random.default_rng(0)
        draw = lambda: (
            rng.integers(0, space.n, 2)
            if space.n
            else rng.uniform(-1, 1, (2, *space.shape)).astype(np.float32)
        )
        env.reset()
        env.step(draw())
        copy = pickle.loads(pickle.dumps(env))
        for _ in range(4):
            action = draw()
            ours, theirs = env.step(action), copy.step(action)
            for key in ours:
                np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{env_id} {key}")
        copy.close()


def test_dict_observations_split_into_vector_and_image():
    with r2i_envs.make("tiny/dict", num_envs=2, seed=3) as env:
        obs = env.reset()
    for i in range(2):
        raw, _ = DictObs().reset(seed=env_seed(3, i))
        expected = np.concatenate([raw["bits"], np.eye(3)[raw["key"] - 1], raw["pos"]])  # sorted keys
        np.testing.assert_array_equal(obs["vector"][i], expected.astype(np.float32))
        np.testing.assert_array_equal(obs["image"][i], np.broadcast_to(raw["camera"][0, 0], (64, 64, 3)))


def test_grey_images_become_rgb():
    with r2i_envs.make("tiny/grey", seed=1) as env:
        image = env.reset()["image"][0]
    raw, _ = Grey().reset(seed=env_seed(1, 0))
    np.testing.assert_array_equal(image, np.repeat(raw, 3, axis=-1))


@pytest.mark.parametrize(("end", "terminal"), [("terminate", True), ("truncate", False)])
def test_terminated_and_truncated_flags(end, terminal):
    with r2i_envs.make("tiny/flags", num_envs=1, end=end) as env:
        env.reset()
        action = np.zeros((1, 2), np.float32)
        flags = [env.step(action) for _ in range(4)]
    assert [bool(o["is_last"][0]) for o in flags] == [False, False, True, False]
    assert [bool(o["is_terminal"][0]) for o in flags] == [False, False, terminal, False]
    assert flags[3]["is_first"][0]  # auto-reset


def test_each_env_is_seeded_once_from_seed_and_index():
    with r2i_envs.make("tiny/flags", num_envs=2, seed=5, length=1) as env:
        firsts = [env.reset()["vector"]]
        action = np.zeros((2, 2), np.float32)
        for _ in range(2):
            env.step(action)  # ends the episode
            firsts.append(env.step(action)["vector"])  # the first observation of the next one
    for i in range(2):
        single = Flags(length=1)
        expected = [single.reset(seed=env_seed(5, i))[0]]
        for _ in range(2):
            single.step(np.zeros(2, np.float32))
            expected.append(single.reset()[0])  # later episodes continue the env's generator
        np.testing.assert_array_equal([f[i] for f in firsts], expected)
    assert len({f[i, 1] for f in firsts for i in range(2)}) == 6


def test_wrong_actions_raise_one_clear_error():
    with r2i_envs.make("gym/CartPole-v1", num_envs=2) as env:
        env.reset()
        for bad in (np.array([0, 2]), np.zeros(2, np.float32), np.zeros(3, np.int64)):
            with pytest.raises(ValueError, match=r"gym/CartPole-v1: action must be an integer array"):
                env.step(bad)
    with r2i_envs.make("gym/Pendulum-v1") as env:
        env.reset()
        with pytest.raises(ValueError, match=r"gym/Pendulum-v1: action must be a float array"):
            env.step(np.full((1, 1), 1.5, np.float32))


def test_unsupported_spaces_are_refused_by_name():
    with pytest.raises(TypeError, match=r"tiny/odd: action space MultiBinary\(3\) is not supported"):
        r2i_envs.describe("tiny/odd", kind="multibinary_action")
    with pytest.raises(ValueError, match=r"2 image leaves \(observation\[0\], observation\[1\]\)"):
        r2i_envs.make("tiny/odd", kind="two_images")


def test_unknown_gym_ids_and_listing():
    with pytest.raises(UnknownEnvError, match="Nearest ids: gym/CartPole-v1"):
        r2i_envs.make("gym/CartPol-v1")
    assert "gym/CartPole-v1" in r2i_envs.list_envs("gym")
    assert not [i for i in r2i_envs.list_envs() if i.startswith("gym/")]
    assert r2i_envs.list_envs("debug") == ["debug/crash", "debug/hang"]
    with pytest.raises(UnknownEnvError, match="Unknown suite 'gymnasium'"):
        r2i_envs.list_envs("gymnasium")


def test_register_refuses_built_in_prefixes_and_bad_factories():
    for prefix in ("gym", "popgym", "atari"):
        with pytest.raises(ValueError, match=f"prefix '{prefix}' is a built-in suite"):
            r2i_envs.register(prefix, Flags)
    with pytest.raises(ValueError, match="without '/'"):
        r2i_envs.register("a/b", Flags)
    r2i_envs.register("notgym", lambda name, **kwargs: object())
    with pytest.raises(TypeError, match="notgym/x: the registered factory returned object"):
        r2i_envs.make("notgym/x")


def test_registered_suite_in_worker_processes():
    # gymnasium.make is picklable, so spawned workers can build the env without the registration.
    r2i_envs.register("viamake", gym.make)
    with r2i_envs.make("viamake/CartPole-v1", num_envs=1, seed=2, processes=True) as env:
        assert isinstance(env, r2i_envs.ProcessVectorEnv)
        first = env.reset()["vector"]
    with r2i_envs.make("gym/CartPole-v1", num_envs=1, seed=2) as env:
        np.testing.assert_array_equal(first, env.reset()["vector"])
