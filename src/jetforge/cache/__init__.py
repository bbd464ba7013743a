"""The package cache: a local wheel and tarball index server and what builds get from it
(see docs/builds.md, "Package cache")."""
