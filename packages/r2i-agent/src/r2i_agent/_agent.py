"""The R2I agent: world model + actor + critic, its jitted update and its acting step."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from worldmodel import (
    Batch,
    Carry,
    LatentState,
    Observed,
    WorldModel,
    batch_loss,
    initial_carries,
    make_optimizer,
)

from ._actor_critic import (
    ActionKind,
    Actor,
    ActorCriticLosses,
    ActorCriticSettings,
    Critic,
    actor_critic_losses,
    imagined_returns,
)
from ._config import AgentConfig
from ._returns import ReturnScale, ema_update, update_return_scale


class Agent(eqx.Module):
    """All learned parts; the slow critic follows the critic by an EMA instead of by gradients."""

    world_model: WorldModel
    actor: Actor
    critic: Critic
    slow_critic: Critic


def make_agent(
    config: AgentConfig,
    obs_shapes: Mapping[str, tuple[int, ...]],
    action_size: int,
    action_kind: ActionKind,
    *,
    key: PRNGKeyArray,
) -> Agent:
    """Initial parameters for observations ``obs_shapes`` and ``action_size`` actions."""
    wm_key, actor_key, critic_key = jax.random.split(key, 3)
    world_model = WorldModel(config.model, obs_shapes, action_size, key=wm_key)
    ac = config.actor_critic
    actor = Actor(
        world_model.policy_feature_size(),
        action_size,
        action_kind,
        units=ac.units,
        layers=ac.layers,
        key=actor_key,
    )
    # The critic reads what the actor reads (R2I's policy input), so it values the states the actor acts in.
    critic = Critic(world_model.policy_feature_size(), units=ac.units, layers=ac.layers, key=critic_key)
    return Agent(world_model, actor, critic, critic)


def actor_critic_lr(config: AgentConfig) -> float | optax.Schedule:
    """The actor's and critic's learning rate: ``lr``, or with ``lr_decay_steps`` a schedule of the update
    count that falls linearly from ``lr`` to ``lr_end`` over that many env steps' updates, then stays."""
    ac = config.actor_critic
    if ac.lr_decay_steps == 0:
        return ac.lr
    updates = max(1, round(ac.lr_decay_steps / config.train.env_steps_per_update))
    return optax.linear_schedule(ac.lr, ac.lr_end, updates)


def _actor_critic_optimizer(config: AgentConfig, clip: float) -> optax.GradientTransformation:
    """Adam after global-norm clipping on the parameters as one flat vector (see ``make_optimizer``)."""
    ac = config.actor_critic
    return optax.flatten(
        optax.chain(optax.clip_by_global_norm(clip), optax.adam(actor_critic_lr(config), eps=ac.eps))
    )


class TrainState(NamedTuple):
    """What an update changes: parameters, optimizer states, return scale, non-finite update streak."""

    agent: Agent
    model_opt: optax.OptState
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    scale: ReturnScale
    skipped_in_a_row: jax.Array


def _params(module):
    return eqx.filter(module, eqx.is_inexact_array)


def init_train_state(config: AgentConfig, agent: Agent) -> TrainState:
    ac = config.actor_critic
    return TrainState(
        agent=agent,
        model_opt=make_optimizer(config.model.optim).init(_params(agent.world_model)),
        actor_opt=_actor_critic_optimizer(config, ac.clip).init(_params(agent.actor)),
        critic_opt=_actor_critic_optimizer(config, ac.critic_clip).init(_params(agent.critic)),
        scale=ReturnScale.init(),
        skipped_in_a_row=jnp.zeros((), jnp.int32),
    )


def _all_finite(tree) -> jax.Array:
    """Whether every entry of every array in ``tree`` is finite, as one reduction over their concatenation."""
    flat, _ = jax.flatten_util.ravel_pytree(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.isfinite(flat))


