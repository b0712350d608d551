"""Why does the real return sag while the imagined one rises? Reads every checkpoint of a run.

For each kept checkpoint it plays held-out episodes (env seeds the run never used) and measures:
- the policy's real return and how often it answers right;
- the reward head on held-out real transitions, split by whether the action paid or cost: the mean
  prediction and how often its sign is right. Wrong answers are rare under a sharp policy, so a second
  set of episodes replaces each action by a uniform one with probability --explore: if the model's
  reward predictions for the actions the policy no longer takes go stale, wrong answers drift towards
  "pays" (hypothesis 1: stale reward model);
- imagination from the posterior states of the policy's own episodes, with the actor: the mean imagined
  reward per step against the mean real reward per step of the same policy (hypothesis 2: the actor
  exploits model errors when imagined > real while the real return falls).
Replay age (hypothesis 3: replay dominated by old data) needs no checkpoint: with capacity ≥ the run's
steps nothing is evicted and a uniform sample's share of the last 10k steps is 10k / steps so far.

With ``--swap BEFORE DURING`` it instead plays the four pairs of world model and actor from two checkpoints
(hypothesis 4: the world model's features drift under a fixed actor, so the sag follows the model's
parameters; hypothesis 5: the actor's own updates make it worse, so the sag follows the actor's).

    uv run python tools/diagnose_sags.py runs/table2/popgym-RepeatPreviousEasy-r2i-s0 --episodes 8
"""

from __future__ import annotations

import argparse
import json
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import r2i_envs
from r2i_agent._agent import act_jit, initial_carries
from r2i_agent._rundir import load_run
from r2i_agent._train import _action_spec, _env_action, _observation, restore_train_state


def play(
    agent, env_id: str, episodes: int, seed: int, explore: float, env_kwargs=None
) -> list[dict[str, np.ndarray]]:
    """Whole episodes with the policy's sampled actions, each replaced by a uniform one w.p. ``explore``."""
    env = r2i_envs.make(env_id, num_envs=1, seed=seed, **(env_kwargs or {}))
    kind, size = _action_spec(env)
    rng = np.random.default_rng(seed)
    carry, obs, key = initial_carries(agent.world_model, 1), env.reset(), jax.random.key(seed)
    done, current, step = [], None, 0
    while len(done) < episodes:
        if obs["is_first"][0]:
            current = {"vector": [], "action": [], "reward": [], "is_first": []}
        action, carry = act_jit(
            agent, carry, _observation(obs), obs["is_first"], jax.random.fold_in(key, step)
        )
        action = np.asarray(action, np.float32)
        if rng.random() < explore:
            action = np.eye(size, dtype=np.float32)[rng.integers(size)][None]
            carry = carry._replace(action=jnp.asarray(action))  # the model reads the action taken
        for name, value in (("vector", obs["vector"][0]), ("reward", obs["reward"][0])):
            current[name].append(value)
        current["action"].append(action[0])
        current["is_first"].append(bool(obs["is_first"][0]))
        obs = env.step(_env_action(kind, action))
        step += 1
        if obs["is_last"][0]:  # the final step's reward closes the episode; its observation is not acted on
            current["reward"].append(obs["reward"][0])
            done.append({k: np.asarray(v) for k, v in current.items()})
    env.close()
    return done


def measure(agent, episodes: list[dict], key) -> dict[str, np.ndarray]:
    """Reward head predictions at every step after the first, next to the real reward, and imagination
    from every posterior state: per-step imagined rewards weighted by the imagined continuation."""
    world_model = agent.world_model
    predicted, real, imagined = [], [], []
    for index, episode in enumerate(episodes):
        obs = {"vector": jnp.asarray(episode["vector"])}
        observed, _ = world_model.observe(
            obs,
            jnp.asarray(episode["action"]),
            jnp.asarray(episode["is_first"]),
            world_model.initial_carry(),
            key=jax.random.fold_in(key, index),
        )
        features = world_model.features(observed.state)
        predicted.append(np.asarray(jax.vmap(world_model.reward.mean)(features))[1:])
        real.append(episode["reward"][1 : len(episode["action"])])
        rollout = world_model.imagine(
            agent.actor.sample, observed.state, key=jax.random.fold_in(key, 10_000 + index)
        )
        alive = np.cumprod(np.asarray(rollout.continues[:, 1:]), axis=1)
        imagined.append(np.sum(np.asarray(rollout.rewards[:, 1:]) * alive) / max(alive.sum(), 1.0))
    return {
        "predicted": np.concatenate(predicted),
        "real": np.concatenate(real),
        "imagined_reward_per_step": np.asarray(imagined),
    }


