"""Attacks: a trigger placed in the input, a payload written into the target, and a selection."""
