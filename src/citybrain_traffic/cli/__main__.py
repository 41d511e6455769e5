"""``python -m citybrain_traffic.cli``: the ``ctraffic`` command, run as a module."""

from . import main

main()
