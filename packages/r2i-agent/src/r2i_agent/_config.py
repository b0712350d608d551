"""Typed, frozen configuration of the agent and its presets (design §3–§4)."""

import dataclasses
from dataclasses import dataclass

from worldmodel import PRESETS as MODEL_PRESETS
from worldmodel import WorldModelConfig


@dataclass(frozen=True)
class ActorCriticConfig:
    """Actor and critic networks, their optimizers and losses (R2I / DreamerV3 v1 defaults).

    units, layers: MLP width and depth of actor and critic. lr, eps: Adam learning rate and epsilon of
    each. clip, critic_clip: global-norm clip of the actor's and of the critic's gradients.
    discount: γ per imagined step (horizon 333). lambda_: λ of the λ-returns.
    entropy: fixed entropy bonus. slow_rate: EMA rate of the slow critic per update. slow_regularizer:
    weight of the pull towards the slow critic. return_decay: EMA decay of the return percentile range.
    lr_decay_steps, lr_end: when lr_decay_steps > 0, actor and critic learning rates fall linearly from lr
    to lr_end over the updates of that many env steps (lr_decay_steps / train.env_steps_per_update updates
    from the first one) and then stay at lr_end: learn fast first, then take small steps (tried on
    RepeatPreviousEasy in docs/archive/results-2026-12.md). 0 keeps lr constant, as R2I and DreamerV3 do.
    """

    units: int = 512
    layers: int = 2
    lr: float = 3e-5
    eps: float = 1e-5
    clip: float = 100.0
    critic_clip: float = 100.0
    discount: float = 1.0 - 1.0 / 333.0
    lambda_: float = 0.95
    entropy: float = 3e-4
    slow_rate: float = 0.02
    slow_regularizer: float = 1.0
    return_decay: float = 0.99
    lr_decay_steps: int = 0
    lr_end: float = 3e-5


@dataclass(frozen=True)
class TrainConfig:
    """The training loop.

    num_envs: environments stepped together. batch_size, batch_length: B sequences of T steps per update.
    train_ratio: replayed steps per environment step (B·T replayed steps per update, so one update every
    B·T / train_ratio env steps). replay_capacity: steps kept in replay (all envs together).
    prefill: env steps with uniformly random actions before the first update (R2I: B·T·envs; updates
    start once every env also holds a whole window, see ``updates_due``). log_every, eval_every,
    checkpoint_every: in env steps. eval_episodes: episodes per evaluation (greedy actions).
    keep_checkpoints: newest checkpoints kept. max_consecutive_skips: non-finite updates in a row that stop a
    run. replay_in_checkpoint: save the replay buffer with each checkpoint (exact resume).
    imagination_chunk: imagination starts whose actor-critic gradients are computed at once (the rest
    follow in equal chunks: same update, less memory). model_chunk: the same for the world model's
    gradient, in replayed steps (sequences × T) per pass.
    episode_windows: start every replayed window at an episode start (else anywhere, so windows span
    episode boundaries and the resets handle them).
    replay_context: keep the acting model's carry (its latent state, x included, and last action) with
    every replayed step and start each window that begins mid-episode from it, as DreamerV3's replay
    context does, instead of from a fresh state that has not seen the episode's start. Costs
    ``WorldModel.carry_size`` floats of replay memory per step; the carries come from the parameters
    that acted, so they go stale as the model trains.
    """

    num_envs: int = 8
    batch_size: int = 16
    batch_length: int = 64
    train_ratio: float = 64.0
    replay_capacity: int = 1_000_000
    prefill: int = 1000
    log_every: int = 1000
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 10_000
    keep_checkpoints: int = 3
    max_consecutive_skips: int = 20
    replay_in_checkpoint: bool = True
    imagination_chunk: int = 1024
    model_chunk: int = 8192
    episode_windows: bool = False
    replay_context: bool = False

    @property
    def env_steps_per_update(self) -> float:
        """Env steps between two updates: B·T / train_ratio."""
        return self.batch_size * self.batch_length / self.train_ratio


