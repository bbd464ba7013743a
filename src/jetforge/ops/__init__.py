"""Orchestrators: one function per command's work, typed requests in, values out; they
never print."""
