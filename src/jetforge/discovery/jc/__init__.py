"""Reading package trees in the jetson-containers ("jc") format.

A jc package directory is read with that project's semantics: its key set (with
``buildkit_device`` and ``path``), a Dockerfile header made only of leading comment lines,
``test.py``/``test.sh`` found by name, JSON/YAML config files, and module-level
``config.py`` scripts that rewrite an injected ``package`` dict and import the
``jetson_containers`` compatibility module (:mod:`jetforge.discovery.jc.compat`). Config scripts run
in a worker process (:mod:`jetforge.discovery.scripts`), offline and with a time limit.
"""
