"""spotyard: EC2 Spot workstations and workers as one Pulumi program.

This package holds what both the Pulumi program and the `spotyard` CLI need:
the typed stack configuration and the renderers shared by both.
"""
