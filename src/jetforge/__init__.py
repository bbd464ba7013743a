"""jetforge: compose container images for GPU and edge-AI stacks out of small packages."""

__version__ = "0.1.0"
