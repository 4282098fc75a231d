#!/usr/bin/env python3
"""bench/import: prints figures, asserts nothing.

Builds a root-file-system-like tree (~SIZE MiB: big incompressible files and
many small text files), packs it as tar.zst, serves it over loopback HTTP and
times, in one run, alternating (each first in every other round, every run
unpacking into a directory of its own):

  pipeline  curl URL | tee FIFO | bsdtar -x   (sha256sum FIFO beside it)
  xenctl    image_tool import URI DEST --sha256 ...  (lib/image: download,
            SHA-256 (BLAKE2b too when signed), unpack, in one pass: what xenctld runs before
            it makes the base volume)
  xenctld   vm-image import (adds mkfs.ext4 -d into a dir pool), when
            --xenctld and --vmm-dir are given

and prints each one's best time, throughput (archive bytes / s) and the ratio
xenctl / pipeline (target: >= 1.0). GNU tar stands in for bsdtar when
libarchive-tools is not installed (it says so).
"""

import argparse
import functools
import hashlib
import http.server
import os
import random
import resource
import shutil
import subprocess
import tempfile
import threading
import time


def make_tree(root, size_mib):
    rnd = random.Random(6)
    big = int(size_mib * 0.45) << 20
    small = (size_mib << 20) - big
    os.makedirs(os.path.join(root, "usr/lib"))
    done, i = 0, 0
    while done < big:
        n = min(8 << 20, big - done)
        with open(os.path.join(root, f"usr/lib/lib{i}.so"), "wb") as f:
            f.write(os.urandom(n))
        done, i = done + n, i + 1
    words = [("%x" % rnd.getrandbits(24)) for _ in range(4096)]
    done, i = 0, 0
    while done < small:
        d = os.path.join(root, f"usr/share/doc/pkg{i // 100}")
        os.makedirs(d, exist_ok=True)
        n = rnd.randint(1 << 10, 96 << 10)
        text = " ".join(rnd.choice(words) for _ in range(n // 6)).encode()[:n]
        with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
            f.write(text)
        done, i = done + len(text), i + 1
    return i


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


CPU = {}  # label -> CPU seconds (user + sys) of each run, children included


def timed(argv, cpu_key=None, **kw):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(argv, check=True, **kw)
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu_key:
        CPU.setdefault(cpu_key, []).append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return elapsed


def make_archive(work, www, size_mib):
    """A tree of size_mib MiB packed as www/root.tar.zst: its size and SHA-256."""
    os.makedirs(www)
    tree = os.path.join(work, "tree")
    t0 = time.monotonic()
    files = make_tree(tree, size_mib)
    archive = os.path.join(www, "root.tar.zst")
    subprocess.run(["tar", "--zstd", "-cf", archive, "-C", tree, "."], check=True)
    shutil.rmtree(tree)
    size = os.path.getsize(archive)
    with open(archive, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else \
            hashlib.sha256(f.read()).hexdigest()
    print(f"archive: {size_mib} MiB tree, {files} small files + big ones, tar.zst {size / 2**20:.1f} MiB "
          f"(made in {time.monotonic() - t0:.1f} s)")
    return size, digest


def start_daemon(xenctld, work, port):
    """xenctld (test hypervisor) on work/x.sock, trusting the loopback server's digests."""
    state = os.path.join(work, "state")
    sock = os.path.join(work, "x.sock")
    config = os.path.join(work, "xenctld.toml")
    with open(config, "w", encoding="utf-8") as f:  # the loopback server: a SHA-256 is proof enough
        f.write(f'[[images.source]]\nprefix = "http://127.0.0.1:{port}/"\n'
                f'policy = "digest"\n')
    daemon = subprocess.Popen([xenctld, "--config", config, "--listen", "unix:" + sock,
                               "--state-dir", state, "--hypervisor", "test"], stderr=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    return daemon


def report(runs, size, bsdtar):
    label = {"pipeline": f"curl | tee | {'bsdtar' if bsdtar else 'GNU tar (no bsdtar)'} -x + sha256sum",
             "xenctl": "lib/image import (fetch+sha256+unpack, one pass)",
             "xenctld": "vm-image import (+ mkfs.ext4 -d into a dir pool)"}
    best = {}
    for k, ts in runs.items():
        if not ts:
            continue
        best[k] = min(ts)
        cpu = f"  CPU {min(CPU[k]):.2f} s" if k in CPU else ""
        print(f"{label[k]:55s} best {best[k]:6.2f} s  {size / best[k] / 2**20:7.1f} MiB/s{cpu}  "
              f"(runs: {', '.join(f'{t:.2f}' for t in ts)})")
    print(f"ratio xenctl / pipeline throughput: {best['pipeline'] / best['xenctl']:.2f}x (target >= 1.0); "
          f"CPU time pipeline / xenctl: {min(CPU['pipeline']) / min(CPU['xenctl']):.2f}x "
          f"(the steadier figure on a shared machine; the HTTP server's CPU is in neither)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-tool", required=True)
    ap.add_argument("--xenctld")
    ap.add_argument("--vmm-dir")
    ap.add_argument("--size-mib", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="xenctl-bench-import-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        www = os.path.join(work, "www")
        size, digest = make_archive(work, www, args.size_mib)

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=www))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/root.tar.zst"

        bsdtar = shutil.which("bsdtar")
        untar = [bsdtar, "-x", "-f", "-"] if bsdtar else ["tar", "--zstd", "-x", "-f", "-"]
        fifo = os.path.join(work, "fifo")
        os.mkfifo(fifo)

        # Each run unpacks into a directory of its own, all removed at the end:
        # ext4 makes a file created soon after thousands were deleted pay for
        # it (recently_deleted() in inode allocation, half of an import's
        # samples in perf), so removing one run's tree would slow the next.
        seq = [0]

        def fresh(prefix):
            seq[0] += 1
            return os.path.join(work, f"{prefix}{seq[0]}")

        def pipeline():
            out = fresh("p")
            os.makedirs(out)
            script = (f"set -eo pipefail; sha256sum {fifo} > {work}/sum & "
                      f"curl -sSf {url} | tee {fifo} | {' '.join(untar)} -C {out}; wait")
            t = timed(["bash", "-c", script], cpu_key="pipeline")
            with open(f"{work}/sum") as f:
                assert f.read().split()[0] == digest
            return t

        def ours():
            t = timed([args.image_tool, "import", url, fresh("x"), "--sha256", digest, "--policy", "none"],
                      cpu_key="xenctl", stdout=subprocess.DEVNULL)
            return t

        daemon = start_daemon(args.xenctld, work, httpd.server_address[1]) if args.xenctld and args.vmm_dir else None
        n = [0]

        def via_daemon():
            n[0] += 1
            env = dict(os.environ, XENCTL_CONNECT="unix:" + os.path.join(work, "x.sock"))
            vm_image = os.path.join(args.vmm_dir, "vm-image")
            t = timed([vm_image, "import", f"img{n[0]}", url, "--sha256", digest, "--json"],
                      env=env, stdout=subprocess.DEVNULL)
            # Not the same digest twice: the second import would be a clone.
            subprocess.run([vm_image, "delete", f"img{n[0]}"], env=env, check=True, stdout=subprocess.DEVNULL)
            return t

        # The two compared runs alternate, each first in every other round;
        # the daemon's runs (which delete their unpacked trees) come after.
        runs = {"pipeline": [], "xenctl": [], "xenctld": []}
        for i in range(args.runs):
            order = ["pipeline", "xenctl"] if i % 2 == 0 else ["xenctl", "pipeline"]
            for k in order:
                runs[k].append(pipeline() if k == "pipeline" else ours())
        for _ in range(args.runs if daemon else 0):
            runs["xenctld"].append(via_daemon())
        if daemon:
            daemon.terminate()
            daemon.wait()
        httpd.shutdown()

        report(runs, size, bool(bsdtar))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
