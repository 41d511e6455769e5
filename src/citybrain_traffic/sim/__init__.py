"""Talking to SUMO: sessions, detectors, the additional files of runs, outputs and KPIs."""
