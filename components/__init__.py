"""Pulumi components of spotyard; `stack/program.py` wires them from the stack configuration,
and a program of your own can use them on their own (README, "Components in your own program")."""
