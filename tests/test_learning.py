"""The whole agent learns a memory task on a CPU in minutes (what `make train` shows).

BSuite memory_len/0: the context bit shown at the first step must be reported at the end (+1 / −1);
random play scores 0. Measured on the 2-core CI machine (cpu preset, seed 0): the mean episode return is
about 0 until ~6k env steps, then rises to 0.95-1.0 by 8.5k-10k steps (2.5 minutes). The threshold 0.5
(75% success) leaves a wide margin for numerical differences between machines.
"""

import json

import pytest

from r2i_agent._config import agent_preset
from r2i_agent._train import train


@pytest.mark.slow
def test_r2i_learns_bsuite_memory_len(tmp_path):
    summary = train(agent_preset("cpu"), "bsuite/memory_len/0", 10_000, tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    late = [r["episode/return"] for r in records if "episode/return" in r and r["step"] > 8_500]
    assert late, "no episodes logged after 8.5k steps"
    assert sum(late) / len(late) > 0.5, f"late returns {late}; summary {summary}"
