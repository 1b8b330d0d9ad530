# The runs of this section, in order (each waited for the one before).
# s1: the first runs on the new seeds
EXTRA="" ./run.sh main /tmp/b sqlite 1; EXTRA="-db-core 1 -db-nice 10" ./run.sh main /tmp/b postgres 1
# s2
EXTRA="" ./run.sh main /tmp/b sqlite 2; EXTRA="-db-core 1 -db-nice 10" ./run.sh main /tmp/b postgres 2
# a runtime trace of 35 s from the node's start
./traced.sh traced /tmp/b sqlite 1 35
# s3: /tmp/b rebuilt with fbe3e44 (the phases in the log line)
EXTRA="" ./run.sh ph /tmp/b sqlite 1; EXTRA="-db-core 1 -db-nice 10" ./run.sh ph /tmp/b postgres 1
# s4: /tmp/b2 = fbe3e44 with gcgoal.WarmFloor 2 GiB (not kept)
EXTRA="" ./run.sh f2g /tmp/b2 sqlite 1; EXTRA="" ./run.sh ph /tmp/b sqlite 2; EXTRA="" ./run.sh f2g /tmp/b2 sqlite 2; EXTRA="" ./run.sh ph /tmp/b sqlite 3
# profiles: CPU over 22 s from 1 s after the node answered, allocations before and after
./profiled.sh prof /tmp/b sqlite 1 1 22
# s5: /tmp/b3 = 9901afd (statements prepared)
EXTRA="" ./run.sh prep /tmp/b3 sqlite 1; EXTRA="" ./run.sh ph /tmp/b sqlite 4; EXTRA="" ./run.sh prep /tmp/b3 sqlite 2; EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 1
# s6
EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 2; EXTRA="-db-core 1 -db-nice 10" ./run.sh ph /tmp/b postgres 3; EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 3
# s7: after the mid-session CI (no measurement during it)
EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 4; EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 5; EXTRA="-db-core 1 -db-nice 10" ./run.sh prep /tmp/b3 postgres 6
