"""The slow reference of the study's simulator: hand-worked event times, the rule switches, the pieces of the
paper profile, and the study's own printed numbers (tests/fixtures/paper_vectors)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from paper_vectors import ITERATIONS, load_input, vector_rows
from reference_circuit import (STUDY_RULES, CopyRegion, LLCs, PaperMesh, Rates, Rules, Task, run_layer,
                               span_stats)
from reference_paper import (COPY_REGION_BYTES, AlloPlanner, batch_requests, copy_flags, die_expert_lists,
                             expert_counts, format_row, home_of, make_plan, region_slices, run_paper, study_order)


class RoundRates(Rates):
    """Round durations so event times can be worked by hand: reads and copy writes 1000 ns, a data leg
    200*h + 2000, a request leg 200*h + 1, compute 500 (issue 110 and LLC fills 30 are the study's)."""

    def local_read_ns(self, n):
        return 1000

    def holder_read_ns(self):
        return 1000

    def copy_write_ns(self):
        return 1000

    def request_serialisation_ns(self):
        return 1

    def data_serialisation_ns(self):
        return 2000

    def compute_ns(self, n):
        return 500


ROUND = RoundRates(1, 1, 0.9, lambda n: 1.0)
DEEPSEEK = Rates.for_model("deepseek", 7168, 2048)


def layer(tasks, width, height, rules=STUDY_RULES, rates=ROUND, matrices=1):
    return run_layer(tasks, PaperMesh(width, height, rules), rates, rules=rules, log=True, matrices=matrices)


def start_of(result, kind, task, matrix=0):
    return next(t for t, k, i, m, _ in result.log if (k, i, m) == (kind, task, matrix))


# ------------------------------------------------------------------ durations and the mesh

def test_stage_durations_follow_the_study_formulas():
    # DeepSeek slice = 3*7168*2048*2/3 = 29,360,128 B; HBM 3350*0.9 B/ns, links 1741*0.9, u(n<=128) = 0.5
    assert DEEPSEEK.slice_bytes == 29360128.0
    assert DEEPSEEK.holder_read_ns() == 300 + 9739            # ceil(29360128 / 3015) = ceil(9738.02)
    assert DEEPSEEK.local_read_ns(1) == 300 + 9745            # + 1*(7168+2048)*2 = 18,432 B of activations
    assert DEEPSEEK.request_leg_ns(3) == 600 + 1              # ceil(16 / 1566.9)
    assert DEEPSEEK.data_leg_ns(1) == 200 + 18738             # ceil(29360128 / 1566.9) = ceil(18737.7)
    assert DEEPSEEK.compute_ns(1) == 59                       # ceil(29,360,128 ops / (1e6 * 0.5))
    assert DEEPSEEK.compute_ns(129) == 7147                   # u(129) = 0.53: ceil(3,787,456,512 / 530,000)
    qwen = Rates.for_model("qwen3", 4096, 1536)               # TIMING.md's Qwen numbers
    assert (qwen.slice_bytes, qwen.holder_read_ns(), qwen.data_leg_ns(2)) == (12582912.0, 4474, 400 + 8031)
    assert Rates.for_model("llama4", 5120, 8192).dram_efficiency == 0.85


def test_routes_go_along_y_first_and_edges_are_unordered_pairs():
    mesh = PaperMesh(8, 3)                                    # die = y*8 + x, the study's s + 8t
    assert mesh.route(0, 17) == [0, 8, 16, 17]                # short axis (y) first, then x
    assert PaperMesh(8, 3, Rules(route_y_first=False)).route(0, 17) == [0, 1, 9, 17]
    assert mesh.link_names([16, 8]) == [("link", 8, 16)]
    assert PaperMesh(8, 3, Rules(shared_edges=False)).link_names([16, 8]) == [("link", 16, 8)]
    assert (len(mesh.edges()), len(PaperMesh(5, 5).edges())) == (37, 40)


# ------------------------------------------------------------------ hand-worked event times

def test_two_transfers_in_opposite_directions_over_one_edge_serialise():
    # 2x1. A: expert 0 (home 0) runs on die 1; B: expert 1 (home 1) runs on die 0. One chain each.
    # t=0 both issues start (ports 1, 0). A's request leg (110) takes the edge first; B's waits for it
    # (half duplex) and starts at 311, when A's ends. A's holder read 311..1311, its data leg is created at
    # 311 while B's request leg holds the edge, admitted at 1311. B's holder read 512..1512; its data leg
    # (due 1512) finds the edge held by A's data leg (1311..3511) and starts at 3511.
    res = layer([Task(0, 1, 1, 0), Task(1, 0, 1, 1)], 2, 1)
    assert [start_of(res, "request_leg", i) for i in (0, 1)] == [110, 311]
    assert [start_of(res, "data_leg", i) for i in (0, 1)] == [1311, 3511]
    assert [start_of(res, "compute", i) for i in (0, 1)] == [3511, 5711]
    assert (res.end, res.spans, res.hops, res.events) == (6211, {1: [0, 4011], 0: [0, 6211]}, 2, 16)
    # one resource per direction: nothing is shared, both chains run side by side
    res = layer([Task(0, 1, 1, 0), Task(1, 0, 1, 1)], 2, 1, Rules(shared_edges=False))
    assert [start_of(res, "data_leg", i) for i in (0, 1)] == [1311, 1311]
    assert res.end == 4011
    # hop latency as pipeline delay: a request leg holds the edge 1 ns, a data leg 2000 ns (not 2200)
    res = layer([Task(0, 1, 1, 0), Task(1, 0, 1, 1)], 2, 1, Rules(circuit_occupancy=False))
    assert [start_of(res, "request_leg", i) for i in (0, 1)] == [110, 111]
    assert [start_of(res, "data_leg", i) for i in (0, 1)] == [1311, 3311]
    assert res.end == 6011


def test_a_request_leg_blocks_a_data_leg():
    # 2x2 (dies 0 1 / 2 3), y-first routes. A: expert 0 (home 0) on die 3; B: expert 1 (home 0) on die 1;
    # C: expert 2 (home 1) on die 2. Routes: A request 3->0 = (1,3),(0,1); A data 0->3 = (0,2),(2,3);
    # B request and data = (0,1); C request 2->1 = (0,2),(0,1).
    # 0: issues. A's request takes (1,3),(0,1) due 110; B's and C's wait on (0,1) (C also on (0,2)).
    # 110: A's request pops (two hops: to 511); B's request, head of (0,1), is admitted due 511.
    # 511: A's holder read; its data leg (due 1511) takes (0,2),(2,3) at once, ahead of C waiting on (0,2).
    #      B's request pops: holder read due 712 but DRAM 0 is busy until 1511. C, head of (0,1), is blocked
    #      by (0,2).
    # 1511: A's data leg pops (busy to 3911): C's request, head of (0,2), now has both links: admitted, due
    #      3911, holding (0,1) from now. B's holder read pops: its data leg (due 2511) finds (0,1) held by
    #      C's request and waits until that request ends at 3911 + 401 = 4312.
    tasks = [Task(0, 3, 1, 0), Task(1, 1, 1, 0), Task(2, 2, 1, 1)]
    res = layer(tasks, 2, 2)
    assert start_of(res, "request_leg", 2) == 3911
    assert start_of(res, "data_leg", 1) == 4312
    assert (res.end, res.hops) == (8212, 5)
    # request legs holding no link: B's data leg starts when its holder read ends
    res = layer(tasks, 2, 2, Rules(request_legs_hold_links=False))
    assert start_of(res, "data_leg", 1) == 2511
    assert (res.end, res.hops) == (6811, 5)


def test_a_blocked_queue_head_holds_back_a_waiter_whose_resources_are_free():
    # 2x2. A: expert 0 (home 1) on die 2; B: expert 1 (home 2) on die 0; C: expert 2 (home 3) on die 0;
    # D: expert 3 (home 0) on die 2. Routes: A request 2->1 = (0,2),(0,1), A data 1->2 = (1,3),(2,3);
    # B and D use only (0,2); C request 0->3 = (0,2),(2,3).
    # 0: A's request takes (0,2),(0,1) due 110; B's waits on (0,2). Issues of C, D (ports 0, 2) run at 110;
    #    their requests (due 220) wait on (0,2) (C also on (2,3)).
    # 110: B's request admitted on (0,2) due 511; 511: D's request next (due 712); A's data leg takes
    #    (1,3),(2,3) due 1511. 712: B's holder read pops; its data leg (due 1712) waits on (0,2).
    # 913: D's request pops and frees (0,2); the head of its queue is C's request (waiting since 110), blocked
    #    by (2,3) (A's data leg, until 3911). B's data leg needs only (0,2), which is free, but is behind the
    #    head and is not tried. D's data leg, created at 913, takes (0,2) directly (due 1913, to 4113).
    # 4113: C's request gets (0,2),(2,3) (to 4514); only then is B's data leg the head: it starts at 4514.
    tasks = [Task(0, 2, 1, 1), Task(1, 0, 1, 2), Task(2, 0, 1, 3), Task(3, 2, 1, 0)]
    res = layer(tasks, 2, 2)
    assert (start_of(res, "data_leg", 3), start_of(res, "request_leg", 2)) == (1913, 4113)
    assert start_of(res, "data_leg", 1) == 4514
    assert res.end == 8414
    # trying every waiter: B's data leg starts when its holder read ends
    res = layer(tasks, 2, 2, Rules(head_of_line=False))
    assert start_of(res, "data_leg", 1) == 1712
    assert res.end == 8213


# A whole DeepSeek layer on 2x1: expert 0 (home 0) and expert 1 (home 1) both run on die 0, one token each,
# three chains each (L0-L2 local, priority 0; R0-R2 remote, priority 1). Durations: issue 110, local read
# 10045, holder read 10039, request leg 201, data leg 18938, compute 59, LLC fill 30.
#  - Port 0 serves issues in queue order after L0 (admitted at creation): R0, R1, R2 (priority 1) before L1,
#    L2; so L0 0, R0 110, R1 220, R2 330, L1 440, L2 550, and L0's LLC fill (due 10155) after them.
#  - The edge carries the requests back to back (220, 421, 622); R0's data leg waits behind R2's request and
#    the three data legs run back to back from 10460 (R1's at 29398, R2's at 48336).
#  - DRAM 0 serves L0 110, L1 10155, L2 20200; DRAM 1 serves R0 421, R1 10460, R2 20499.
#  - Compute locks at creation and remote chains come first: R0's compute (created 10460, due 29398) waits
#    for L1's; at 20200 L2's compute (due 30245) finds the unit locked by R0's and queues; when R0's pops,
#    R1's (priority 1, created at 29398) is the head, then R2's: L2 computes only at 67333.
WHOLE_LAYER = [
    (0, "issue", 0, 0), (110, "local_read", 0, 0), (110, "issue", 1, 0), (220, "request_leg", 1, 0),
    (220, "issue", 1, 1), (330, "issue", 1, 2), (421, "request_leg", 1, 1), (421, "holder_read", 1, 0),
    (440, "issue", 0, 1), (550, "issue", 0, 2), (622, "request_leg", 1, 2), (10155, "compute", 0, 0),
    (10155, "local_fill", 0, 0), (10155, "local_read", 0, 1), (10185, "done", 0, 0), (10214, "done", 0, 0),
    (10460, "remote_fill", 1, 0), (10460, "data_leg", 1, 0), (10460, "holder_read", 1, 1),
    (10490, "done", 1, 0), (20200, "compute", 0, 1), (20200, "local_read", 0, 2), (20200, "local_fill", 0, 1),
    (20230, "done", 0, 1), (20259, "done", 0, 1), (20499, "holder_read", 1, 2), (20499, "remote_fill", 1, 1),
    (20529, "done", 1, 1), (29398, "data_leg", 1, 1), (29398, "compute", 1, 0), (29457, "done", 1, 0),
    (30245, "local_fill", 0, 2), (30275, "done", 0, 2), (30538, "remote_fill", 1, 2), (30568, "done", 1, 2),
    (48336, "data_leg", 1, 2), (48336, "compute", 1, 1), (48395, "done", 1, 1), (67274, "compute", 1, 2),
    (67333, "done", 1, 2), (67333, "compute", 0, 2), (67392, "done", 0, 2),
]


def test_a_whole_small_layer_worked_by_hand():
    res = layer([Task(0, 0, 1, 0), Task(1, 0, 1, 1)], 2, 1, rates=DEEPSEEK, matrices=3)
    assert [entry[:4] for entry in res.log] == WHOLE_LAYER
    assert (res.end, res.spans, res.hops, res.events) == (67392, {0: [0, 67392]}, 3, 42)
    assert res.local_read_bytes == 3 * (29360128 + 18432)
    assert res.remote_read_bytes == 3 * 29360128 and res.write_bytes == 0
    # from a later start every time shifts by the start (a layer only depends on its barrier)
    later = run_layer([Task(0, 0, 1, 0), Task(1, 0, 1, 1)], PaperMesh(2, 1), DEEPSEEK, start=1000, log=True)
    assert [t for t, *_ in later.log] == [t + 1000 for t, *_ in WHOLE_LAYER]
    # stages created when their predecessor ends: L2's compute is no longer overtaken by R1's and R2's
    res = layer([Task(0, 0, 1, 0), Task(1, 0, 1, 1)], 2, 1, Rules(lock_at_creation=False), DEEPSEEK, 3)
    assert start_of(res, "compute", 0, 2) == 30245
    assert (res.end, res.events) == (67333, 42)


def test_copy_writes_and_local_copy_reads():
    # 2x1, copies_mode (the study's Pred path). Expert 1 (home 1) on die 0 with the copy predicate true:
    # the data leg (1311..3511) is followed by the copy write (DRAM 0, 3511..4511) before compute.
    region = CopyRegion(2, {0: 0, 1: 1}, capacity_slices=None)
    res = run_layer([Task(1, 0, 1, 1, copy_write=True)], PaperMesh(2, 1), ROUND, layer=5, region=region,
                    copies_mode=True, log=True, matrices=1)
    assert start_of(res, "copy_write", 0) == 3511 and start_of(res, "compute", 0) == 3511
    assert (res.end, res.write_bytes, res.spans) == (4511, ROUND.slice_bytes, {0: [0, 4511]})
    assert region.holds(0, (5, 1, 0)) and region.dies_holding(5, 1) == [0, 1]
    # next time die 0 reads its copy: issue 110, local read 110..1110, compute 1110..1610
    res = run_layer([Task(1, 0, 1, 1, copy_write=True)], PaperMesh(2, 1), ROUND, layer=5, region=region,
                    copies_mode=True, log=True, matrices=1)
    assert (res.end, res.hops, res.local_read_bytes > 0, res.write_bytes) == (1610, 0, True, 0)
    # without the Pred path a copy is never read: only the home die reads locally
    res = run_layer([Task(1, 0, 1, 1)], PaperMesh(2, 1), ROUND, layer=5, region=region, log=True, matrices=1)
    assert res.hops == 1


def test_copy_region_is_lru_per_die_and_sized_in_slices():
    region = CopyRegion(2, {0: 0, 3: 0, 7: 1}, capacity_slices=2)   # copies of expert 7 (home 1) on die 0
    for key in ((0, 7, 0), (0, 7, 1)):
        region.store(0, key)
    region.touch(0, (0, 7, 0))                               # a local copy read refreshes it
    region.store(0, (1, 7, 2))                               # evicts the least recently used: (0, 7, 1)
    assert [region.holds(0, k) for k in ((0, 7, 0), (0, 7, 1), (1, 7, 2))] == [True, False, True]
    assert region.evictions == 1 and region.dies_holding(0, 7) == [0, 1] and region.dies_holding(1, 7) == [0, 1]
    region.store(0, (1, 7, 0))
    assert region.dies_holding(0, 7) == [1]                  # the last copy of layer 0's expert 7 is gone
    assert region.holds(0, (3, 0, 1))                        # home slices are always there
    assert region_slices(COPY_REGION_BYTES, DEEPSEEK.slice_bytes) == 1828
    assert region_slices(COPY_REGION_BYTES, 12582912.0) == 4266 and region_slices(None, 1.0) is None


def test_llc_holds_the_last_two_slices_of_a_set():
    llc = LLCs(1, DEEPSEEK.slice_bytes)                      # 64 MiB // (2 * 29,360,128) = 1 set of 2 ways
    assert llc.sets == 1 and LLCs(1, 12582912.0).sets == 2
    for key in ((0, 1, 0), (0, 1, 1), (0, 2, 0)):
        llc.fill(0, key)
    assert [llc.holds(0, k) for k in ((0, 1, 0), (0, 1, 1), (0, 2, 0))] == [False, True, True]


def test_a_home_llc_hit_skips_the_holder_read():
    # 3x1. Die 0's LLC already holds slice (layer 0, expert 0, matrix 0), filled by an earlier fetch (as when
    # Allo splits an expert over two dies). Die 1 fetching it reads die 0's LLC (100 ns on its cache port)
    # instead of its DRAM: the request leg still crosses the link and counts its hop.
    llc = LLCs(3, ROUND.slice_bytes)
    llc.fill(0, (0, 0, 0))
    res = run_layer([Task(0, 1, 1, 0)], PaperMesh(3, 1), ROUND, llc=llc, log=True, matrices=1)
    kinds = [k for _, k, *_ in res.log]
    assert "remote_llc_read" in kinds and "holder_read" not in kinds
    assert (res.llc_hits, res.remote_read_bytes, res.hops) == (1, 0.0, 1)
    assert start_of(res, "data_leg", 0) == 110 + 201 + 100
    # with the LLC switched off the same fetch reads die 0's DRAM
    res = run_layer([Task(0, 1, 1, 0)], PaperMesh(3, 1), ROUND, llc=llc, rules=Rules(llc_hits=False),
                    log=True, matrices=1)
    assert (res.llc_hits, start_of(res, "data_leg", 0)) == (0, 110 + 201 + 1000)


def test_span_stats_as_the_study_computes_them():
    used, top, max_over_min, max_over_avg = span_stats({0: [0, 100], 3: [0, 50]}, 4)
    assert (used, top, max_over_min, max_over_avg) == (150, 100, 2.0, 100 / 75)


# ------------------------------------------------------------------ the paper profile's pieces

def test_request_order_is_by_path_component():
    names = ["o/m/mmlu/abc-x/1.json", "o/m/mmlu/abc/2.json", "o/m/mmlu/abc/10.json"]
    assert study_order(names) == [2, 1, 0]                   # "abc" < "abc-x"; "10.json" < "2.json"


def test_batches_repeat_the_order_or_rotate_as_the_study_main_does():
    names = ["s/b/1.json", "s/a/2.json", "s/a/1.json"]       # study order: 2, 1, 0
    assert batch_requests(names, 7) == [2, 1, 0, 2, 1, 0, 2]
    assert batch_requests(names, 2, rotate=8192, repeat=False) == [0, 2]   # starts at index 8192 mod 3 = 2
    assert batch_requests(names, 7, rotate=8192, repeat=False) == [0, 2, 1]


def test_allo_planner_worked_by_hand():
    # DeepSeek on 2x1, experts 0, 1 homed on die 0 (E = 4). Planner numbers: whole-expert read
    # 300 + 88,080,384/3015 = 29514.06, transfer 2*1*200 + 88,080,384/1566.9 = 56613.15,
    # compute(n) = ceil(2*7168*2048*n*3 / 700,000): 75,498 for 600 tokens, 64,425 for 512, 119,790 for 952.
    planner = AlloPlanner(DEEPSEEK, PaperMesh(2, 1))
    home = home_of(4, 2)
    def holders(e):
        return [home[e]]

    # {0: 600, 1: 600}: die 0 is pre-charged 2 reads (59028). Expert 0: local 75498 (compute over the reads)
    # against remote 56613 + 75498 on die 1: local. Expert 1: local would be 2 * 75498 = 150996; remote
    # costs max(132111 on die 1, 75498 vs 3 reads = 88542 on die 0) = 132111: die 1.
    assert make_plan("allo", {0: 600, 1: 600}, home, 2, planner, holders, 4) == [[0, 600, 0], [1, 600, 1]]
    # {0: 3000}: mean 750 -> threshold 750, 5 candidates wanted, 2 exist. Blocks 512, 512, 512, 512, then the
    # last 952 (a remainder under 512 joins the block before). Costs: block 1 local 64425 vs remote 121038;
    # block 2 local 128850 vs remote 121038 (die 1 first used: die 0 charged a read); block 3 local 128850
    # vs 242076; block 4 local 193275 vs 242076; block 5 local 313065 vs remote 297441.
    assert make_plan("allo", {0: 3000}, home, 2, planner, holders, 4) == [[0, 1536, 0], [0, 1464, 1]]
    # a die holding a copy is a local candidate: an idle copy holder beats the pre-charged home
    assert make_plan("allo", {0: 1}, home_of(2, 2), 2, planner, lambda e: [0, 1], 2) == [[0, 1, 1]]


def test_base_ranks_experts_by_first_appearance():
    class Trace:
        prefill_ids = np.array([[[5, 2]], [[2, 9]]], dtype=np.uint8)
        prefill_offsets = np.array([0, 1, 2])
    counts = expert_counts(Trace, [1, 0], 0, 0)              # request 1 first: 2, 9, then 5
    assert list(counts.items()) == [(2, 2), (9, 1), (5, 1)]
    plan = make_plan("base", counts, home_of(16, 4), 4)
    assert plan == [[2, 2, 3], [5, 1, 1], [9, 1, 0]]         # ranks 0,2,1 -> dies (k+7) mod 4, sorted by id
    assert home_of(256, 25)[249] == 24 and home_of(256, 25)[250] == 0 and home_of(256, 25)[255] == 5


def test_copy_predicate_lists_stop_at_the_die_id_quirk():
    plan = [[1, 4, 3], [3, 2, 3], [6, 1, 3], [7, 1, 0], [8, 1, 3]]
    assert die_expert_lists(plan) == {3: [1, 3], 0: [7]}     # experts 6 and 8 never join die 3's list
    heat = np.zeros((10, 10))                                # top ceil(0.2*10) = 2 of each row; no ties
    for row, cols in ((1, (8, 2)), (3, (6, 4)), (6, (1, 5)), (7, (2, 4))):
        heat[row, cols[0]], heat[row, cols[1]] = 5.0, 3.0
    flags = copy_flags(plan, heat, 10)
    assert flags[(3, 8)] and flags[(3, 6)]                   # predicted by rows 1 and 3
    assert not flags[(3, 1)]                                 # only row 6 predicts 1, and 6 is not in the list
    assert not flags[(0, 7)] and not flags[(3, 3)]


# ------------------------------------------------------------------ the study's printed numbers

# Every row, measured once (16 iterations, pure Python, 2 shared cores): 7-54 s each, ~5.5 min in all.
# CI runs the two rows that exercise the most: Base on 8x3 (circuit contention, route order on a
# non-square mesh) and Pred Only on 5x5 (copy region, heatmap, predicate). WAFERVIEW_PAPER_ROWS=all runs
# the ten.
CI_ROWS = {("base", "8"), ("pred_only", "5")}


def _rows():
    every = os.environ.get("WAFERVIEW_PAPER_ROWS") == "all"
    return [pytest.param(row, id=f"{row['strategy']}-{row['mesh_long']}x{row['mesh_short']}")
            for row in vector_rows() if every or (row["strategy"], row["mesh_long"]) in CI_ROWS]


@pytest.fixture(scope="module")
def vector_input():
    return load_input()


@pytest.mark.parametrize("row", _rows())
def test_reference_prints_the_study_numbers(vector_input, row):
    result = run_paper(vector_input, int(row["mesh_long"]), int(row["mesh_short"]), row["strategy"],
                       max_iterations=ITERATIONS)
    expected = ",".join(row.values())
    assert format_row(result) == expected
