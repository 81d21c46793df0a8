#!/bin/bash
# The workbench's own setup; runs after spotyard's bootstrap on every new instance.
set -euo pipefail
dnf install -y git tmux htop
