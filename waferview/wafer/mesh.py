"""The die mesh: W x H dies row-major (die = y * width + x), directed links between neighbours,
XY (dimension-order: x first, then y) routes, no wrap-around.

Everything is precomputed into flat numpy arrays the kernels index directly:
  links[n_links, 2]      (src_die, dst_die) of each directed link, sorted by (src, dst)
  link_id[D, D]          index of the link src -> dst, or -1 when they are not neighbours
  dist[D, D]             Manhattan distance = hops of the XY route
  route_offsets[D*D+1]   links of the XY route a -> b are route_links[route_offsets[a*D+b]:route_offsets[a*D+b+1]]
  route_links[...]       in travel order
  nbr_offsets[D+1]       distance-1 neighbours of die d are nbr_dies[nbr_offsets[d]:nbr_offsets[d+1]], ascending
"""

from __future__ import annotations

import numpy as np


class Mesh:
    def __init__(self, width: int, height: int):
        self.width = int(width)
        self.height = int(height)
        D = self.num_dies = self.width * self.height
        xs = np.arange(D) % self.width
        ys = np.arange(D) // self.width
        self.dist = (np.abs(xs[:, None] - xs[None, :]) + np.abs(ys[:, None] - ys[None, :])).astype(np.int64)
        pairs = [(a, b) for a in range(D) for b in range(D) if self.dist[a, b] == 1]
        self.links = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        self.link_id = np.full((D, D), -1, dtype=np.int64)
        for i, (a, b) in enumerate(pairs):
            self.link_id[a, b] = i
        routes = [self.xy_route(a, b) for a in range(D) for b in range(D)]
        self.route_offsets = np.zeros(D * D + 1, dtype=np.int64)
        np.cumsum([len(r) for r in routes], out=self.route_offsets[1:])
        flat = [i for r in routes for i in r]
        self.route_links = np.array(flat, dtype=np.int64)
        nbrs = [np.flatnonzero(self.dist[d] == 1) for d in range(D)]
        self.nbr_offsets = np.zeros(D + 1, dtype=np.int64)
        np.cumsum([len(n) for n in nbrs], out=self.nbr_offsets[1:])
        self.nbr_dies = np.concatenate(nbrs).astype(np.int64) if D > 1 else np.zeros(0, dtype=np.int64)

    @property
    def num_links(self) -> int:
        return len(self.links)

    def coords(self, die: int) -> tuple[int, int]:
        return die % self.width, die // self.width

    def xy_route(self, a: int, b: int) -> list[int]:
        """Link ids from die a to die b: along x first, then along y."""
        (x, y), (bx, by) = self.coords(a), self.coords(b)
        out = []
        while x != bx:
            nx = x + (1 if bx > x else -1)
            out.append(int(self.link_id[y * self.width + x, y * self.width + nx]))
            x = nx
        while y != by:
            ny = y + (1 if by > y else -1)
            out.append(int(self.link_id[y * self.width + x, ny * self.width + x]))
            y = ny
        return out

    def __repr__(self) -> str:
        return f"Mesh({self.width}x{self.height}, {self.num_dies} dies, {self.num_links} links)"
