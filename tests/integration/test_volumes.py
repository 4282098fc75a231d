"""vm-volume against the real xenctld with a dir pool in a temporary directory:
the volumes' files are compared byte for byte."""

import filecmp
import os
import subprocess
import time

from harness import VMM_DIR, DaemonTestCase, Daemon

MIB = 1 << 20
VOLUME_KEYS = {"pool", "name", "size_bytes", "used_bytes", "origin", "read_only", "snapshots", "used_by", "path",
               "created_at", "host_device", "host_device_domids"}


def write_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


class VolumeTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        self.pool_dir = os.path.join(self.workdir, "pools", "main")
        config = os.path.join(self.workdir, "xenctld.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'[[pool]]\nname = "main"\ndriver = "dir"\npath = "{self.pool_dir}"\n'
                    f'[[pool]]\nname = "second"\npath = "{self.workdir}/pools/second"\n')
        self.daemon = Daemon(self.workdir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)

    def volumes(self, *args):
        listed = self.vm("volume", "list", "--json", *args).json()
        self.assertIsInstance(listed, list)
        return {v["name"]: v for v in listed}

    def test_clone_snapshot_rollback_resize_delete(self):
        """The whole life of a root volume, checked on the files themselves."""
        base = self.vm("volume", "create", "base", "64M", "--json").json()
        self.assertEqual(set(base), VOLUME_KEYS)
        self.assertEqual((base["pool"], base["size_bytes"], base["origin"]), ("main", str(64 * MIB), ""))
        self.assertEqual(base["path"], os.path.join(self.pool_dir, "base.img"))
        write_at(base["path"], 0, b"golden" * 1000)
        write_at(base["path"], 40 * MIB, b"tail" * 100)
        golden = read_all(base["path"])

        web1 = self.vm("volume", "clone", "base", "web1", "--json").json()
        self.assertEqual((web1["origin"], web1["size_bytes"], web1["read_only"]), ("base", str(64 * MIB), False))
        self.assertTrue(filecmp.cmp(base["path"], web1["path"], shallow=False))

        # Writes to the clone stay in the clone.
        write_at(web1["path"], 4096, b"changed by web1")
        self.assertEqual(read_all(base["path"]), golden)

        snap = self.vm("volume", "snapshot", "web1", "s1", "--json").json()
        self.assertEqual((snap["name"], snap["origin"], snap["read_only"]), ("web1@s1", "web1", True))
        at_snapshot = read_all(web1["path"])
        write_at(web1["path"], 0, b"broken" * 100)
        self.assertNotEqual(read_all(web1["path"]), at_snapshot)
        self.vm("volume", "rollback", "web1", "s1")
        self.assertEqual(read_all(web1["path"]), at_snapshot)
        self.assertEqual(self.volumes()["web1"]["snapshots"], ["s1"])

        grown = self.vm("volume", "resize", "web1", "1G", "--json").json()
        self.assertEqual(grown["size_bytes"], str(1 << 30))
        self.assertEqual(os.path.getsize(web1["path"]), 1 << 30)
        self.assertEqual(read_all(web1["path"])[:len(at_snapshot)], at_snapshot)

        # Clones of clones, and a clone grown at birth.
        leaf = self.vm("volume", "clone", "web1", "leaf", "--size", "2G", "--json").json()
        self.assertEqual((leaf["origin"], leaf["size_bytes"]), ("web1", str(2 << 30)))

        # The table for people.
        table = self.vm("volume", "list").out.splitlines()
        self.assertEqual(table[0].split(), ["Pool", "Name", "Size", "Used", "Origin", "RO", "Snapshots", "Domain"])
        self.assertEqual([line.split()[1] for line in table[1:]], ["base", "leaf", "web1", "web1@s1"])

        # Deletion in dependency order; each refusal names what holds it.
        refused = self.vm("volume", "delete", "base", expect=1)
        self.assertIn("web1", refused.err)
        refused = self.vm("volume", "delete", "web1", expect=1)
        self.assertIn("s1", refused.err)
        for name in ["web1@s1", "leaf", "web1", "base"]:
            out = self.vm("volume", "delete", name).out
            self.assertEqual(out, f"deleted volume 'main/{name}'\n")
        self.assertEqual(self.volumes(), {})
        self.assertEqual(sorted(os.listdir(self.pool_dir)), [".meta", ".tmp"])

    def test_refusals_and_codes(self):
        """Bad names and sizes are usage errors (2), missing objects 3, wrong state 1; nothing is left behind."""
        self.vm("volume", "create", "base", "16M")
        self.assertIn("invalid volume name", self.vm("volume", "create", "Bad/Name", "16M", expect=2).err)
        self.vm("volume", "create", "tiny", "0", expect=2)
        self.vm("volume", "create", "base", "16M", expect=1)  # ALREADY_EXISTS
        self.assertIn("main/nope", self.vm("volume", "clone", "nope", "web1", expect=3).err)
        self.vm("volume", "clone", "base", "small", "--size", "8M", expect=2)
        self.vm("volume", "resize", "base", "8M", expect=2)
        self.vm("volume", "rollback", "base", "none", expect=3)
        self.vm("volume", "delete", "nope", expect=3)
        self.assertIn("pool 'nope' not found", self.vm("volume", "list", "--pool", "nope", expect=3).err)
        self.vm("volume", "create", "raw", "16M", "--label", "x", expect=2)
        self.vm("volume", "create", "fs", "16M", "--ext4", "--label", "x" * 17, expect=2)
        self.assertEqual(sorted(self.volumes()), ["base"])

    def test_ext4_volume_made_and_grown(self):
        """--ext4 makes a labelled ext4; resize grows the file system with the volume (read from the superblock)."""
        v = self.vm("volume", "create", "root", "32M", "--ext4", "--label", "rootfs", "--json").json()
        sb = read_all(v["path"])[1024:2048]
        self.assertEqual(sb[56:58], b"\x53\xef")
        self.assertEqual(sb[120:136].rstrip(b"\0"), b"rootfs")

        def fs_bytes():
            sb = read_all(v["path"])[1024:2048]
            return int.from_bytes(sb[4:8], "little") * (1024 << int.from_bytes(sb[24:28], "little"))

        self.assertEqual(fs_bytes(), 32 * MIB)
        self.vm("volume", "resize", "root", "96M")
        self.assertEqual(fs_bytes(), 96 * MIB)

    def test_pools_and_pool_selection(self):
        """Pools come from [[pool]]; the first is the default, --pool picks another."""
        pools = self.vm("volume", "pools", "--json").json()
        self.assertEqual([(p["name"], p["driver"]) for p in pools], [("main", "dir"), ("second", "dir")])
        self.assertGreater(int(pools[0]["size_bytes"]), 0)
        # The same pools in `vmm host` (used bytes move with whatever else writes to this file system).
        host_pools = self.vmm("host", "--json").json()["pools"]
        self.assertEqual([(p["name"], p["driver"], p["size_bytes"]) for p in host_pools],
                         [(p["name"], p["driver"], p["size_bytes"]) for p in pools])
        v = self.vm("volume", "create", "data", "16M", "--pool", "second", "--json").json()
        self.assertEqual(v["pool"], "second")
        self.assertEqual(list(self.volumes("--pool", "second")), ["data"])
        self.assertEqual(list(self.volumes("--pool", "main")), [])
        self.assertEqual(list(self.volumes()), ["data"])

    def test_request_id_and_operations(self):
        """A retry with the same request id gets the same operation; changes show in `vmm ops`."""
        first = self.vm("volume", "create", "base", "16M", "--request-id", "vol-1", "--no-wait").out.strip()
        again = self.vm("volume", "create", "base", "16M", "--request-id", "vol-1", "--no-wait").out.strip()
        self.assertEqual(first, again)
        self.vmm("watch", first)
        ops = self.vmm("ops", "--all", "--json").json()
        self.assertEqual([(o["kind"], o["target"], o["state"]) for o in ops],
                         [("create-volume", "main/base", "OPERATION_STATE_SUCCEEDED")])

    def test_volume_of_running_domain_is_kept(self):
        """A running domain's vol: disk can be neither deleted, rolled back nor resized; once it is stopped, it can."""
        self.vm("volume", "create", "root1", "16M")
        self.vm("volume", "snapshot", "root1", "s1")
        self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/root1,xvda,w")
        self.assertIn("'web1'", self.vm("volume", "delete", "root1", expect=1).err)
        self.assertIn("'web1'", self.vm("volume", "rollback", "root1", "s1", expect=1).err)
        self.assertIn("'web1'", self.vm("volume", "resize", "root1", "32M", expect=1).err)
        used = {v["name"]: v["used_by"] for v in self.vm("volume", "list", "--json").json()}
        self.assertEqual(used, {"root1": "web1", "root1@s1": ""})
        self.vm("destroy", "web1")
        self.assertEqual(self.vm("volume", "list", "--json").json()[0]["used_by"], "")
        self.vm("volume", "rollback", "root1", "s1")
        self.vm("volume", "delete", "root1@s1")
        self.vm("volume", "delete", "root1")

    def console_lines(self, name, count):
        """The first `count` lines the test hypervisor's console of `name` prints (its banner, then its disks)."""
        proc = subprocess.Popen([os.path.join(VMM_DIR, "vm-console"), "--read-only", name], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        seen = b""
        deadline = time.monotonic() + 20
        os.set_blocking(proc.stdout.fileno(), False)
        try:
            while seen.count(b"\r\n") < count and time.monotonic() < deadline:
                chunk = proc.stdout.read()
                if chunk:
                    seen += chunk
                else:
                    time.sleep(0.05)
        finally:
            proc.kill()
            proc.communicate()
        return seen.decode().split("\r\n")[:count]

    def test_domain_on_a_volume(self):
        """A domain's vol: disk reaches the hypervisor as the volume's path; --delete-volumes deletes the volume."""
        root = self.vm("volume", "create", "root1", "16M", "--json").json()
        self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/root1,xvda,w",
                "--disk", "/srv/shared.iso,xvdb,r")
        self.assertEqual(self.console_lines("web1", 3),
                         ["xenctl test hypervisor: console of domain 'web1' (domid 1)",
                          f"disk xvda: {root['path']} (w)", "disk xvdb: /srv/shared.iso (r)"])
        info = self.vm("info", "web1", "--json").json()
        self.assertEqual(info["spec"]["disks"][0]["target"], "vol:main/root1")  # the definition keeps the volume's name
        r = self.vm("volume", "delete", "root1", expect=1)
        self.assertIn("running domain 'web1' uses it", r.err)
        self.assertIn("root1", self.volumes())

        self.vm("delete", "web1", "--force", "--delete-volumes")
        self.assertEqual(self.vm("list", "--json").json(), [])
        self.assertNotIn("root1", self.volumes())
        self.assertFalse(os.path.exists(root["path"]))

    def test_volume_disk_refusals(self):
        """Missing, read-only and busy volumes are refused by name; --delete-volumes is refused whole, up front."""
        r = self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/nope", expect=1)
        self.assertIn("vm-create: domain 'web1': disk xvda (vol:main/nope): pool 'main' has no volume 'nope'", r.err)
        self.assertIn("`vm-volume list --pool main`", r.err)
        r = self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:gone/x", expect=1)
        self.assertIn("pool 'gone' not found; configured pools: main, second", r.err)
        self.assertEqual(self.vm("list", "--json").json(), [])

        self.vm("volume", "create", "root1", "16M")
        self.vm("volume", "snapshot", "root1", "s1")
        r = self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/root1@s1,xvda,w",
                    expect=1)
        self.assertIn("the volume is read-only", r.err)
        self.vm("create", "web1", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/root1,xvda,w")
        r = self.vm("create", "web2", "--memory", "256", "--vcpus", "1", "--disk", "vol:main/root1,xvda,r",
                    expect=1)
        self.assertIn("domain 'web2': disk xvda (vol:main/root1): domain 'web1' uses it (mode w)", r.err)

        r = self.vm("delete", "web1", "--force", "--delete-volumes", expect=1)
        self.assertIn("the volume has snapshots s1", r.err)
        self.assertIn("nothing was deleted", r.err)
        self.assertEqual([(d["spec"]["name"], d["state"]) for d in self.vm("list", "--json").json()],
                         [("web1", "DOMAIN_STATE_RUNNING")])
        self.assertEqual(sorted(self.volumes()), ["root1", "root1@s1"])

    def test_volumes_survive_a_restart(self):
        """Origin, read-only and creation time live with the pool, not in the daemon's memory."""
        self.vm("volume", "create", "base", "16M")
        self.vm("volume", "clone", "base", "web1")
        self.vm("volume", "snapshot", "web1", "s1")
        before = self.volumes()
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        self.assertEqual(self.volumes(), before)


class DefaultPoolTest(DaemonTestCase):
    def test_default_pool_under_state_dir(self):
        """Without [[pool]], one dir pool "default" lives at STATE_DIR/volumes."""
        pools = self.vm("volume", "pools", "--json").json()
        self.assertEqual([(p["name"], p["driver"]) for p in pools], [("default", "dir")])
        v = self.vm("volume", "create", "base", "16M", "--json").json()
        self.assertEqual(v["path"], os.path.join(self.daemon.state_dir, "volumes", "base.img"))
