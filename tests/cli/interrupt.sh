#!/bin/bash
# An interrupted vdi convert (SIGINT, SIGTERM) leaves no temporary file and
# no destination, or the old destination untouched.  To interrupt it
# half-way without racing, its progress bar goes to a pipe shrunk to one
# page that nobody reads: the convert blocks in the middle of the copy.
. "$(dirname "$0")/lib.sh"
need_python

python3 - "$VDI" "$T" <<'PY'
import fcntl, os, signal, subprocess, sys, time

vdi, tmp = sys.argv[1], sys.argv[2]
F_SETPIPE_SZ = 1031
n = 0
failed = 0

def result(ok, desc):
    global n, failed
    n += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (n, desc), flush=True)
    failed += not ok

# 2 GiB with 4 KiB of data every 2 MiB: about a thousand progress steps.
src = os.path.join(tmp, "src.raw")
with open(src, "wb") as f:
    f.truncate(2 << 30)
    for off in range(0, 2 << 30, 2 << 20):
        f.seek(off)
        f.write(os.urandom(4096))

def temp_files():
    return [x for x in os.listdir(tmp) if "vdi-convert" in x]

def interrupted(sig, fmt, dst, old):
    name = "%s, -O %s, %s destination" % (signal.Signals(sig).name, fmt,
                                          "existing" if old else "new")
    if old is not None:
        with open(dst, "w") as f:
            f.write(old)
    elif os.path.exists(dst):
        os.unlink(dst)
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    p = subprocess.Popen([vdi, "convert", "-p", "--force", "-O", fmt, src,
                          dst],
                         stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    # Wait until the pipe is full (the bar blocks) and the copy has begun.
    deadline = time.time() + 15
    blocked = False
    while time.time() < deadline and p.poll() is None:
        buf = bytearray(4)
        fcntl.ioctl(r, 0x541B, buf)  # FIONREAD
        if int.from_bytes(buf, "little") >= 4000 and temp_files():
            blocked = True
            break
        time.sleep(0.02)
    result(blocked and p.poll() is None,
           "%s: the convert is stopped half-way" % name)
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    os.close(r)
    result(rc == -sig, "%s: died of the signal (status %d)" % (name, rc))
    left = temp_files()
    result(not left, "%s: no temporary file left %s" % (name, left))
    if old is None:
        result(not os.path.exists(dst), "%s: no destination" % name)
    else:
        with open(dst) as f:
            result(f.read() == old, "%s: old destination untouched" % name)
    for x in left:
        os.unlink(os.path.join(tmp, x))

interrupted(signal.SIGINT, "vdi", os.path.join(tmp, "dst.vdi"), None)
interrupted(signal.SIGINT, "raw", os.path.join(tmp, "dst.raw"), "keep me\n")
interrupted(signal.SIGTERM, "vdi", os.path.join(tmp, "dst2.vdi"), "old\n")
interrupted(signal.SIGHUP, "raw", os.path.join(tmp, "dst2.raw"), None)

# Not interrupted, the same convert completes (the pipe read this time).
dst = os.path.join(tmp, "full.vdi")
p = subprocess.run([vdi, "convert", "-p", "-O", "vdi", src, dst],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
result(p.returncode == 0 and os.path.exists(dst) and not temp_files(),
       "uninterrupted convert completes and renames into place")
print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
