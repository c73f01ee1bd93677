"""Distances and dimension-order routes on the mesh, computed from coordinates inside kernels (no dies x
dies tables: a 64 x 64 mesh would need 8 GB of route lists). `mesh` is a wafer.mesh.MeshTables."""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.wafer.mesh import ROUTE_XY


@njit(nogil=True, cache=True)
def distance(mesh, a, b):
    """Manhattan distance = hops of any dimension-order route."""
    if mesh.dist.shape[0] > 0:
        return mesh.dist[a, b]
    w = mesh.width
    return abs(a % w - b % w) + abs(a // w - b // w)


@njit(nogil=True, cache=True)
def link_index(mesh, a, b):
    """Index of the directed link a -> b between neighbours (links sorted by (src, dst): a's neighbours in id
    order up, left, right, down)."""
    w = mesh.width
    x = a % w
    y = a // w
    i = mesh.nbr_offsets[a]
    if b == a - w:
        return i
    if y > 0:
        i += 1
    if b == a - 1:
        return i
    if x > 0:
        i += 1
    if b == a + 1:
        return i
    if x < w - 1:
        i += 1
    return i   # b == a + w


@njit(nogil=True, cache=True)
def route_into(mesh, a, b, out):
    """The links of the route a -> b into out[0 : hops]; returns hops. out needs width + height entries."""
    w = mesh.width
    x, y = a % w, a // w
    bx, by = b % w, b // w
    n = 0
    for phase in range(2):
        along_x = (phase == 0) == (mesh.route_order == ROUTE_XY)
        if along_x:
            while x != bx:
                nx = x + 1 if bx > x else x - 1
                out[n] = link_index(mesh, y * w + x, y * w + nx)
                n += 1
                x = nx
        else:
            while y != by:
                ny = y + 1 if by > y else y - 1
                out[n] = link_index(mesh, y * w + x, ny * w + x)
                n += 1
                y = ny
    return n


@njit(nogil=True, cache=True)
def add_route_bytes(mesh, a, b, nbytes, link_bytes):
    """link_bytes[l] += nbytes for every link l of the route a -> b."""
    w = mesh.width
    x, y = a % w, a // w
    bx, by = b % w, b // w
    for phase in range(2):
        along_x = (phase == 0) == (mesh.route_order == ROUTE_XY)
        if along_x:
            while x != bx:
                nx = x + 1 if bx > x else x - 1
                link_bytes[link_index(mesh, y * w + x, y * w + nx)] += nbytes
                x = nx
        else:
            while y != by:
                ny = y + 1 if by > y else y - 1
                link_bytes[link_index(mesh, y * w + x, ny * w + x)] += nbytes
                y = ny


def route_buffer(mesh) -> np.ndarray:
    return np.empty(mesh.width + mesh.height, dtype=np.int64)
