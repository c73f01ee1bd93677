"""Trace layer: reading the dataset format, the compact cache, the Hub."""
