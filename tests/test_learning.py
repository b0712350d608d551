"""The whole agent learns a memory task on a CPU in minutes (what `make train` shows).

BSuite memory_len/4 (memory length 5): the context bit shown at the first step of a 6-step episode must be
reported at the last step (+1 right, −1 wrong); random play scores 0, i.e. 50% success. Measured on the
2-core CI machine with the cpu preset (docs/results.md): the mean episode return stays near 0 until the
policy's drift lets the world model link the context to the reward, then jumps to 0.9-1.0 within ~1k env
steps; that jump came at 10k env steps for seed 0, 12.5k for seed 1 and 6.5k for seed 2. At 16k steps
(about 3.5 minutes) the last 100 episodes of seed 0 all lie well after the jump. The threshold, mean return
> 0.5 over the last 100 episodes (success > 75%), is clearly above chance and leaves room for numerical
differences between machines.
"""

import pytest

from r2i_agent._config import agent_preset
from r2i_agent._train import train


@pytest.mark.slow
@pytest.mark.alone  # timed against a ≤ 5 min budget, so `make test` runs it after the others, alone
def test_r2i_learns_bsuite_memory_len_5(tmp_path):
    summary = train(agent_preset("cpu"), "bsuite/memory_len/4", 16_000, tmp_path, progress=False)
    assert summary["episodes"] >= 100
    success = (summary["recent_return"] + 1) / 2  # returns are +1 or −1 per episode
    assert success > 0.75, f"success over the last 100 episodes {success:.2f}; summary {summary}"
