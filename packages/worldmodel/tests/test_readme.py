"""The README example runs as written."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["imagined"].rewards.shape == (8 * 32, 16)
    assert float(namespace["loss"]) > 0
