#!/bin/bash
# The `nbdkit` that tests/cli/examples.sh puts on PATH for the examples:
# the real one ($REAL_NBDKIT), with the plugin name "vdi" standing for the
# built plugin ($NBDKIT_VDI_PLUGIN), as an installed plugin is found in
# nbdkit's plugin directory.  Examples serve on a Unix socket (-U): no TCP
# port is opened here.  A server that goes into the background (neither
# -f nor --run) must write its pid (-P FILE): the file's path is added to
# $EXAMPLE_SERVERS, so that the test can stop that server (which carries
# EXAMPLE_SERVERS in its environment) should the example not stop it.
# $EXAMPLE_PRELOAD: the sanitizer runtimes a sanitized plugin needs in
# nbdkit (not in the command --run starts: QEMU hangs with them).
args=() pidfile='' bg=1 unix='' prev=''
unpreload=${EXAMPLE_PRELOAD:+unset LD_PRELOAD; }
for a in "$@"; do
	[ "$a" = vdi ] && a=$NBDKIT_VDI_PLUGIN
	case $prev in --run) a=$unpreload$a ;; esac
	case $a in --run=*) a=--run=$unpreload${a#--run=} ;; esac
	case $a in -f | --foreground | --run | --run=*) bg='' ;; esac
	case $a in -U | --unix | --unix=*) unix=1 ;; esac
	case $prev in -P | --pidfile) pidfile=$a ;; esac
	case $a in --pidfile=*) pidfile=${a#--pidfile=} ;; esac
	args+=("$a")
	prev=$a
done
if [ -z "$unix" ]; then
	echo "nbdkit (examples): serve on a Unix socket (-U) in an example" >&2
	exit 1
fi
if [ -n "$bg" ]; then
	if [ -z "$pidfile" ]; then
		echo "nbdkit (examples): a server left running needs -P PIDFILE" >&2
		exit 1
	fi
	case $pidfile in /*) ;; *) pidfile=$PWD/$pidfile ;; esac
	echo "$pidfile" >>"$EXAMPLE_SERVERS"
fi
if [ -n "${EXAMPLE_PRELOAD:-}" ]; then
	exec env LD_PRELOAD="$EXAMPLE_PRELOAD" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		"$REAL_NBDKIT" "${args[@]}"
fi
exec "$REAL_NBDKIT" "${args[@]}"
