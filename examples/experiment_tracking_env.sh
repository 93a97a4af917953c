#!/usr/bin/env bash
# The seed's environment-variable example, through `runlog exec`: a shell step
# exports RUNNABLE_TRACK_* variables and runlog records them as the step's metrics.
#
# Run it:  bash examples/experiment_tracking_env.sh [STORE] [RUN_ID]
set -euo pipefail
STORE=${1:-.run_log_store}
RUN_ID=${2:-env-example-$(date +%H%M%S)}
RUNLOG=${RUNLOG:-runlog}
PYTHON=${PYTHON:-python3}

$RUNLOG exec --store "$STORE" --run-id "$RUN_ID" --tag env-example --step shell -- '
export runnable_TRACK_spam="hello"
export RUNNABLE_TRACK_eggs="{\"ham\": \"world\"}"
export RUNNABLE_TRACK_answer="42.0"
export RUNNABLE_TRACK_loss_STEP_0="0.9"
export RUNNABLE_TRACK_loss_STEP_1="0.5"
export RUNNABLE_TRACK_loss_STEP_2="0.2"
echo "shell step done"
'
# A Python child of `runlog exec` that calls track_this records into the same run.
$RUNLOG exec --store "$STORE" --run-id "$RUN_ID" --step evaluate -- \
  "$PYTHON" -c 'from runlog import track_this; track_this(f1=0.81); print("evaluated")'
echo "recorded run $RUN_ID"
