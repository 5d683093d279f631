"""Metric kernels: PCC, pathway aggregation, variance levels, HVG and clustering."""
