"""Grids of runs: the paper's sweep and any other."""
