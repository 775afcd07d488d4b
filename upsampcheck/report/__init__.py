"""Measurements turned into findings with causes and fixes, a verdict, baselines and trends."""
