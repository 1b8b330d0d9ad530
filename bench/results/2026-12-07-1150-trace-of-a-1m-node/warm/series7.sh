#!/bin/bash
# series7.sh: the landed build (/tmp/b, 16226fe) on SQLite, two runs, to set beside the final build's
cd /work/res/warm
for r in 1 2; do EXTRA="" ./run.sh landed /tmp/b sqlite $r; done
