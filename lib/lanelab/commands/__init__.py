"""One module per ``python -m lanelab`` subcommand: ``NAME``, ``HELP``, ``configure(parser)``, ``run(args)``."""
