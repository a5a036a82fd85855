#!/bin/sh
# repeat.sh N COMMAND...: run COMMAND N times; stop at the first failure
# and exit with its status.  For tests whose failures depend on timing
# (a data race that ThreadSanitizer sees only when the threads meet).
n=${1:?usage: repeat.sh N COMMAND...}
shift
i=0
while [ "$i" -lt "$n" ]; do
	"$@" || { rc=$?; echo "repeat.sh: run $((i + 1)) of $n failed (exit $rc)" >&2; exit $rc; }
	i=$((i + 1))
done
