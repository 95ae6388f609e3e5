"""The `newsbot` command line: one module per command group, rendering apart."""

from index.cli.app import main

__all__ = ["main"]
