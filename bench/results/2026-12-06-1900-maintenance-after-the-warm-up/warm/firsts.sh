#!/bin/bash
# firsts.sh LABEL BIN R...: for each R a first start of each seed's copy (SQLite, then PostgreSQL as database first1)
L=$1; BIN=$2; shift 2
for R in "$@"; do
  ./restore.sh sqlite && EXTRA= ./run.sh $L $BIN sqlite $R
  ./restore.sh postgres && EXTRA="-db-core 1 -db-nice 10 -pg postgres://postgres@127.0.0.1:5432/first1?sslmode=disable" ./run.sh $L $BIN postgres $R
done
