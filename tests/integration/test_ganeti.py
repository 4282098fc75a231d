"""The Ganeti hooks (ganeti/extstorage/xenctl, ganeti/os/xenctl) run as Ganeti
runs them: as root, in the provider's directory, with a clean environment
holding only PATH and Ganeti's variables (VOL_NAME, VOL_SIZE, EXTP_*,
INSTANCE_NAME, NIC_n_*, OSP_* ...), against the real xenctld (test
hypervisor, a dir pool) driven through the real vmm. The configuration file
the hooks read names xenctld's socket and vmm. No Ganeti is needed: the test
is Ganeti's side of the interface."""

import os
import stat
import subprocess

from harness import VMM_DIR, Daemon, DaemonTestCase
from test_provision import sha256_of, write

MiB = 1 << 20
HOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ganeti")
# What Ganeti puts in a hook's environment besides its own variables (HOOKS_PATH).
GANETI_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"
VOL = "4b1c0d6e-2f8a-4c1e-9d3b-5a7f0e1c2d3b.ext.disk0"


class GanetiHooksTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("the ExtStorage attach binds loop devices: needs root, as Ganeti's node daemon is")
        self.pool_dir = os.path.join(self.workdir, "pool")
        config = os.path.join(self.workdir, "xenctld.toml")
        write(config, f'[[pool]]\nname = "main"\npath = "{self.pool_dir}"\n')
        self.daemon = Daemon(self.workdir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.state = os.path.join(self.workdir, "ganeti-state")
        self.conf = os.path.join(self.workdir, "ganeti.conf")
        write(self.conf, f'XENCTL_CONNECT={self.daemon.address}\nVMM={VMM_DIR}/vmm\n'
                         f'XENCTL_GANETI_STATE={self.state}\n')
        root = os.path.join(self.workdir, "rootfs")
        write(os.path.join(root, "etc/hostname"), "golden\n")
        write(os.path.join(root, "etc/hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n")
        write(os.path.join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        write(os.path.join(root, "etc/group"), "root:x:0:\n")
        write(os.path.join(root, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n", 0o444)
        write(os.path.join(root, "etc/network/interfaces"), "auto lo\niface lo inet loopback\n")
        os.makedirs(os.path.join(root, "etc/network/interfaces.d"))
        os.makedirs(os.path.join(root, "root"), mode=0o700)
        image = os.path.join(self.workdir, "golden.img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", root, image, "16M"], check=True, capture_output=True)
        self.vm("image", "import", "golden", "file://" + image, "--sha256", sha256_of(image))
        self.addCleanup(self.detach_all)

    def detach_all(self):
        for v in self.vm("volume", "list", "--json").json():
            if v.get("host_device"):
                self.vm("volume", "detach", v["name"])

    def hook(self, kind, script, env, expect=0, stdin=None):
        """Runs ganeti/KIND/xenctl/SCRIPT as Ganeti does (cwd the provider, clean environment)."""
        provider = os.path.join(HOOKS, kind, "xenctl")
        full = {"PATH": GANETI_PATH, "XENCTL_GANETI_CONF": self.conf, **env}
        proc = subprocess.run([os.path.join(provider, script)], cwd=provider, env=full, input=stdin,
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, expect,
                         f"{kind}/{script} {env}\n--- stdout\n{proc.stdout!r}\n--- stderr\n{proc.stderr.decode()}\n"
                         f"--- xenctld log\n{self.daemon.log()}")
        return proc.stdout.decode(), proc.stderr.decode()

    def volumes(self):
        return {v["name"]: v for v in self.vm("volume", "list", "--json").json()}

    def debugfs_cat(self, device, path):
        return subprocess.run(["debugfs", "-R", f"cat {path}", device], capture_output=True, check=True).stdout

    def test_provider_files_are_what_ganeti_checks(self):
        """Both directories hold the files Ganeti requires, executable, and parameters.list names image and pool."""
        for kind, files in (("extstorage", ["create", "attach", "detach", "remove", "grow", "setinfo", "verify",
                                            "snapshot"]),
                            ("os", ["create", "import", "export", "rename", "verify"])):
            for f in files:
                mode = os.stat(os.path.join(HOOKS, kind, "xenctl", f)).st_mode
                self.assertTrue(stat.S_ISREG(mode) and mode & stat.S_IXUSR, f"{kind}/{f}")
        with open(os.path.join(HOOKS, "extstorage/xenctl/parameters.list"), encoding="utf-8") as f:
            self.assertEqual([line.split()[0] for line in f], ["image", "pool"])
        with open(os.path.join(HOOKS, "os/xenctl/ganeti_api_version"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "20\n")
        self.assertEqual(os.readlink(os.path.join(HOOKS, "os/xenctl/variants.list")),
                         "/var/lib/xenctl/ganeti/variants.list")

    def test_an_instance_disk_from_create_to_remove(self):
        """create clones the image and grows it, attach prints a block device (twice the same), the OS create
        personalizes it, grow grows volume, device and file system, snapshot/setinfo/detach/remove do their part."""
        es = {"VOL_NAME": VOL, "EXTP_IMAGE": "golden"}
        self.hook("extstorage", "create", {**es, "VOL_SIZE": "32"})
        v = self.volumes()[VOL]
        self.assertEqual((v["origin"], v["size_bytes"]), ("golden", str(32 * MiB)))

        out, _ = self.hook("extstorage", "attach", es)
        device = out.strip()
        self.assertTrue(stat.S_ISBLK(os.stat(device).st_mode), device)
        self.assertEqual(self.hook("extstorage", "attach", es)[0].strip(), device)  # idempotent
        self.assertEqual(self.volumes()[VOL]["host_device"], device)
        size = subprocess.run(["blockdev", "--getsize64", device], capture_output=True, text=True, check=True)
        self.assertEqual(int(size.stdout), 32 * MiB)

        # The OS create, as `gnt-instance add -o xenctl+golden` runs it.
        key = os.path.join(self.workdir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@it", "-f", key], check=True,
                       capture_output=True)
        with open(key + ".pub", encoding="utf-8") as f:
            pub = f.read().strip()
        os_env = {"OS_API_VERSION": "20", "OS_NAME": "xenctl", "OS_VARIANT": "golden", "INSTANCE_OS": "xenctl+golden",
                  "INSTANCE_NAME": "web1.example.org", "INSTANCE_UUID": "0f6c3a52-1111-4a2b-9c3d-222233334444",
                  "HYPERVISOR": "xen-pvm", "DISK_COUNT": "1", "DISK_0_PATH": device, "DISK_0_ACCESS": "rw",
                  "NIC_COUNT": "1", "NIC_0_MAC": "aa:00:00:12:34:56", "NIC_0_IP": "192.0.2.10",
                  "NIC_0_MODE": "bridged", "NIC_0_BRIDGE": "xenbr0", "OSP_SSH_KEY": pub, "OSP_GATEWAY": "192.0.2.1",
                  "OSP_DNS": "192.0.2.53"}
        self.hook("os", "create", os_env)
        self.assertEqual(self.debugfs_cat(device, "/etc/hostname"), b"web1.example.org\n")
        self.assertIn(b"127.0.1.1\tweb1.example.org web1", self.debugfs_cat(device, "/etc/hosts"))
        self.assertEqual(self.debugfs_cat(device, "/etc/machine-id"), b"")
        self.assertIn(pub.encode(), self.debugfs_cat(device, "/root/.ssh/authorized_keys"))
        net = self.debugfs_cat(device, "/etc/network/interfaces.d/xenctl-aa0000123456")
        self.assertIn(b"192.0.2.10/24", net)
        self.assertIn(b"192.0.2.1", net)
        # The file behind the loop device says the same: one content, read two ways.
        self.assertEqual(self.debugfs_cat(v["path"], "/etc/hostname"), b"web1.example.org\n")

        # gnt-instance rename: the new name, the same identity.
        self.hook("os", "rename", {**os_env, "INSTANCE_NAME": "web2.example.org",
                                   "OLD_INSTANCE_NAME": "web1.example.org"})
        self.assertEqual(self.debugfs_cat(device, "/etc/hostname"), b"web2.example.org\n")

        # gnt-instance grow-disk: the volume, its loop device and its file system.
        self.hook("extstorage", "grow", {**es, "VOL_SIZE": "32", "VOL_NEW_SIZE": "64"})
        self.assertEqual(self.volumes()[VOL]["size_bytes"], str(64 * MiB))
        size = subprocess.run(["blockdev", "--getsize64", device], capture_output=True, text=True, check=True)
        self.assertEqual(int(size.stdout), 64 * MiB)
        fs = subprocess.run(["dumpe2fs", "-h", device], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in fs.splitlines() if ":" in line)
        self.assertEqual(int(fields["Block count"]) * int(fields["Block size"]), 64 * MiB)

        # gnt-backup export: a snapshot Ganeti attaches, reads and removes by its own name.
        snap = VOL + ".snap"
        self.hook("extstorage", "snapshot", {**es, "VOL_SNAPSHOT_NAME": snap, "VOL_SNAPSHOT_SIZE": "64"})
        self.assertEqual(self.volumes()[snap]["origin"], VOL)
        snap_dev = self.hook("extstorage", "attach", {**es, "VOL_NAME": snap})[0].strip()
        size_r, size_w = os.pipe()
        exported = subprocess.run([os.path.join(HOOKS, "os/xenctl/export")], cwd=os.path.join(HOOKS, "os/xenctl"),
                                  env={"PATH": GANETI_PATH, "XENCTL_GANETI_CONF": self.conf, **os_env,
                                       "EXPORT_INDEX": "0", "EXPORT_DEVICE": snap_dev, "EXP_SIZE_FD": str(size_w)},
                                  pass_fds=(size_w,), capture_output=True, check=True).stdout
        os.close(size_w)
        with os.fdopen(size_r) as f:
            self.assertEqual(f.read().strip(), str(64 * MiB))  # the size Ganeti reads before the dump
        self.assertEqual(len(exported), 64 * MiB)
        self.hook("extstorage", "remove", {**es, "VOL_NAME": snap})
        self.assertNotIn(snap, self.volumes())

        # gnt-backup import: the dump onto a blank disk.
        blank = {"VOL_NAME": VOL.replace("disk0", "disk1")}
        self.hook("extstorage", "create", {**blank, "VOL_SIZE": "64"})
        self.assertEqual(self.volumes()[blank["VOL_NAME"]]["origin"], "")
        blank_dev = self.hook("extstorage", "attach", blank)[0].strip()
        self.hook("os", "import", {**os_env, "IMPORT_INDEX": "0", "IMPORT_DEVICE": blank_dev}, stdin=exported)
        self.assertEqual(self.debugfs_cat(blank_dev, "/etc/hostname"), b"web2.example.org\n")
        self.hook("extstorage", "remove", blank)

        self.hook("extstorage", "setinfo", {**es, "VOL_METADATA": "originstname+web2.example.org"})
        with open(os.path.join(self.state, "metadata", VOL), encoding="utf-8") as f:
            self.assertEqual(f.read(), "originstname+web2.example.org\n")

        self.hook("extstorage", "detach", es)
        self.assertEqual(self.volumes()[VOL]["host_device"], "")
        self.assertFalse(any(line.endswith(v["path"]) or v["path"] in line
                             for line in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
                             .splitlines()))
        self.hook("extstorage", "detach", es)  # idempotent
        self.hook("extstorage", "remove", es)
        self.assertNotIn(VOL, self.volumes())
        self.hook("extstorage", "remove", es)  # a removal retried finds nothing to do

    def test_failures_carry_the_daemons_message(self):
        """A hook that fails exits non-zero with xenctld's message on stderr, for Ganeti's job log."""
        es = {"VOL_NAME": VOL, "EXTP_IMAGE": "nosuch", "VOL_SIZE": "32"}
        _, err = self.hook("extstorage", "create", es, expect=1)
        self.assertIn("image 'nosuch' is not in xenctld's catalog (images: golden)", err)
        _, err = self.hook("extstorage", "create", {**es, "EXTP_IMAGE": "golden", "VOL_SIZE": "8"}, expect=1)
        self.assertIn("below the size of image 'golden'", err)
        self.assertEqual(sorted(self.volumes()), ["golden"])
        _, err = self.hook("extstorage", "attach", {"VOL_NAME": VOL}, expect=3)
        self.assertIn(VOL, err)
        _, err = self.hook("extstorage", "verify", {"VOL_NAME": VOL, "EXTP_POOL": "other"}, expect=1)
        self.assertIn("pool 'other' is not configured", err)
        self.hook("extstorage", "verify", {"VOL_NAME": VOL, "EXTP_IMAGE": "golden", "EXTP_POOL": "main"})
        # The OS create on a disk xenctld does not know, and on a blank one.
        _, err = self.hook("os", "create", {"INSTANCE_NAME": "web1", "DISK_COUNT": "1", "DISK_0_PATH": "/dev/null"},
                           expect=1)
        self.assertIn("is not a xenctld volume on this node", err)
        self.hook("extstorage", "create", {"VOL_NAME": VOL, "VOL_SIZE": "16"})
        device = self.hook("extstorage", "attach", {"VOL_NAME": VOL})[0].strip()
        _, err = self.hook("os", "create", {"INSTANCE_NAME": "web1", "DISK_COUNT": "1", "DISK_0_PATH": device,
                                            "OS_VARIANT": "golden"}, expect=1)
        self.assertIn("is blank: it was not cloned from an image", err)
        # A hook run without Ganeti's variables says so.
        _, err = self.hook("extstorage", "create", {}, expect=1)
        self.assertIn("VOL_NAME is not set", err)
        # An unreachable xenctld: vmm's exit code 4 and its message.
        write(self.conf, "XENCTL_CONNECT=unix:/nonexistent/xenctld.sock\nVMM=" + VMM_DIR + "/vmm\n")
        _, err = self.hook("extstorage", "attach", {"VOL_NAME": VOL}, expect=4)
        self.assertIn("/nonexistent/xenctld.sock", err)

    def test_os_verify_and_variants(self):
        """update-variants lists the catalog's images; verify checks the variant and the OS parameters."""
        out, _ = self.hook("os", "update-variants", {})
        self.assertEqual(out, "golden\n")
        with open(os.path.join(self.state, "variants.list"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "golden\n")
        self.hook("os", "verify", {"OS_VARIANT": "golden", "OSP_NIC_PREFIX": "16", "OSP_KEEP_IDENTITY": "yes"})
        _, err = self.hook("os", "verify", {"OS_VARIANT": "nosuch"}, expect=1)
        self.assertIn("image 'nosuch' is not in xenctld's catalog", err)
        _, err = self.hook("os", "verify", {"OSP_NIC_PREFIX": "abc"}, expect=1)
        self.assertIn("nic_prefix 'abc' is not a prefix length", err)
        _, err = self.hook("os", "verify", {"OSP_SSH_KEY": "not a key"}, expect=1)
        self.assertIn("ssh_key holds no OpenSSH public key", err)


if __name__ == "__main__":
    import unittest

    unittest.main()
