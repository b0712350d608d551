#!/usr/bin/env bash
# Proof that ssmscan installs alone: build its wheel, install it into a fresh venv holding only its own
# dependencies (jax, equinox, jaxtyping), import it and run one small forward pass, sequence and step mode.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(command -v uv || echo "python3 -m uv")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$UV build --quiet --package ssmscan --wheel --out-dir "$work/dist"
$UV venv --quiet --python 3.11 "$work/venv" 2>/dev/null || $UV venv --quiet "$work/venv"
VIRTUAL_ENV="$work/venv" $UV pip install --quiet "$work"/dist/ssmscan-*.whl
"$work/venv/bin/python" - <<'PY'
import importlib.metadata as md

import jax
import jax.numpy as jnp

import ssmscan

installed = {d.metadata["Name"].lower() for d in md.distributions()}
siblings = installed & {"worldmodel", "r2i-agent", "r2i-envs"}
assert not siblings, f"ssmscan pulled in sibling packages: {siblings}"
stack = ssmscan.S5Stack(2, model_size=8, state_size=16, key=jax.random.key(0))
ys, xs = stack(jnp.ones((32, 8)), jnp.zeros(32, bool))
y, state = stack.step(stack.init_state(), jnp.ones(8), True)
assert ys.shape == (32, 8) and len(xs) == 2 and y.shape == (8,)
assert bool(jnp.all(jnp.isfinite(ys)))
print(f"ssmscan {ssmscan.__version__} installs alone ({len(installed)} distributions) and runs")
PY
