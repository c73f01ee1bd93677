"""`paper`: every choice the study's own simulator makes (as measured against its outputs: the circuit link
model's docstring and tests/reference_circuit.py say what each one is):

  links circuit        slices as circuits over half-duplex edges, head-of-line wake-up, a barrier per layer
  route_order yx       routes along y (die id div width) first: the study's x, its short axis on 8x3
  base_order first-seen   Base ranks each layer's experts by first appearance; rank k runs on die (k + 7) mod N
  allo_planner study   the study's planner: its coarse cost model, candidates and blocks of 512
  block_size 512       (its blocks; the paper's text says 50)
  read_from home       a die reads its own HBM (home data or its own copy), else the home die, never a third
  heatmap_rule study   its heatmap and copy predicate (NumPy argsort order, decode only, its die-list quirk)
  copy_region 50GiB    copies per weight-matrix slice in a 50 GiB region per die, least recently used evicted
                       (`--copy-region unbounded` is the paper's original code: no bound)
  batch_order study    requests in (subject folder, file name) order, repeated in order to fill a batch
  prefill_rule study   step 0 is a prefill only if the batch's last request has a prompt of more than one row
  max_steps 128        128 iterations, the prefill included
Outputs add `paper_throughput` (batch x 128 / decode time, the study's formula) beside the true tokens/s.
"""

from waferview.policies.base import STUDY_REGION_BYTES

DESCRIPTION = "the study's simulator: circuit links, its Base order, its Allo planner and predictor, 50 GiB regions"
SETTINGS = {
    "links": "circuit",
    "route_order": "yx",
    "base_order": "first-seen",
    "allo_planner": "study",
    "block_size": 512,
    "read_from": "home",
    "heatmap_rule": "study",
    "copy_region": STUDY_REGION_BYTES,
    "batch_order": "study",
    "prefill_rule": "study",
    "max_steps": 128,
}
