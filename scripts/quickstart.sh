#!/usr/bin/env bash
# The main job: set up .venv (once), then run the quick-start notebook headlessly in a real Jupyter kernel,
# showing its progress as it goes (each cell as it starts, the tiny model's build, the training steps with
# their ETA): it asks ftkit's tiny model a 16-question quiz, fine-tunes a LoRA adapter on the quiz (CPU,
# offline), merges it, asks again, and ends with `learned: K/N`. The executed notebook, with its outputs,
# is saved to outputs/quickstart.ipynb.
start=$SECONDS
FTKIT_SETUP=${FTKIT_SETUP:-quickstart} source "$(dirname "$0")/setup.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1   # everything it needs is local: never wait for the Hub
echo "Ready after $((SECONDS - start))s."
python scripts/run_notebook.py nbs/tutorials/01_quickstart.ipynb outputs/quickstart.ipynb
