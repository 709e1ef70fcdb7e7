"""Helion ports, one file per catalog kernel: ports/<category>/<kernel>.py."""
