"""ssl4rl: reinforcement learning for VLMs with rewards from self-supervised visual puzzles."""

__version__ = "0.1.0"
