"""Container engines: the ``Engine`` protocol and its docker and podman implementations."""