@dataclass(frozen=True)
class AgentConfig:
    """Everything a run needs besides the env id, step budget and log directory."""

    model: WorldModelConfig = dataclasses.field(default_factory=WorldModelConfig)
    actor_critic: ActorCriticConfig = ActorCriticConfig()
    train: TrainConfig = TrainConfig()
    seed: int = 0

    def __post_init__(self):
        positive = {
            "train.num_envs": self.train.num_envs,
            "train.batch_size": self.train.batch_size,
            "train.batch_length": self.train.batch_length,
            "train.train_ratio": self.train.train_ratio,
            "train.replay_capacity": self.train.replay_capacity,
            "train.log_every": self.train.log_every,
            "train.eval_every": self.train.eval_every,
            "train.checkpoint_every": self.train.checkpoint_every,
            "train.keep_checkpoints": self.train.keep_checkpoints,
            "train.max_consecutive_skips": self.train.max_consecutive_skips,
            "train.imagination_chunk": self.train.imagination_chunk,
            "train.model_chunk": self.train.model_chunk,
            "actor_critic.lr": self.actor_critic.lr,
            "actor_critic.clip": self.actor_critic.clip,
            "actor_critic.critic_clip": self.actor_critic.critic_clip,
            "actor_critic.lr_end": self.actor_critic.lr_end,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.actor_critic.lr_decay_steps < 0:
            raise ValueError(
                f"actor_critic.lr_decay_steps must not be negative, got {self.actor_critic.lr_decay_steps!r}"
            )
        if not 0 < self.actor_critic.discount <= 1 or not 0 <= self.actor_critic.lambda_ <= 1:
            raise ValueError("actor_critic.discount must be in (0, 1] and actor_critic.lambda_ in [0, 1]")
        if self.train.replay_capacity < self.train.num_envs * self.train.batch_length:
            raise ValueError(
                f"train.replay_capacity ({self.train.replay_capacity}) must hold a window of "
                f"train.batch_length ({self.train.batch_length}) steps for each of {self.train.num_envs} envs"
            )


def _preset(model: str, *, actor_critic: dict | None = None, **train) -> AgentConfig:
    base = AgentConfig()
    return AgentConfig(
        model=MODEL_PRESETS[model],
        actor_critic=dataclasses.replace(base.actor_critic, **(actor_critic or {})),
        train=dataclasses.replace(base.train, **train),
    )


# R2I's configs.yaml (bsuite: configs_backup.yaml): B×T, train ratio, envs, replay size, prefill (its
# train script fills B·T·envs steps). tests/test_presets.py states the official values and each departure.
AGENT_PRESETS: dict[str, AgentConfig] = {
    "bsuite": _preset(
        "bsuite",
        batch_size=16,
        batch_length=256,
        train_ratio=1024,
        num_envs=1,
        replay_capacity=5_000_000,
        prefill=16 * 256 * 1,
    ),
    "popgym": _preset(
        "popgym",
        batch_size=4,
        batch_length=1024,
        train_ratio=64,
        num_envs=8,
        replay_capacity=10_000_000,
        prefill=4 * 1024 * 8,
    ),
    "memorymaze": _preset(
        "memorymaze",
        batch_size=4,
        batch_length=1024,
        train_ratio=64,
        num_envs=40,
        prefill=2 * 40 * 1024,
        actor_critic={"units": 1024, "layers": 4, "lr": 1e-4, "entropy": 1e-3, "clip": 200.0},
    ),
    "atari100k": _preset(
        "atari100k", batch_size=4, batch_length=1024, train_ratio=1024, num_envs=1, prefill=4 * 1024
    ),
    "dmc": _preset("dmc", batch_size=4, batch_length=1024, train_ratio=512, num_envs=4, prefill=4 * 1024 * 4),
    # A laptop-sized run: learns BSuite memory_len with memory length 5 in minutes on a 2-core CPU
    # (`make train`). Departures from the paper's settings, each measured (docs/archive/results-2026-12.md):
    # - 4×4 latents: vector observations of a few bits leave most of a larger latent at the uniform
    #   posterior, and those random one-hots, fed to the SSM every step, drown the remembered bit;
    # - no entropy bonus: under a uniform policy memory_len's reward is the XOR of context and action,
    #   so imagined advantages are ~0 and Adam turns even a 3e-4 bonus into full-size steps that hold
    #   the policy uniform; then the data never show that the context matters. Without it the policy
    #   drifts, its bias gives the reward a first-order link to the context, and the world model finds
    #   it (the actor's 1% unimix still keeps every action's probability ≥ 0.5%);
    # - learning rates 1e-3 (model) and 3e-4 (actor, critic) for a small model and a short run.
    "cpu": AgentConfig(
        model=dataclasses.replace(
            MODEL_PRESETS["tiny"],
            ssm=dataclasses.replace(MODEL_PRESETS["tiny"].ssm, width=64, state=32, layers=2, blocks=4),
            deter=64,
            stoch=4,
            classes=4,
            units=64,
            enc_units=64,
            reward_bins=63,
            policy_input="hidden",
            imag_horizon=15,
            optim=dataclasses.replace(MODEL_PRESETS["tiny"].optim, lr=1e-3),
        ),
        actor_critic=dataclasses.replace(
            AgentConfig().actor_critic, units=64, layers=2, lr=3e-4, entropy=0.0
        ),
        train=dataclasses.replace(
            AgentConfig().train,
            num_envs=4,
            batch_size=8,
            batch_length=32,
            train_ratio=64,
            replay_capacity=100_000,
            prefill=1000,
            log_every=500,
            eval_every=2000,
            eval_episodes=10,
            checkpoint_every=5000,
        ),
    ),
    "tiny": _preset(
        "tiny",
        actor_critic={"units": 32, "layers": 1, "lr": 1e-3},
        num_envs=2,
        batch_size=4,
        batch_length=16,
        train_ratio=32,
        replay_capacity=20_000,
        prefill=100,
        log_every=100,
        eval_every=500,
        eval_episodes=2,
        checkpoint_every=200,
    ),
}


def agent_preset(name: str) -> AgentConfig:
    """The agent preset called ``name``; unknown names list the available ones."""
    if name not in AGENT_PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(sorted(AGENT_PRESETS))}")
    return AGENT_PRESETS[name]
