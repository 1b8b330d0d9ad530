#!/bin/bash
# nice = main (sched.Slice 500 us), s200 = sched.Slice 200 us; both -db-core 1 -db-nice 10, alternately
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10"
for r in 1 2 3; do
  ./run.sh s200 /tmp/b2 postgres $r
  ./run.sh nice /tmp/b postgres $((r+3))
done
echo done > series2.done
