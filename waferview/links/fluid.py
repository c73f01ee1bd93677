"""`fluid`: waferview's own link model. A link is a full-duplex bandwidth bound: the bytes a layer sends over
a directed link take bytes / link rate, in parallel with every other link and die; hop latency is paid once
per die, for its longest route.

Per die: compute_local / compute_remote = flops of tasks reading locally / remotely over flops_per_ns; HBM =
bytes its HBM serves (own reads, reads served to others, copy writes) over hbm_rate; links = bytes arriving
for it (weights it reads remotely, request headers of reads it serves) over link_rate.
busy = max(max(compute_local, HBM), links) + compute_remote + latency, latency = hbm_latency if the die did
anything + hop_latency x its longest route. A link's time = its bytes / link_rate. Layer time = the largest
busy time or link time (layers are separated by a barrier).

What bound the layer: the link, when a link's time is above every die's busy time; else the busiest die
(lowest id on ties) and, of its compute (local + remote), HBM and incoming-link times, the largest (ties in
that order).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.links.base import LinkModel, copies_in_task_order
from waferview.modes import register_link_model
from waferview.sim.state import BOUND_COMPUTE, BOUND_HBM, BOUND_LINK, BOUND_LINKS
from waferview.wafer.routes import add_route_bytes, distance


class FluidState(NamedTuple):
    pass


@register_link_model(FluidState)
@njit(nogil=True, cache=True)
def fluid_layer_costs(state, ctx, step, layer, position, tasks, store, buffers):
    copies_in_task_order(ctx, layer, position, tasks, store, buffers)   # no event time: copies in task order
    task_e, task_d, task_tok, task_src = tasks.expert, tasks.die, tasks.tokens, tasks.source
    mesh, rates = ctx.mesh, ctx.rates
    D = mesh.num_dies
    offsets, die_x, die_y, width, order, dist = (mesh.nbr_offsets, mesh.die_x, mesh.die_y, mesh.width,
                                                 mesh.route_order, mesh.dist)
    eb = rates.expert_bytes
    header = rates.header_bytes
    # every array fetched once: reading a tuple's array field in a loop costs a reference count each time
    die_tokens, d2d, dram = buffers.die_tokens, buffers.die_d2d_bytes, buffers.die_hbm_bytes
    link_bytes, die_busy, die_parts, copy_writes = buffers.link_bytes, buffers.die_busy, buffers.die_parts, \
        buffers.copy_writes
    traffic = buffers.run_traffic
    flops_per_token, flops_per_ns = rates.flops_per_token, rates.flops_per_ns
    flops_local = np.zeros(D)
    flops_remote = np.zeros(D)
    max_hops = np.zeros(D, dtype=np.int64)
    for d in range(D):
        die_tokens[d] = 0
        d2d[d] = 0
        dram[d] = copy_writes[d] * eb
    for i in range(link_bytes.shape[0]):
        link_bytes[i] = 0
    local_bytes = 0
    remote_bytes = 0
    hops = 0
    headers = 0
    local_reads = 0
    for t in range(task_e.shape[0]):
        d = task_d[t]
        s = task_src[t]
        tok = task_tok[t]
        die_tokens[d] += tok
        dram[s] += eb
        if s == d:
            flops_local[d] += tok * flops_per_token
            local_bytes += eb
            local_reads += 1
        else:
            flops_remote[d] += tok * flops_per_token
            remote_bytes += eb
            traffic[s, d] += eb
            h = dist[s, d] if dist.shape[0] > 0 else distance(mesh, s, d)
            hops += h
            if h > max_hops[d]:
                max_hops[d] = h
            d2d[d] += eb
            d2d[s] += header
            headers += header
            add_route_bytes(offsets, die_x, die_y, width, order, s, d, eb, link_bytes)
            add_route_bytes(offsets, die_x, die_y, width, order, d, s, header, link_bytes)
    busy_sum = 0.0
    busy_max = 0.0
    bound_die = -1
    for d in range(D):
        compute_local = flops_local[d] / flops_per_ns
        hbm = dram[d] / rates.hbm_rate
        links = d2d[d] / rates.link_rate
        compute_remote = flops_remote[d] / flops_per_ns
        busy = max(max(compute_local, hbm), links)
        busy += compute_remote
        latency = 0.0
        if die_tokens[d] > 0 or dram[d] > 0:
            latency = rates.hbm_latency + rates.hop_latency * max_hops[d]
            busy += latency
        die_busy[d] = busy
        die_parts[d, 0] = compute_local + compute_remote
        die_parts[d, 1] = hbm
        die_parts[d, 2] = links
        die_parts[d, 3] = latency
        busy_sum += busy
        if busy > busy_max:
            busy_max = busy
            bound_die = d
    layer_time = busy_max
    bound_link = -1
    for i in range(link_bytes.shape[0]):
        lt = link_bytes[i] / rates.link_rate
        if lt > layer_time:
            layer_time = lt
            bound_link = i
    out = buffers.scalars[0]
    out.layer_time = layer_time
    out.busy_sum = busy_sum
    out.busy_max = busy_max
    out.local_bytes = local_bytes
    out.remote_bytes = remote_bytes
    out.hops = hops
    out.headers = headers
    out.local_reads = local_reads
    out.bound_kind = 0
    out.bound_index = -1
    out.bound_busy = 0.0
    if bound_link >= 0:
        out.bound_kind = BOUND_LINK
        out.bound_index = bound_link
        out.bound_busy = layer_time
    elif bound_die >= 0:
        kind = BOUND_COMPUTE
        if die_parts[bound_die, 1] > die_parts[bound_die, 0]:
            kind = BOUND_HBM
        if die_parts[bound_die, 2] > die_parts[bound_die, kind - 1]:
            kind = BOUND_LINKS
        out.bound_kind = kind
        out.bound_index = bound_die
        out.bound_busy = die_parts[bound_die, kind - 1]


class FluidLinks(LinkModel):
    name = "fluid"
    help = "full-duplex bandwidth bound per directed link, hop latency once per die (waferview's model)"

    def kernel_state(self):
        return FluidState()
MODE = FluidLinks
