"""Benchmarks (design.md, "Performance budget"): they measure, never assert timings."""
