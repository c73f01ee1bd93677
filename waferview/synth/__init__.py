"""The synthetic trace generator (generate.py), its dataset-layout JSON writer (json_dataset.py) and its
calibration against the paper's statistics (calibrate.py). Above the trace layer: it writes TraceArrays
and caches, and the calibration reads waferview.analysis."""
