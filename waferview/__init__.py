"""waferview: replay MoE routing traces on a simulated wafer-scale GPU."""

__version__ = "0.1.0"
