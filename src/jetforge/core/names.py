"""Variant names, ``BASE[:TAG]`` (``pytorch:2.8``, ``cmake``): split here and nowhere else."""

from __future__ import annotations


def base_name(name: str) -> str:
    """``pytorch`` for ``pytorch:2.8`` and for ``pytorch``."""
    return name.partition(":")[0]


def variant_tag(name: str) -> str:
    """``2.8`` for ``pytorch:2.8``; empty for a bare base name."""
    return name.partition(":")[2]


def in_file_name(name: str) -> str:
    """The name as it goes into an image tag or a file name: ``pytorch_2.8``."""
    return name.replace(":", "_")