def chunk_count(starts: int, max_chunk: int) -> int:
    """The fewest equal chunks of at most ``max_chunk`` imagination starts that ``starts`` splits into."""
    for count in range(-(-starts // max_chunk), starts + 1):
        if starts % count == 0:
            return count
    return starts


def _after(earlier, inputs):
    """``inputs``, readable only once every array in ``earlier`` is computed: a data dependency that
    orders unrolled world-model parts. Without it XLA's CPU backend ran a later part's forward pass
    beside an earlier part's backward pass, so all parts' memory was alive at once, even across
    ``lax.optimization_barrier``. The values are unchanged unless one of ``earlier`` is NaN (the inputs
    then read as zeros; such an update is skipped anyway)."""
    has_nan = jnp.isnan(sum(jnp.sum(x) for x in jax.tree.leaves(eqx.filter(earlier, eqx.is_inexact_array))))

    def gate(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(gate(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return jnp.where(has_nan, jnp.zeros_like(x), x)

    return jax.tree.map(gate, inputs)


def _world_model_grads(
    world_model: WorldModel, batch: Batch, carries: Carry, key: PRNGKeyArray, max_steps: int
) -> tuple[tuple[jax.Array, tuple[dict, Observed]], WorldModel]:
    """World-model loss, metrics, posterior states [B, T] and gradients from ``carries`` [B], over the B
    sequences in equal parts of at most ``max_steps`` steps (B/parts · T) one after the other: the same
    numbers as all at once (mean of equal parts; one key per sequence however split), with the backward
    pass's memory of one part.

    The parts run in a ``lax.scan`` (one part's compile time) unless the batch holds images: inside a
    loop XLA's CPU backend keeps the CNN's convolutions in a generic form, about 20× slower
    (docs/benchmarks.md), so image parts are unrolled, each reading its inputs only after the previous
    parts' gradients and the last part's results (``_after``; each part is gated in turn, so one link
    per part orders them all). One part is never looped.
    """
    size, length = batch.reward.shape
    count = chunk_count(size, max(1, max_steps // length))
    grad_fn = eqx.filter_value_and_grad(batch_loss, has_aux=True)
    split = lambda tree: jax.tree.map(lambda x: x.reshape(count, size // count, *x.shape[1:]), tree)
    parts = split((batch, carries, jax.random.split(key, size)))
    has_images = any(x.ndim == 5 for x in batch.obs.values())  # [B, T, H, W, C]
    if count > 1 and not has_images:

        def body(grad_sum, inputs):
            (loss, (metrics, observed, _)), grads = grad_fn(world_model, *inputs)
            return jax.tree.map(jnp.add, grad_sum, grads), (loss, metrics, observed)

        zeros = jax.tree.map(jnp.zeros_like, eqx.filter(world_model, eqx.is_inexact_array))
        grad_sum, (losses, metrics, observed) = jax.lax.scan(body, zeros, parts)
    else:
        grad_sum, results = None, []
        for index in range(count):
            inputs = jax.tree.map(operator.itemgetter(index), parts)
            (loss, (metrics, observed, _)), grads = grad_fn(
                world_model, *(inputs if grad_sum is None else _after((grad_sum, results[-1]), inputs))
            )
            grad_sum = grads if grad_sum is None else jax.tree.map(jnp.add, grad_sum, grads)
            results.append((loss, metrics, observed))
        losses, metrics, observed = jax.tree.map(lambda *parts: jnp.stack(parts), *results)
    grads = jax.tree.map(lambda g: g / count, grad_sum)
    observed = jax.tree.map(lambda x: x.reshape(size, *x.shape[2:]), observed)
    return (jnp.mean(losses), (jax.tree.map(jnp.mean, metrics), observed)), grads


def _actor_critic_grads(
    agent: Agent,
    starts: LatentState,
    start_continues: Float[Array, "B T"],
    scale: ReturnScale,
    settings: ActorCriticSettings,
    key: PRNGKeyArray,
    max_chunk: int,
) -> tuple[tuple[jax.Array, ActorCriticLosses], tuple[Actor, Critic]]:
    """Actor and critic losses and gradients on imagination from every posterior state [B, T]
    (``start_continues``: their 1 − is_terminal; rollouts from terminal states get weight 0).

    The return scale's EMA takes this batch's λ-returns before they are normalized (R2I's order). The
    B·T starts are imagined in equal chunks of at most ``max_chunk``, one after the other, and the
    chunks' gradients averaged: the same losses (means over all starts) with memory for one chunk only.
    With more than one chunk the scale needs every chunk's returns first, so a forward pass of the
    imagination without gradients computes them (the same rollouts: same keys, same parameters).
    Returns ((actor + critic loss, mean losses with the new scale), (actor grads, critic grads)).
    """
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), (starts, start_continues))
    n = flat[1].shape[0]
    count = chunk_count(n, max_chunk)
    chunks = jax.tree.map(lambda x: x.reshape(count, n // count, *x.shape[1:]), flat)
    keys = jax.random.split(key, n).reshape(count, n // count)  # one per start, however chunked

    def imagine(actor, chunk_starts, chunk_key):
        return agent.world_model.imagine(actor.sample, chunk_starts, key=chunk_key)

    if count > 1:

        def chunk_returns(_, inputs):
            (chunk_starts, _), chunk_key = inputs
            imagined = imagine(agent.actor, chunk_starts, chunk_key)
            return None, imagined_returns(agent.critic, imagined, settings)[1]

        _, returns = jax.lax.scan(chunk_returns, None, (chunks, keys))
        scale = update_return_scale(scale, jax.lax.stop_gradient(returns), settings.return_decay)

    def loss(actor_critic, chunk, chunk_key):
        actor, critic = actor_critic
        chunk_starts, chunk_continues = chunk
        out = actor_critic_losses(
            actor,
            critic,
            agent.slow_critic,
            imagine(actor, chunk_starts, chunk_key),
            scale,
            settings,
            chunk_continues,
            update_scale=count == 1,
        )
        return out.actor + out.critic, out

    grad_fn = eqx.filter_value_and_grad(loss, has_aux=True)
    params = (agent.actor, agent.critic)

    def body(grad_sum, inputs):
        (total, out), grads = grad_fn(params, *inputs)
        return jax.tree.map(jnp.add, grad_sum, grads), (total, out)

    zeros = jax.tree.map(jnp.zeros_like, eqx.filter(params, eqx.is_inexact_array))
    grad_sum, (totals, outs) = jax.lax.scan(body, zeros, (chunks, keys))
    grads = jax.tree.map(lambda g: g / count, grad_sum)
    mean = ActorCriticLosses(
        actor=jnp.mean(outs.actor),
        critic=jnp.mean(outs.critic),
        scale=jax.tree.map(lambda x: x[0], outs.scale),  # every chunk normalized by the same scale
        metrics=jax.tree.map(jnp.mean, outs.metrics),
    )
    return (jnp.mean(totals), mean), grads


def make_update(config: AgentConfig) -> Callable[..., tuple[TrainState, dict]]:
    """A jitted ``update(state, batch, key, context=None)`` on a batch [B, T]: world model, then actor and
    critic on imagination from every posterior state, then the slow critic and the return scale. The
    sequences start from ``context`` [B, C] (carries as ``WorldModel.carry_to_vector`` gives them) or, when
    it is None, from zero carries. An update whose losses or gradients are not finite changes nothing and
    counts in ``skipped_in_a_row``.
    """
    model_optimizer = make_optimizer(config.model.optim)
    ac = config.actor_critic
    actor_optimizer = _actor_critic_optimizer(config, ac.clip)
    critic_optimizer = _actor_critic_optimizer(config, ac.critic_clip)
    settings = ActorCriticSettings(ac.discount, ac.lambda_, ac.entropy, ac.slow_regularizer, ac.return_decay)

    @eqx.filter_jit
    def update(
        state: TrainState,
        batch: Batch,
        key: PRNGKeyArray,
        context: Float[Array, "B C"] | None = None,
    ) -> tuple[TrainState, dict]:
        agent = state.agent
        model_key, imagine_key = jax.random.split(key)
        size = batch.reward.shape[0]
        carries = (
            initial_carries(agent.world_model, size)
            if context is None
            else agent.world_model.carry_from_vector(context)
        )
        (model_loss, (model_metrics, observed)), model_grads = _world_model_grads(
            agent.world_model, batch, carries, model_key, config.train.model_chunk
        )
        starts = jax.lax.stop_gradient(observed.state)
        start_continues = 1.0 - batch.is_terminal.astype(jnp.float32)

        (ac_total, ac_out), (actor_grads, critic_grads) = _actor_critic_grads(
            agent, starts, start_continues, state.scale, settings, imagine_key, config.train.imagination_chunk
        )
        grads = (model_grads, actor_grads, critic_grads)
        finite = jnp.isfinite(model_loss) & jnp.isfinite(ac_total) & _all_finite(grads)

        def step() -> TrainState:
            model_updates, model_opt = model_optimizer.update(
                model_grads, state.model_opt, _params(agent.world_model)
            )
            actor_updates, actor_opt = actor_optimizer.update(
                actor_grads, state.actor_opt, _params(agent.actor)
            )
            critic_updates, critic_opt = critic_optimizer.update(
                critic_grads, state.critic_opt, _params(agent.critic)
            )
            critic = eqx.apply_updates(agent.critic, critic_updates)
            return TrainState(
                agent=Agent(
                    world_model=eqx.apply_updates(agent.world_model, model_updates),
                    actor=eqx.apply_updates(agent.actor, actor_updates),
                    critic=critic,
                    slow_critic=ema_update(agent.slow_critic, critic, ac.slow_rate),
                ),
                model_opt=model_opt,
                actor_opt=actor_opt,
                critic_opt=critic_opt,
                scale=ac_out.scale,
                skipped_in_a_row=jnp.zeros((), jnp.int32),
            )

        def skip() -> TrainState:
            return state._replace(skipped_in_a_row=state.skipped_in_a_row + 1)

        arrays_of = lambda make: lambda: eqx.filter(make(), eqx.is_array)
        static = eqx.partition(state, eqx.is_array)[1]
        new = eqx.combine(jax.lax.cond(finite, arrays_of(step), arrays_of(skip)), static)
        moved = lambda new, old: optax.tree.norm(jax.tree.map(jnp.subtract, _params(new), _params(old)))
        metrics = {
            **{f"model/{k}": v for k, v in model_metrics.items()},
            "actor/loss": ac_out.actor,
            # the actor's gradient and how far Adam moved it (the RepeatPreviousEasy sags, docs/results.md)
            "actor/grad_norm": optax.tree.norm(actor_grads),
            "actor/step_norm": moved(new.agent.actor, agent.actor),
            "critic/loss": ac_out.critic,
            **{f"actor_critic/{k}": v for k, v in ac_out.metrics.items()},
            "update/skipped": 1.0 - finite.astype(jnp.float32),
        }
        return new, metrics

    return update


def act(
    agent: Agent,
    carry: Carry,
    obs: Mapping[str, Array],
    is_first: jax.Array,
    key: PRNGKeyArray,
    greedy: bool = False,
) -> tuple[Float[Array, "N A"], Carry]:
    """One acting step for N envs: posterior of ``obs`` after ``carry`` (reset where ``is_first``), then
    an action sampled from the policy (or its mode when ``greedy``). Returns (actions, next carries)."""
    world_model, actor = agent.world_model, agent.actor

    def one(carry, obs, first, key):
        state_key, action_key = jax.random.split(key)
        state = world_model.observe_step(carry, obs, first, key=state_key)
        features = world_model.policy_features(state)
        action = actor.mode(features) if greedy else actor.sample(features, action_key)
        return action, Carry(state=state, action=action)

    keys = jax.random.split(key, is_first.shape[0])
    return jax.vmap(one)(carry, dict(obs), is_first, keys)


act_jit = eqx.filter_jit(act)
