"""Run simulations: one SUMO run (``runner``) and many in worker processes (``matrix``)."""
