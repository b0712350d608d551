"""Can the world model learn BSuite memory_len's reward from replay? An offline probe (no actor).

memory_len's reward at the last step is +1 when the last action matches the context bit shown at the
episode's start, −1 otherwise: with a uniform policy it is the XOR of (context, action), so neither alone
predicts it. This script fills a replay with ``--steps`` env steps of a random policy (``--p1``: probability
of action 1), trains only the world model on windows of it, and reports how often the reward head gets the
sign of the final reward right, plus how strongly h at that step carries the context and the last action
(norm of the difference of group means).

    uv run python tools/probe_memory_reward.py --env bsuite/memory_len/0 --updates 4000   # learns (~1.5k)
    uv run python tools/probe_memory_reward.py --env bsuite/memory_len/4 --lr 3e-4   # stays at chance
    uv run python tools/probe_memory_reward.py --env bsuite/memory_len/4 --p1 0.8   # learned by ~1.5k updates
"""

import argparse
import dataclasses
import json
import time

import equinox as eqx
import jax
import numpy as np

import r2i_envs
from r2i_agent import agent_preset
from r2i_agent._replay import Replay
from r2i_agent._train import _obs_shapes, _observation, _replay_fields, _to_batch
from worldmodel import WorldModel, initial_carries, make_optimizer, train_step


def model_config(args):
    config = agent_preset(args.preset).model
    if args.model == "rssm":
        config = dataclasses.replace(config, sequence_model="rssm", policy_input="output")
    sizes = {
        k: getattr(args, k) for k in ("stoch", "classes", "units", "layers", "deter") if getattr(args, k)
    }
    optim = dataclasses.replace(config.optim, lr=args.lr or config.optim.lr)
    ssm = dataclasses.replace(config.ssm, width=args.width or config.ssm.width)
    return dataclasses.replace(config, optim=optim, ssm=ssm, **sizes)


def fill_replay(args) -> tuple[Replay, dict]:
    env = r2i_envs.make(args.env, num_envs=4, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    replay = Replay(args.steps * 2, _replay_fields(env, 2), 4, seed=args.seed)
    obs, shapes = env.reset(), _obs_shapes(env)
    for _ in range(args.steps // 4):
        action = np.eye(2, dtype=np.float32)[(rng.random(4) < args.p1).astype(int)]
        keys = ("reward", "is_first", "is_last", "is_terminal")
        replay.add({**_observation(obs), "action": action, **{k: obs[k] for k in keys}})
        obs = env.step(action.argmax(-1))
    env.close()
    return replay, shapes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="bsuite/memory_len/4")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--model", choices=["s3m", "rssm"], default="s3m")
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps of random play in replay")
    parser.add_argument("--p1", type=float, default=0.5, help="probability of action 1 in the data")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    for name in ("stoch", "classes", "units", "layers", "deter", "width"):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    args = parser.parse_args(argv)

    config = model_config(args)
    replay, shapes = fill_replay(args)
    model = WorldModel(config, shapes, 2, key=jax.random.key(args.seed))
    optimizer = make_optimizer(config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    step = eqx.filter_jit(train_step)
    probe, _ = _to_batch(replay.sample(512, args.length, episode_starts=True))  # no context: fresh starts

    @eqx.filter_jit
    def predict(model, batch, key):
        carry = initial_carries(model, batch.reward.shape[0])
        keys = jax.random.split(key, batch.reward.shape[0])
        observe = lambda o, a, f, c, k: model.observe(o, a, f, c, key=k)[0]
        states = jax.vmap(observe)(batch.obs, batch.action, batch.is_first, carry, keys).state
        return jax.vmap(jax.vmap(model.reward.mean))(model.features(states)), states.deter

    def report(i: int, seconds: float) -> dict:
        reward, deter = map(np.asarray, predict(model, probe, jax.random.key(i)))
        rows = np.arange(len(reward))
        last = np.asarray(probe.is_terminal).argmax(1)  # each window's first episode end
        truth = np.asarray(probe.reward)[rows, last]
        context = np.asarray(probe.obs["vector"])[rows, 0, -1] > 0
        action = np.asarray(probe.action)[rows, last - 1, 1] > 0
        h = deter[rows, last]

        def effect(flag):
            return float(np.linalg.norm(h[flag].mean(0) - h[~flag].mean(0)))

        return {
            "update": i,
            "seconds": round(seconds, 1),
            "sign_accuracy": float(np.mean(np.sign(reward[rows, last]) == np.sign(truth))),
            "mean_abs_prediction": float(np.abs(reward[rows, last]).mean()),
            "h_context_effect": round(effect(context), 4),
            "h_action_effect": round(effect(action), 4),
            "h_spread": round(float(np.linalg.norm(h - h.mean(0), axis=-1).mean()), 4),
        }

    start = time.perf_counter()
    for i in range(args.updates + 1):
        if i % args.every == 0:
            print(json.dumps(report(i, time.perf_counter() - start)), flush=True)
        batch, _ = _to_batch(replay.sample(args.batch, args.length))
        carry = initial_carries(model, args.batch)
        model, opt_state, _, _ = step(model, opt_state, optimizer, batch, carry, jax.random.key(10_000 + i))


if __name__ == "__main__":
    main()
