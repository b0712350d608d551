"""What does a trained agent believe about BSuite discounting_chain? (docs/archive/results-2026-12.md)

With the newest checkpoint of a run, prints:
- the policy's probability of each arm at an episode's first step;
- for each arm, one episode played with it: the real reward, the posterior's reward prediction and the
  critic's value at chosen steps (after the payment every state is worth 0);
- from chosen states of an arm-1 episode, the mean over rollouts of the imagined rewards, continues and
  values, and the λ-return: a continue head that never nears 0 at the end leaves the values unanchored.

    uv run python tools/diagnose_discounting_chain.py runs/table/bsuite-discounting_chain-0-r2i-s0
"""

from __future__ import annotations

import argparse
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import r2i_envs
from r2i_agent._returns import lambda_returns
from r2i_agent._rundir import load_run
from r2i_agent._train import _observation, restore_train_state
from worldmodel import Carry, initial_carries

ARMS = 5
SHOWN_STEPS = (0, 1, 2, 3, 4, 10, 11, 30, 31, 50, 99, 100)
IMAGINED_FROM = (4, 50, 85, 95, 99, 100)


def play(agent, env, first_action: int, seed: int) -> list:
    """Posterior states of one episode: ``first_action``, then arm 0 (later actions change nothing)."""
    world_model = agent.world_model
    carry = jax.tree.map(lambda x: x[0], initial_carries(world_model, 1))
    obs, states, t = env.reset(), [], 0
    while True:
        step_obs = {k: jnp.asarray(v[0]) for k, v in _observation(obs).items()}
        first = jnp.asarray(bool(obs["is_first"][0]))
        state = world_model.observe_step(carry, step_obs, first, key=jax.random.key(seed + t))
        states.append((state, float(obs["reward"][0])))
        if obs["is_last"][0]:
            return states
        action = first_action if t == 0 else 0
        carry = Carry(state=state, action=jax.nn.one_hot(action, ARMS))
        obs, t = env.step(np.array([action])), t + 1


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("logdir", type=pathlib.Path)
    parser.add_argument("--rollouts", type=int, default=32, help="imagined rollouts per state")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    spec = load_run(args.logdir)
    if not spec.env_id.startswith("bsuite/discounting_chain/"):
        parser.error(f"{spec.env_id} is not a BSuite discounting_chain task")
    state, counters = restore_train_state(spec.config, spec.env_id, args.logdir, env_kwargs=spec.env_kwargs)
    agent, settings = state.agent, spec.config.actor_critic  # the run's γ and λ
    world_model = agent.world_model
    env = r2i_envs.make(spec.env_id, num_envs=1, seed=args.seed)
    print(f"{spec.env_id}: checkpoint at {counters.env_steps} env steps")

    @eqx.filter_jit
    def belief(state):
        features = world_model.policy_features(state)
        return world_model.reward.mean(world_model.features(state)), agent.critic.value(features)

    @eqx.filter_jit
    def imagine(state, key):
        starts = jax.tree.map(lambda x: jnp.broadcast_to(x, (args.rollouts, *x.shape)), state)
        rollout = world_model.imagine(agent.actor.sample, starts, key=key)
        values = jax.vmap(jax.vmap(agent.slow_critic.value))(rollout.policy_features)
        returns = jax.vmap(lambda r, c, v: lambda_returns(r, c, v, settings.discount, settings.lambda_))(
            rollout.rewards, rollout.continues, values
        )
        mean = lambda x: jnp.mean(x, axis=0)
        return mean(rollout.rewards), mean(rollout.continues), mean(values), jnp.mean(returns[:, 0])

    episodes = [play(agent, env, arm, args.seed) for arm in range(ARMS)]
    first_features = world_model.policy_features(episodes[0][0][0])
    probs = [
        float(jnp.exp(agent.actor.log_prob(first_features, jax.nn.one_hot(a, ARMS)))) for a in range(ARMS)
    ]
    print("policy at the first step:", " ".join(f"arm {a} {p:.3f}" for a, p in enumerate(probs)))
    print("per arm, at step t: real reward / predicted reward, critic value")
    for arm, episode in enumerate(episodes):
        shown = []
        for t in SHOWN_STEPS:
            predicted, value = belief(episode[t][0])
            shown.append(f"t{t} {episode[t][1]:.1f}/{float(predicted):.2f} v{float(value):.2f}")
        print(f"  arm {arm}: " + "  ".join(shown))
    print("imagined from states of the arm-1 episode (means over rollouts)")
    for t in IMAGINED_FROM:
        rewards, continues, values, ret = map(np.asarray, imagine(episodes[1][t][0], jax.random.key(t)))
        print(
            f"  t={t}: λ-return {float(ret):.2f}, imagined reward sum {rewards[1:].sum():.2f}, "
            f"min continue {continues.min():.2f}, values {np.round(values[::5], 2)}"
        )


if __name__ == "__main__":
    main()
