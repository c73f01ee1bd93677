"""Command line: argparse front end. Each command lives in its own cmd_<name> module whose
heavy imports (numpy, numba, textual) happen inside `run`, so `waferview --help` is instant."""