def checkpoint_row(spec, logdir: pathlib.Path, step: int, args) -> dict[str, float]:
    state, _ = restore_train_state(spec.config, spec.env_id, logdir, step, env_kwargs=spec.env_kwargs)
    agent = state.agent
    seed = 10_000 + args.seed  # held out: training envs use the run's seed
    own = play(agent, spec.env_id, args.episodes, seed, 0.0, spec.env_kwargs)
    mixed = play(agent, spec.env_id, args.episodes, seed + 1, args.explore, spec.env_kwargs)
    own_m = measure(agent, own, jax.random.key(seed))
    mixed_m = measure(agent, mixed, jax.random.key(seed + 1))
    right, wrong = mixed_m["real"] > 0, mixed_m["real"] < 0
    own_scored = own_m["real"][own_m["real"] != 0]
    return {
        "step": step,
        "real_return": float(np.mean([e["reward"].sum() for e in own])),
        "right_fraction": float(np.mean(own_scored > 0)),
        "real_reward_per_step": float(own_m["real"].mean()),
        "imagined_reward_per_step": float(own_m["imagined_reward_per_step"].mean()),
        "pred_on_right": float(mixed_m["predicted"][right].mean()),
        "pred_on_wrong": float(mixed_m["predicted"][wrong].mean()),
        "sign_right_on_right": float(np.mean(mixed_m["predicted"][right] > 0)),
        "sign_right_on_wrong": float(np.mean(mixed_m["predicted"][wrong] < 0)),
        "wrong_steps": int(wrong.sum()),
    }


def swap_rows(spec, logdir: pathlib.Path, before: int, during: int, args) -> list[dict]:
    """Real returns of every (world model, actor) pair from the two checkpoints, on the same held-out envs."""
    agents = {
        step: restore_train_state(spec.config, spec.env_id, logdir, step, env_kwargs=spec.env_kwargs)[0].agent
        for step in (before, during)
    }
    rows = []
    for model_step in (before, during):
        for actor_step in (before, during):
            agent = eqx.tree_at(lambda a: a.actor, agents[model_step], agents[actor_step].actor)
            episodes = play(agent, spec.env_id, args.episodes, 10_000 + args.seed, 0.0, spec.env_kwargs)
            returns = [e["reward"].sum() for e in episodes]
            rows.append(
                {
                    "model_step": model_step,
                    "actor_step": actor_step,
                    "real_return": float(np.mean(returns)),
                    "stderr": float(np.std(returns) / np.sqrt(len(returns))),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("logdir", type=pathlib.Path)
    parser.add_argument("--episodes", type=int, default=8, help="held-out episodes per set and checkpoint")
    parser.add_argument("--explore", type=float, default=0.5, help="uniform-action share of the second set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=None, help="write the rows as JSON lines here")
    parser.add_argument(
        "--swap",
        type=int,
        nargs=2,
        metavar=("BEFORE", "DURING"),
        default=None,
        help="play every pair of world model and actor from these two checkpoint steps",
    )
    args = parser.parse_args(argv)

    spec = load_run(args.logdir)
    if args.swap is not None:
        rows = swap_rows(spec, args.logdir, *args.swap, args)
        for row in rows:
            print(json.dumps(row), flush=True)
        if args.out is not None:
            args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return
    steps = sorted(int(p.name) for p in (args.logdir / "checkpoints").iterdir() if p.name.isdigit())
    if not steps:
        parser.error(f"no checkpoints in {args.logdir / 'checkpoints'}")
    rows = []
    for step in steps:
        row = checkpoint_row(spec, args.logdir, step, args)
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if args.out is not None:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    main()
