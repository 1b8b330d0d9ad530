#!/bin/bash
# series3.sh: reseal.sh with 4,096 keys a query (/tmp/b) and 256 (/tmp/bn), alternately
cd /work/res/warm
for r in 1 2 3; do ./reseal.sh old /tmp/b $r $((r*20)); ./reseal.sh new /tmp/bn $r $((r*20+10)); done
