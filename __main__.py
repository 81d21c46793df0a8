"""spotyard: the Pulumi program. Loads the stack configuration, builds the stack
(stack/program.py) and exports its outputs; nothing happens at import."""

from pathlib import Path

import pulumi

from stack.program import build_stack
from stack.stack_config import load_stack_config


def main() -> None:
    outputs = build_stack(load_stack_config(Path(__file__).resolve().parent))
    for name, value in outputs.items():
        pulumi.export(name, value)


if __name__ == "__main__":
    main()
