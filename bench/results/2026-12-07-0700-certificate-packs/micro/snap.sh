#!/bin/bash
# BenchmarkSnapshot/100000 (10,000 certificates), one core, old (85b6815) and new (certificate packs) alternating
cd /work/res/micro
for i in 1 2 3; do
  for v in old new; do
    taskset -c 1 /tmp/fleet-$v.test -test.run '^$' -test.bench 'Snapshot/100000' -test.benchtime 1x -test.cpu 1 > snap-$v-$i.txt 2>&1
  done
done
echo done
