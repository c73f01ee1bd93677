"""`waferview bench`: the performance benchmark (issue 7).

Every figure is a ratio or a rate measured within one run on the same input, so a noisy machine still
gives comparable numbers. Modules:
  sizes.py     the three configurations (full, --quick, and a tiny one for the tests)
  measure.py   clocks, the machine description, child processes (peak RSS, start times)
  inputs.py    the synthetic traces and JSON files the suites run on (in a temporary folder)
  suites.py    one function per figure
  child.py     the child process that runs one batch and reports its peak memory
  runner.py    targets, the JSON object and the readable table
"""
