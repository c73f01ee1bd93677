"""The die mesh: W x H dies row-major (die = y * width + x), directed links between neighbours, dimension-
order routes, no wrap-around.

Nothing here grows with dies x dies: distances and routes follow from the coordinates, so a 64 x 64 mesh
costs a few arrays of dies and links (kernels compute them with waferview.wafer.routes).
  links[n_links, 2]   (src_die, dst_die) of each directed link, sorted by (src, dst)
  nbr_offsets[D+1]    the links leaving die d are links[nbr_offsets[d]:nbr_offsets[d+1]]: its neighbours in
                      id order (y-1, x-1, x+1, y+1), so a link's index is nbr_offsets[src] + the neighbour's rank
Route orders: "xy" (along x first, then y: waferview's), "yx" (y first), "short" (the shorter axis first,
y on a square mesh: the study's simulator, whose die ids run along the long axis).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ROUTE_XY, ROUTE_YX = 0, 1
ROUTE_ORDERS = ("xy", "yx", "short")


class MeshTables(NamedTuple):
    """What kernels know of the mesh (waferview.wafer.routes walks it)."""
    width: int
    height: int
    num_dies: int
    num_links: int
    nbr_offsets: np.ndarray   # (D+1,) int64
    route_order: int          # ROUTE_XY or ROUTE_YX
    dist: np.ndarray          # (D, D) int64 hops when D <= DIST_TABLE_DIES (a lookup beats two divisions), else (0, 0)
    die_x: np.ndarray         # (D,) int64 x of each die (no division in the route walks)
    die_y: np.ndarray         # (D,) int64 y of each die


DIST_TABLE_DIES = 1024        # 8 MB of table at most

class Mesh:
    def __init__(self, width: int, height: int):
        self.width = W = int(width)
        self.height = H = int(height)
        D = self.num_dies = W * H
        ids = np.arange(D, dtype=np.int64)
        xs, ys = ids % W, ids // W
        # each die's neighbours in id order: up (y-1), left, right, down (y+1)
        candidates = np.stack([ids - W, ids - 1, ids + 1, ids + W], axis=1)
        exists = np.stack([ys > 0, xs > 0, xs < W - 1, ys < H - 1], axis=1)
        src = np.repeat(ids, exists.sum(axis=1))
        self.links = np.stack([src, candidates[exists]], axis=1).astype(np.int64).reshape(-1, 2)
        self.nbr_offsets = np.zeros(D + 1, dtype=np.int64)
        np.cumsum(exists.sum(axis=1), out=self.nbr_offsets[1:])

    @property
    def num_links(self) -> int:
        return len(self.links)

    def coords(self, die: int) -> tuple[int, int]:
        return die % self.width, die // self.width

    def distance(self, a: int, b: int) -> int:
        (ax, ay), (bx, by) = self.coords(a), self.coords(b)
        return abs(ax - bx) + abs(ay - by)

    def link_index(self, a: int, b: int) -> int:
        """Index of the directed link a -> b (neighbours), -1 when they are not neighbours."""
        if self.distance(a, b) != 1:
            return -1
        nbrs = self.links[self.nbr_offsets[a]:self.nbr_offsets[a + 1], 1]
        return int(self.nbr_offsets[a] + np.searchsorted(nbrs, b))

    def route_order_code(self, order: str) -> int:
        if order == "short":
            return ROUTE_XY if self.width < self.height else ROUTE_YX
        return ROUTE_YX if order == "yx" else ROUTE_XY

    def route(self, a: int, b: int, order: str = "xy") -> list[int]:
        """Link ids from die a to die b in the route order (default along x first, then y)."""
        (x, y), (bx, by) = self.coords(a), self.coords(b)
        out = []

        def along_x():
            nonlocal x
            while x != bx:
                nx = x + (1 if bx > x else -1)
                out.append(self.link_index(y * self.width + x, y * self.width + nx))
                x = nx

        def along_y():
            nonlocal y
            while y != by:
                ny = y + (1 if by > y else -1)
                out.append(self.link_index(y * self.width + x, ny * self.width + x))
                y = ny

        first, second = (along_x, along_y) if self.route_order_code(order) == ROUTE_XY else (along_y, along_x)
        first()
        second()
        return out

    def xy_route(self, a: int, b: int) -> list[int]:
        return self.route(a, b, "xy")

    def tables(self, route_order: str = "xy") -> MeshTables:
        if self.num_dies <= DIST_TABLE_DIES:
            xs, ys = np.arange(self.num_dies) % self.width, np.arange(self.num_dies) // self.width
            dist = (np.abs(xs[:, None] - xs[None, :]) + np.abs(ys[:, None] - ys[None, :])).astype(np.int64)
        else:
            dist = np.zeros((0, 0), dtype=np.int64)
        ids = np.arange(self.num_dies, dtype=np.int64)
        return MeshTables(self.width, self.height, self.num_dies, self.num_links, self.nbr_offsets,
                          self.route_order_code(route_order), dist, ids % self.width, ids // self.width)

    def __repr__(self) -> str:
        return f"Mesh({self.width}x{self.height}, {self.num_dies} dies, {self.num_links} links)"
