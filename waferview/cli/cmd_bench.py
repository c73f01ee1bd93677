"""`waferview bench` (not built yet)."""

from waferview.errors import InputError


def add_arguments(p):
    p.add_argument("rest", nargs="*")


def run(args):
    raise InputError("'bench' is not implemented yet")
