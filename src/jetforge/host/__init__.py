"""Adapters that touch the host: processes, files and jetforge's private caches, build
contexts, the registry, credentials, trust, settings, platform detection and workers."""
