"""Discovery: walk the package trees, read their definitions, run their config scripts in a
worker, and keep what was read in the discovery index."""
