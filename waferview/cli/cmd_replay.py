"""`waferview replay` (not built yet)."""

from waferview.errors import InputError


def add_arguments(p):
    p.add_argument("rest", nargs="*")


def run(args):
    raise InputError("'replay' is not implemented yet")
