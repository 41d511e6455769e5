"""Everything that simulates in order to decide or to measure: the only layer that does."""
