#!/usr/bin/env bash
# The main job: set up, then run the quick-start notebook headlessly in a real Jupyter kernel: it fine-tunes
# ftkit's tiny model on the bundled chat data (CPU, offline), chats with it, merges it, and is saved with its
# outputs to outputs/quickstart.ipynb.
source "$(dirname "$0")/setup.sh"
python scripts/run_notebook.py nbs/tutorials/01_quickstart.ipynb outputs/quickstart.ipynb
