"""Distances and dimension-order routes on the mesh, computed from coordinates inside kernels (no dies x
dies route lists: a 64 x 64 mesh would need 8 GB of them). `mesh` is a wafer.mesh.MeshTables.

A route is walked hop by hop from its start's coordinates; the index of the link from (x, y) one step in
(dx, dy) follows from which neighbours (x, y) has (wafer.mesh: a die's links are its neighbours in id
order up, left, right, down), so a hop costs no division. Small helpers are inlined: a call that passes the
mesh tuple costs a reference count per array in it, more than the hop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.wafer.mesh import ROUTE_XY


@njit(nogil=True, cache=True, inline="always")
def distance(mesh, a, b):
    """Manhattan distance = hops of any dimension-order route."""
    if mesh.dist.shape[0] > 0:
        return mesh.dist[a, b]
    return abs(mesh.die_x[a] - mesh.die_x[b]) + abs(mesh.die_y[a] - mesh.die_y[b])


@njit(nogil=True, cache=True, inline="always")
def hop_link(nbr_offsets, w, x, y, dx, dy):
    """Index of the link from die (x, y) to (x + dx, y + dy), a neighbour."""
    i = nbr_offsets[y * w + x]
    if dy < 0:
        return i
    if y > 0:
        i += 1
    if dx < 0:
        return i
    if x > 0:
        i += 1
    if dx > 0:
        return i
    if x < w - 1:
        i += 1
    return i   # dy > 0


@njit(nogil=True, cache=True, inline="always")
def link_index(mesh, a, b):
    """Index of the directed link a -> b between neighbours."""
    w = mesh.width
    return hop_link(mesh.nbr_offsets, w, a % w, a // w, b % w - a % w, b // w - a // w)


@njit(nogil=True, cache=True)
def route_into(mesh, a, b, out):
    """The links of the route a -> b into out[0 : hops]; returns hops. out needs width + height entries."""
    w = mesh.width
    x, y = mesh.die_x[a], mesh.die_y[a]
    bx, by = mesh.die_x[b], mesh.die_y[b]
    n = 0
    for phase in range(2):
        if (phase == 0) == (mesh.route_order == ROUTE_XY):
            step = 1 if bx > x else -1
            while x != bx:
                out[n] = hop_link(mesh.nbr_offsets, w, x, y, step, 0)
                n += 1
                x += step
        else:
            step = 1 if by > y else -1
            while y != by:
                out[n] = hop_link(mesh.nbr_offsets, w, x, y, 0, step)
                n += 1
                y += step
    return n


@njit(nogil=True, cache=True, inline="always")
def add_route_bytes(offsets, die_x, die_y, w, route_order, a, b, nbytes, link_bytes):
    """link_bytes[l] += nbytes for every link l of the route a -> b (route_into's walk, without the list).
    Takes the mesh's fields, not the tuple: hot loops fetch them once."""
    x, y = die_x[a], die_y[a]
    bx, by = die_x[b], die_y[b]
    for phase in range(2):
        if (phase == 0) == (route_order == ROUTE_XY):
            step = 1 if bx > x else -1
            while x != bx:
                link_bytes[hop_link(offsets, w, x, y, step, 0)] += nbytes
                x += step
        else:
            step = 1 if by > y else -1
            while y != by:
                link_bytes[hop_link(offsets, w, x, y, 0, step)] += nbytes
                y += step


def route_buffer(mesh) -> np.ndarray:
    return np.empty(mesh.width + mesh.height, dtype=np.int64)
