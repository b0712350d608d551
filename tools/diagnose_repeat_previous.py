"""Which past card does a trained agent answer on POPGym RepeatPrevious*? (docs/archive/results-2026-12.md)

Plays greedy episodes with the newest checkpoint of a run and prints, over all scored steps:
- how often the action names the suit seen L steps back, for L = 1..7 (the task asks for one lag, whose
  agreement is the fraction of right answers; the others sit near chance, 0.25, unless answers slip a step);
- the fraction right per step of the episode, and how often each action is taken.
An agent that forgets the card some of the time answers right at the task's lag less often, evenly over
positions and suits; one that mixes up lags agrees more with the neighbouring lags.

    uv run python tools/diagnose_repeat_previous.py runs/table/popgym-RepeatPreviousEasy-r2i-s0 --episodes 20
"""

from __future__ import annotations

import argparse
import collections
import pathlib

import jax
import numpy as np

import r2i_envs
from r2i_agent._agent import act_jit, initial_carries
from r2i_agent._rundir import load_run
from r2i_agent._train import _action_spec, _env_action, _observation, restore_train_state

LAGS = range(1, 8)


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("logdir", type=pathlib.Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=123, help="env and action-sampling seed")
    args = parser.parse_args(argv)

    spec = load_run(args.logdir)
    if not spec.env_id.startswith("popgym/RepeatPrevious"):
        parser.error(f"{spec.env_id} is not a POPGym RepeatPrevious task")
    state, counters = restore_train_state(spec.config, spec.env_id, args.logdir, env_kwargs=spec.env_kwargs)
    env = r2i_envs.make(spec.env_id, num_envs=1, seed=args.seed)
    kind, _ = _action_spec(env)
    carry, obs = initial_carries(state.agent.world_model, 1), env.reset()
    key = jax.random.key(args.seed)
    agree = collections.defaultdict(list)  # lag -> [action == suit seen lag steps back]
    right_at = collections.defaultdict(list)  # step of the episode -> [reward > 0]
    actions = collections.Counter()
    suits: list[int] = []
    episodes, step = 0, 0
    while episodes < args.episodes:
        if obs["is_first"][0]:
            suits = []
        suits.append(int(np.argmax(obs["vector"][0])))
        action, carry = act_jit(
            state.agent, carry, _observation(obs), obs["is_first"], jax.random.fold_in(key, step), True
        )
        env_action = _env_action(kind, np.asarray(action))  # the one-hot action → the env's index
        answer = int(np.asarray(env_action).reshape(-1)[0])
        obs = env.step(env_action)
        step += 1
        if obs["reward"][0] != 0:  # a scored step
            right_at[len(suits) - 1].append(bool(obs["reward"][0] > 0))
            actions[answer] += 1
            for lag in LAGS:
                if len(suits) >= lag:
                    agree[lag].append(answer == suits[-lag])
        episodes += int(obs["is_last"][0])
    env.close()

    mean = lambda values: round(float(np.mean(values)), 3)
    right = [r for values in right_at.values() for r in values]
    print(f"{spec.env_id}, checkpoint of env step {counters.env_steps}, {args.episodes} greedy episodes")
    print(f"right answers: {mean(right)} (return {2 * mean(right) - 1:.2f})")
    print("action == suit seen L steps back (L = 1: this step's):", {k: mean(v) for k, v in agree.items()})
    print("right per step of the episode:", {k: mean(v) for k, v in sorted(right_at.items())})
    print("actions taken:", dict(sorted(actions.items())))


if __name__ == "__main__":
    main()
