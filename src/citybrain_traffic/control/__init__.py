"""The controller protocol, the signals it drives, and the controllers; they never simulate."""
