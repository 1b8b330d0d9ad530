#!/bin/bash
# run.sh LABEL BIN STORE R
L=$1; BIN=$2; ST=$3; R=$4; O=/work/res/warm/warm-$L-$ST-$R
pkill -f "serve --data"; sleep 1
$BIN/scale -bin $BIN -work /work/scale -n 1000000 -stores $ST -changes 3 -idle-max 3m -settle 75s -warm-probe $EXTRA -out $O.jsonl > $O.md 2> $O.log
cp /work/scale/$ST-1000000-spine.log $O.node.log
