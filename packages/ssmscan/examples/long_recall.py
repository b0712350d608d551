"""Train an S5 stack to recall a token seen ≥ 200 steps earlier among distractors; compare a GRU.

Task: a sequence of ``length`` one-hot tokens. Step 0 shows a cue symbol (one of ``symbols``), every
step in between shows a random distractor (one of another ``symbols`` symbols), and the last step
shows a query marker. The model must output the cue at the last step. Chance accuracy is 1/symbols.

Both models get the same encoder/decoder and a similar parameter count; the GRU's width is chosen to
match the S5 stack's parameters.

    uv run python packages/ssmscan/examples/long_recall.py                 # S5 and GRU, a few minutes
    uv run python packages/ssmscan/examples/long_recall.py --model s5 --steps 300

Needs optax besides ssmscan (``pip install ssmscan optax``).
"""

import argparse
import dataclasses
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

import ssmscan


@dataclasses.dataclass(frozen=True)
class RecallConfig:
    """Task and training settings; the defaults reach ≥ 95% with S5 in a few CPU minutes."""

    length: int = 256  # tokens per sequence; the cue is length − 1 steps before the query
    symbols: int = 8  # cue/distractor alphabet; chance accuracy is 1/symbols
    batch: int = 32
    steps: int = 600
    learning_rate: float = 3e-3
    width: int = 64  # H of the S5 stack
    state: int = 64  # P of each S5 layer
    layers: int = 2
    eval_batch: int = 1024
    seed: int = 0


def make_batch(
    key: PRNGKeyArray, batch: int, length: int, symbols: int
) -> tuple[Float[Array, "B T V"], Int[Array, " B"]]:
    """One-hot tokens [B, T, 2·symbols + 1] and the cue each sequence must recall.

    Token ids: cues 0..symbols−1, distractors symbols..2·symbols−1, query marker 2·symbols.
    """
    cue_key, noise_key = jax.random.split(key)
    cue = jax.random.randint(cue_key, (batch,), 0, symbols)
    tokens = jax.random.randint(noise_key, (batch, length), symbols, 2 * symbols)
    tokens = tokens.at[:, 0].set(cue).at[:, -1].set(2 * symbols)
    return jax.nn.one_hot(tokens, 2 * symbols + 1), cue


class S5Classifier(eqx.Module):
    encoder: eqx.nn.Linear
    stack: ssmscan.S5Stack
    decoder: eqx.nn.Linear

    def __init__(self, config: RecallConfig, *, key: PRNGKeyArray):
        enc_key, stack_key, dec_key = jax.random.split(key, 3)
        self.encoder = eqx.nn.Linear(2 * config.symbols + 1, config.width, key=enc_key)
        self.stack = ssmscan.S5Stack(config.layers, config.width, config.state, key=stack_key, blocks=4)
        self.decoder = eqx.nn.Linear(config.width, config.symbols, key=dec_key)

    def __call__(self, tokens: Float[Array, "T V"]) -> Float[Array, " symbols"]:
        ys, _ = self.stack(jax.vmap(self.encoder)(tokens))
        return self.decoder(ys[-1])


class GRUClassifier(eqx.Module):
    encoder: eqx.nn.Linear
    cell: eqx.nn.GRUCell
    decoder: eqx.nn.Linear

    def __init__(self, config: RecallConfig, hidden: int, *, key: PRNGKeyArray):
        enc_key, cell_key, dec_key = jax.random.split(key, 3)
        self.encoder = eqx.nn.Linear(2 * config.symbols + 1, config.width, key=enc_key)
        self.cell = eqx.nn.GRUCell(config.width, hidden, key=cell_key)
        self.decoder = eqx.nn.Linear(hidden, config.symbols, key=dec_key)

    def __call__(self, tokens: Float[Array, "T V"]) -> Float[Array, " symbols"]:
        def step(h, u):
            return self.cell(u, h), None

        h, _ = jax.lax.scan(step, jnp.zeros(self.cell.hidden_size), jax.vmap(self.encoder)(tokens))
        return self.decoder(h)


def count_parameters(model: eqx.Module) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))


def gru_matching(config: RecallConfig, target_parameters: int, *, key: PRNGKeyArray) -> GRUClassifier:
    """A GRU classifier whose hidden width gives about ``target_parameters`` parameters."""
    # GRU parameters ≈ 3(h·w + h² + 2h) + h·symbols: solve the quadratic in h.
    a, b = 3.0, 3.0 * config.width + 6.0 + config.symbols
    hidden = max(1, round((-b + math.sqrt(b * b + 4 * a * target_parameters)) / (2 * a)))
    return GRUClassifier(config, hidden, key=key)


def train(model: eqx.Module, config: RecallConfig, *, key: PRNGKeyArray, log_every: int = 100) -> dict:
    """Adam on cross-entropy at the query step; returns accuracy on a fresh evaluation batch."""
    optimizer = optax.adam(config.learning_rate)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    def loss_fn(model, tokens, cue):
        logits = jax.vmap(model)(tokens)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, cue).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == cue)

    @eqx.filter_jit
    def update(model, opt_state, key):
        tokens, cue = make_batch(key, config.batch, config.length, config.symbols)
        (loss, accuracy), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, tokens, cue)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss, accuracy

    train_key, eval_key = jax.random.split(key)
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        model, opt_state, loss, accuracy = update(model, opt_state, jax.random.fold_in(train_key, step))
        if log_every and (step % log_every == 0 or step == config.steps):
            print(
                f"  step {step:5d}  loss {float(loss):.3f}  batch accuracy {float(accuracy):.2f}", flush=True
            )
    tokens, cue = make_batch(eval_key, config.eval_batch, config.length, config.symbols)
    _, accuracy = eqx.filter_jit(loss_fn)(model, tokens, cue)
    return {"accuracy": float(accuracy), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = RecallConfig()
    for field in dataclasses.fields(RecallConfig):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=field.type, default=getattr(defaults, field.name)
        )
    parser.add_argument("--model", choices=["s5", "gru", "both"], default="both")
    args = vars(parser.parse_args(argv))
    which = args.pop("model")
    config = RecallConfig(**args)
    s5_key, gru_key, train_key = jax.random.split(jax.random.key(config.seed), 3)
    s5 = S5Classifier(config, key=s5_key)
    models = {"s5": s5, "gru": gru_matching(config, count_parameters(s5), key=gru_key)}
    results = {}
    for name in ["s5", "gru"] if which == "both" else [which]:
        print(f"{name}: {count_parameters(models[name])} parameters, recall over {config.length - 1} steps")
        results[name] = train(models[name], config, key=train_key)
        print(f"{name}: accuracy {results[name]['accuracy']:.3f} in {results[name]['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
