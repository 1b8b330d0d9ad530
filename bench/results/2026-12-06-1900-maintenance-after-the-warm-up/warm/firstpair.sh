#!/bin/bash
# firstpair.sh R: a first start of the PostgreSQL seed's copy with the old build (first), then with the new (aft3)
R=$1
export EXTRA="-db-core 1 -db-nice 10 -pg postgres://postgres@127.0.0.1:5432/first1?sslmode=disable"
./restore.sh postgres && ./run.sh first /tmp/b postgres $R
./restore.sh postgres && ./run.sh aft3 /tmp/b3 postgres $R
