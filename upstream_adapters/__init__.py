"""Thin wrappers calling the pinned upstream kernels: upstream_adapters/<category>/<kernel>.py."""
