"""Targeted filters for third-party warnings (the root config turns every warning into an error)."""

# (message regex, category): each names one known warning of a pinned suite version and why it is harmless.
_KNOWN_WARNINGS = (
    # popgym 1.0.7 warns on every Labyrinth env that mazes are solvable without memory; we keep the envs for
    # completeness and say so in the README.
    ("Maze environments have been shown to be solvable without the use of memory", "DeprecationWarning"),
)


def pytest_configure(config):
    for message, category in _KNOWN_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:{category}")
