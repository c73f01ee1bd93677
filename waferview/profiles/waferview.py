"""`waferview`: waferview's own model of the wafer (the default). Every option keeps its own default: the fluid
link model (a full-duplex bandwidth bound per link), XY routes, a seeded Base, the paper's Algorithm 1 as it
describes it (blocks of 50), reads from the nearest holder, waferview's heatmap rule, whole-expert copies in
the free HBM with the admit eviction rule, a seeded batch, the whole trace."""

DESCRIPTION = "waferview's own model: fluid links, seeded Base, Algorithm 1 as described, copies in free HBM"
SETTINGS: dict = {}
