"""Placeholder."""

__all__ = ["reward_coupling"]


def reward_coupling():
    """Not yet."""
