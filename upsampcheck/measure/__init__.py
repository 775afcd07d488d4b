"""Probes and what is measured on them: signals in at a stage's input, numbers out."""
