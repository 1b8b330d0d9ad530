#!/bin/bash
# series2.sh LABEL BIN R...: for each R a SQLite run and a PostgreSQL run (database first1), restarts of the stores as they are
L=$1; BIN=$2; shift 2
for R in "$@"; do
  EXTRA= ./run.sh $L $BIN sqlite $R
  EXTRA="-db-core 1 -db-nice 10 -pg postgres://postgres@127.0.0.1:5432/first1?sslmode=disable" ./run.sh $L $BIN postgres $R
done
