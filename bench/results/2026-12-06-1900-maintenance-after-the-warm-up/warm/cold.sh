#!/bin/bash
# cold.sh R...: restarts with 1,000 idle cold handshakes, their slow ones recorded (build /tmp/b4): PostgreSQL (first1) then SQLite, for each R
for R in "$@"; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000 -pg postgres://postgres@127.0.0.1:5432/first1?sslmode=disable" ./run.sh cold /tmp/b4 postgres $R
  EXTRA="-cold 1000" ./run.sh cold /tmp/b4 sqlite $R
done
