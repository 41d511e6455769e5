"""citybrain-traffic: adaptive traffic-signal optimization, measured in SUMO."""

__version__ = "0.1.0"
