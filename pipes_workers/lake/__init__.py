"""The Delta layer's parts that have outgrown `delta.py`: why a write failed (`write_failures`) and
what a failed write left behind (`leftovers`)."""
