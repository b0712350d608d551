"""``python -m r2i_agent`` runs the ``r2i-agent`` command line."""

from r2i_agent._cli import run

raise SystemExit(run())
