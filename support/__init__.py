"""Helpers that the tests and the benchmarks share: package trees, extra Docker daemons, a
registry, a package index. Neither tests/ nor bench/ imports the other."""
