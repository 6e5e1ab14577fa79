"""Training backends: verl (the paper's path, GPU clusters) and TRL (one machine)."""
