"""The ``jetson_containers`` module that jc config scripts import (see its own docstring)."""
