"""``python -m citybrain_traffic.cli``: the ``ctraffic`` command, run as a module."""

from . import main

# Guarded: a process spawned from this one (the forecaster's training) must not run the command.
if __name__ == "__main__":
    main()
