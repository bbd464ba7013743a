"""The command line: one module per subcommand; ``main`` owns all output and errors."""
