"""Pulumi components of spotyard; `__main__.py` wires them from the stack configuration."""
