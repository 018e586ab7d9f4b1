"""``python -m tuner`` is ``tune`` (worker processes start this way)."""

from tuner.cli import main

main(prog_name="tune")
