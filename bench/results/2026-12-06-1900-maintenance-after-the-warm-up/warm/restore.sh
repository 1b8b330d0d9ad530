#!/bin/bash
# restore.sh STORE: put back the seed as it was before its first start (SQLite folder; PostgreSQL: the data folder and a fresh copy of database seed1m as first1)
ST=$1
pkill -f "serve --data"; sleep 1
rm -rf /work/scale/$ST-1000000 && cp -a /work/scale-seed/$ST-1000000 /work/scale/
if [ $ST = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists first1" -c "create database first1 template seed1m"
fi
sync
