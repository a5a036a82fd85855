#!/bin/sh
# The main job's script runs end to end: bench/run --quick on four targets
# writes a results.md with a row for each and the floors, and a
# results.json whose points carry the metrics.  Not a measurement: no
# figure is compared with anything (docs/benchmarks.md has the runs).
# From meson: FIO, VDI_FIO_ENGINE, BENCH_RUN (bench/run), PYTHON.
set -eu
out=$(mktemp -d "${TMPDIR:-/tmp}/vdi-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
targets="raw raw-sparse vdi-full vdi-fresh"

if ! "$PYTHON" "$BENCH_RUN" --engine "$VDI_FIO_ENGINE" --fio "$FIO" --quick --no-qemu \
	--targets "$(echo $targets | tr ' ' ,)" --workloads randwrite-4k-qd32 \
	--dir "$out/scratch" --out "$out" >"$out/stdout" 2>"$out/stderr"; then
	echo "bench/run failed:" >&2
	cat "$out/stderr" >&2
	exit 1
fi
for t in $targets; do
	grep -q "^| randwrite-4k-qd32 | $t |" "$out/results.md" || {
		echo "results.md has no row for $t:" >&2
		cat "$out/results.md" >&2
		exit 1
	}
done
grep -q "^| fresh 4k random write QD32 | randwrite-4k-qd32 | vdi-fresh |" "$out/results.md" || {
	echo "results.md has no floor row for vdi-fresh" >&2
	exit 1
}
"$PYTHON" - "$out/results.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
points = d["points"]
assert len(points) == 4, "%d points, not 4" % len(points)
for p in points:
    for k in ("mbps", "iops", "lat_p50_us", "lat_p99_us", "cs_per_io", "cpu_job_us_per_io"):
        assert p[k] is not None and p[k] > 0, (p["target"], k, p[k])
assert d["summary"]["randwrite-4k-qd32"]["vdi-fresh"]["ratio_raw"] > 0
PY
echo "ok: bench/run --quick wrote a row and the metrics for $targets"
