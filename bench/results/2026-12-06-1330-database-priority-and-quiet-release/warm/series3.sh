#!/bin/bash
# quiet = the sync's release collecting only, its pages returned by the edge when calm (/tmp/b3);
# nice = main (/tmp/b); both -db-core 1 -db-nice 10, alternately
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10"
for r in 1 2 3; do
  ./run.sh quiet /tmp/b3 postgres $r
  ./run.sh nice /tmp/b postgres $((r+6))
done
echo done > series3.done
