"""The simulator: numba kernels and the stepwise engine. Never imports textual."""
