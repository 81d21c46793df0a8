"""`python -m spotyard`: the CLI."""

from spotyard.cli import main

main()
