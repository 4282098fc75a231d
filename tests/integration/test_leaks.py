"""What must not leak or disagree, against the real xenctld (test hypervisor,
a dir pool): one daemon per state directory; golden image base volumes that
only the image calls change; and resource exhaustion in the middle of work
(a dir pool and the state directory on small tmpfs mounts, which needs root
and mount(8): skipped, saying so, where that is not permitted), which ends
in a clear error, nothing left behind, and a store that still reads."""

import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import unittest

from harness import XENCTLD, Daemon, DaemonTestCase, read
from test_provision import sha256_of, write

MIB = 1 << 20


def mount_tmpfs(test, path, size_mib):
    """Mounts a tmpfs of `size_mib` on `path` (unmounted at cleanup); skips the test when not permitted."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}M,mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise unittest.SkipTest(f"cannot mount a tmpfs on {path} (needs root and mount permission): {r.stderr.strip()}")
    test.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)


def fill(path, leave_bytes=0):
    """Fills the file system of directory `path` with a file, leaving about `leave_bytes` free; returns its path."""
    filler = os.path.join(path, "filler")
    st = os.statvfs(path)
    size = max(0, st.f_bavail * st.f_frsize - leave_bytes)
    with open(filler, "wb") as f:
        chunk = b"\xa5" * MIB
        while size > 0:
            try:
                f.write(chunk[:min(size, MIB)])
                f.flush()
            except OSError:
                break
            size -= MIB
    return filler


class LeakTest(DaemonTestCase):
    start_daemon = False

    def start(self, pool_dir=None, state_dir=None):
        self.pool_dir = pool_dir or os.path.join(self.workdir, "pool")
        config = os.path.join(self.workdir, "xenctld.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'[[pool]]\nname = "main"\npath = "{self.pool_dir}"\n')
        self.daemon = Daemon(self.workdir, state_dir=state_dir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)

    def raw_image(self, name, size="16M", data_mib=0):
        """An ext4 image file with `data_mib` MiB of incompressible data in it; (its path, its SHA-256)."""
        root = os.path.join(self.workdir, name + ".tree")
        write(os.path.join(root, "etc/hostname"), name + "\n")
        if data_mib:
            with open(os.path.join(root, "data.bin"), "wb") as f:
                f.write(os.urandom(data_mib * MIB))
        image = os.path.join(self.workdir, name + ".img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", root, image, size], check=True, capture_output=True)
        return image, sha256_of(image)

    def leftovers(self):
        """Pool files that are no volume, and pool staging files."""
        vols = {v["name"] for v in self.vm("volume", "list", "--json").json()}
        files = {f[:-4] for f in os.listdir(self.pool_dir) if f.endswith(".img")}
        tmp = os.path.join(self.pool_dir, ".tmp")
        staged = os.listdir(tmp) if os.path.isdir(tmp) else []
        return sorted(files - vols) + sorted(staged)

    # --- one daemon per state directory

    def test_second_daemon_on_the_same_state_dir_is_refused(self):
        """A second xenctld (another socket) on a state directory in use exits at once, naming it and the holder."""
        self.start()
        other = tempfile.mkdtemp(prefix="xenctl-it2-", dir="/tmp")
        self.addCleanup(shutil.rmtree, other, ignore_errors=True)
        log = os.path.join(other, "second.log")
        with open(log, "wb") as out:
            proc = subprocess.run([XENCTLD, "--listen", "unix:" + os.path.join(other, "s.sock"), "--state-dir",
                                   self.daemon.state_dir, "--hypervisor", "test"],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
        text = read(log)
        self.assertEqual(proc.returncode, 1, text)
        self.assertIn(f"state directory {self.daemon.state_dir} is in use by another process (pid {self.daemon.proc.pid})",
                      text)
        self.assertFalse(os.path.exists(os.path.join(other, "s.sock")))
        self.vm("list")  # the first one serves on
        # Once the first is gone (even by kill -9), the directory is free again.
        self.daemon.proc.kill()
        self.daemon.proc.wait()
        self.daemon.start()
        self.vm("list")

    # --- golden images

    def test_image_base_volume_stays_golden(self):
        """An image's base volume is read-only and only vm-image delete removes it; the catalog never names a
        missing volume, and the same digest imports again afterwards."""
        self.start()
        image, sha = self.raw_image("golden")
        self.vm("image", "import", "golden", "file://" + image, "--sha256", sha)
        base = {v["name"]: v for v in self.vm("volume", "list", "--json").json()}["golden"]
        self.assertTrue(base["read_only"])
        for argv in (["delete", "golden"], ["resize", "golden", "64M"]):
            r = self.vm("volume", *argv, expect=1)
            self.assertIn("base volume of image 'golden'", r.err)
            self.assertIn("vm-image delete golden", r.err)
        r = self.vm("create", "web1", "--memory", "128M", "--vcpus", "1", "--disk", "vol:main/golden,xvda,w", expect=None)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("base of image 'golden'", r.err)
        self.assertEqual([i["name"] for i in self.vm("image", "list", "--json").json()], ["golden"])
        # Restarted: still golden.
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        self.assertIn("base volume of image 'golden'", self.vm("volume", "delete", "golden", expect=1).err)
        self.vm("image", "delete", "golden")
        self.assertEqual(self.vm("volume", "list", "--json").json(), [])
        self.vm("image", "import", "golden2", "file://" + image, "--sha256", sha)
        self.assertEqual([i["name"] for i in self.vm("image", "list", "--json").json()], ["golden2"])

    # --- resource exhaustion

    def test_pool_full_during_import(self):
        """An image whose data does not fit in the pool fails the import with a clear error, leaves no volume, no
        catalog row and no staging, and the daemon serves on (the same name imports once there is room)."""
        pool = os.path.join(self.workdir, "pool")
        mount_tmpfs(self, pool, 24)
        self.start(pool_dir=pool)
        image, sha = self.raw_image("big", size="64M", data_mib=40)  # sparse volume, 40 MiB written: ENOSPC midway
        r = self.vm("image", "import", "big", "file://" + image, "--sha256", sha, expect=1)
        self.assertRegex(r.err, r"(?i)no space|space|RESOURCE_EXHAUSTED")
        self.assertIn("importing image 'big'", r.err)
        print(f"pool full during an import: {r.err.strip()}")
        self.assertEqual(self.vm("image", "list", "--json").json(), [])
        self.assertEqual(self.vm("volume", "list", "--json").json(), [])
        self.assertEqual(self.leftovers(), [])
        small, small_sha = self.raw_image("small")
        self.vm("image", "import", "big", "file://" + small, "--sha256", small_sha)

    def test_pool_full_during_clones(self):
        """Clones racing for the last space of a pool (no reflink on tmpfs: full copies) each end either made or
        refused with a clear error naming the space; nothing half-made stays, the store reads."""
        pool = os.path.join(self.workdir, "pool")
        mount_tmpfs(self, pool, 40)
        self.start(pool_dir=pool)
        image, sha = self.raw_image("golden", size="16M", data_mib=10)
        self.vm("image", "import", "golden", "file://" + image, "--sha256", sha)
        results = {}

        def clone(name):
            results[name] = self.vm("volume", "clone", "golden", name, expect=None)

        threads = [threading.Thread(target=clone, args=(f"c{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        made = {v["name"] for v in self.vm("volume", "list", "--json").json()}
        failed = [n for n, r in results.items() if r.rc != 0]
        self.assertTrue(failed, f"40 MiB cannot hold the base and four 10 MiB copies: {results}")
        for n in failed:
            print(f"pool full during a clone: {results[n].err.strip()}")
            self.assertNotIn(n, made)
            self.assertRegex(results[n].err, r"(?i)space", results[n])
        for n, r in results.items():
            if r.rc == 0:
                self.assertIn(n, made)
        self.assertEqual(self.leftovers(), [])
        self.assertEqual([i["name"] for i in self.vm("image", "list", "--json").json()], ["golden"])

    def test_pool_full_during_provisioning(self):
        """vm-create --image on a pool without room for the root's copy fails naming the space, and leaves no root
        volume and no definition; with room again, the same request provisions."""
        pool = os.path.join(self.workdir, "pool")
        mount_tmpfs(self, pool, 32)
        self.start(pool_dir=pool)
        image, sha = self.raw_image("golden", size="16M", data_mib=8)
        self.vm("image", "import", "golden", "file://" + image, "--sha256", sha)
        filler = fill(pool, leave_bytes=2 * MIB)
        argv = ["create", "web1", "--image", "golden", "--root-size", "32M", "--hostname", "web1"]
        r = self.vm(*argv, expect=1)
        print(f"pool full when provisioning: {r.err.strip()}")
        self.assertRegex(r.err, r"(?i)space")
        self.assertNotIn("web1", self.domains())
        self.assertEqual([v["name"] for v in self.vm("volume", "list", "--json").json()], ["golden"])
        self.assertEqual(self.leftovers(), [])
        os.unlink(filler)
        self.vm(*argv)
        self.assertIn("web1", self.domains())

    def test_state_dir_full(self):
        """With the state directory's file system full, changes fail with a clear error and store nothing (SQLite
        may still fit a few into pages it holds already); the store still reads, and once there is room again (and
        after a restart) exactly what succeeded is there."""
        state = os.path.join(self.workdir, "state")
        mount_tmpfs(self, state, 8)
        self.start(state_dir=state)
        self.vm("create", "web0", "--memory", "128M", "--vcpus", "1", "--define-only")
        filler = fill(state)
        made, refused = ["web0"], None
        for i in range(1, 200):
            r = self.vm("create", f"web{i}", "--memory", "128M", "--vcpus", "1", "--define-only", expect=None)
            if r.rc != 0:
                refused = (f"web{i}", r)
                break
            made.append(f"web{i}")
        self.assertIsNotNone(refused, "200 definitions fit in a full file system")
        name, r = refused
        print(f"state directory full after {len(made) - 1} more definitions: {r.err.strip()}")
        self.assertRegex(r.err, r"(?i)free space in the state directory|disk is full|no space", r)
        self.assertEqual(sorted(self.domains()), sorted(made))  # the store reads; the refused one is not there
        os.unlink(filler)
        self.vm("create", name, "--memory", "128M", "--vcpus", "1", "--define-only")
        made.append(name)
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        self.daemon.start()
        self.assertEqual(sorted(self.domains()), sorted(made))

if __name__ == "__main__":
    unittest.main()
