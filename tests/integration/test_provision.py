"""One-call provisioning through the real vm-create against the real xenctld
(test hypervisor, a dir pool "main"): a tiny golden image made here with
`mkfs.ext4 -d` is imported from file://, then `vm-create NAME --image ...`
clones, grows, customizes, defines and starts in one operation. The root
volume's files are read back offline with debugfs."""

import hashlib
import os
import subprocess

from harness import Daemon, DaemonTestCase

MiB = 1 << 20


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


class ProvisionTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        self.pool_dir = os.path.join(self.workdir, "pool")
        config = os.path.join(self.workdir, "xenctld.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'[[pool]]\nname = "main"\npath = "{self.pool_dir}"\n')
        self.daemon = Daemon(self.workdir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        # A root tree as small as a Debian one is laid out.
        root = os.path.join(self.workdir, "rootfs")
        write(os.path.join(root, "etc/hostname"), "golden\n")
        write(os.path.join(root, "etc/hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n")
        write(os.path.join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        write(os.path.join(root, "etc/group"), "root:x:0:\n")
        write(os.path.join(root, "etc/shadow"), "root:*:19000:0:99999:7:::\n", 0o640)
        write(os.path.join(root, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n", 0o444)
        write(os.path.join(root, "etc/network/interfaces"), "auto lo\niface lo inet loopback\n")
        os.makedirs(os.path.join(root, "etc/network/interfaces.d"))
        os.makedirs(os.path.join(root, "etc/ssh"))
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "golden", "-f",
                        os.path.join(root, "etc/ssh/ssh_host_ed25519_key")], check=True, capture_output=True)
        with open(os.path.join(root, "etc/ssh/ssh_host_ed25519_key.pub"), encoding="utf-8") as f:
            self.golden_host_key = f.read()
        os.makedirs(os.path.join(root, "root"), mode=0o700)
        image = os.path.join(self.workdir, "golden.img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", root, image, "16M"], check=True, capture_output=True)
        self.vm("image", "import", "golden", "file://" + image, "--sha256", sha256_of(image))

    def volume_file(self, name):
        return os.path.join(self.pool_dir, name + ".img")

    def debugfs_cat(self, volume, path):
        return subprocess.run(["debugfs", "-R", f"cat {path}", self.volume_file(volume)], capture_output=True,
                              check=True).stdout

    def volumes(self):
        return {v["name"]: v for v in self.vm("volume", "list", "--json").json()}

    def test_provisions_from_the_cached_image_in_one_operation(self):
        """vm-create --image clones and grows the root, defines it as the first disk and starts the domain, in one operation."""
        self.vm("create", "web1", "--image", "golden", "--root-size", "64M", "--keep-identity", "--memory", "256M")
        d = self.domains()["web1"]
        self.assertEqual(d["state"], "DOMAIN_STATE_RUNNING")
        self.assertEqual(d["spec"]["memory_mib"], "256")
        self.assertEqual(d["spec"]["disks"][0]["target"], "vol:main/web1-root")
        self.assertEqual((d["spec"]["disks"][0]["vdev"], d["spec"]["disks"][0]["mode"]), ("xvda", "w"))
        vols = self.volumes()
        self.assertEqual(vols["web1-root"]["origin"], "golden")
        self.assertEqual(vols["web1-root"]["size_bytes"], str(64 * MiB))
        self.assertEqual(vols["web1-root"]["used_by"], "web1")
        # The file system grew with the volume, and the image's files are there.
        stats = subprocess.run(["dumpe2fs", "-h", self.volume_file("web1-root")], capture_output=True, text=True,
                               check=True).stdout
        fields = dict(line.split(":", 1) for line in stats.splitlines() if ":" in line)
        self.assertEqual(int(fields["Block count"]) * int(fields["Block size"]), 64 * MiB)
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/hostname"), b"golden\n")
        ops = [o for o in self.vmm("ops", "--all", "--json").json() if o["kind"] == "create-domain"]
        self.assertEqual(len(ops), 1, ops)
        self.assertEqual((ops[0]["state"], ops[0]["target"], ops[0]["phase"]), ("OPERATION_STATE_SUCCEEDED", "web1", "start"))
        # --define-only stops after the definition.
        self.vm("create", "web2", "--image", "golden", "--keep-identity", "--define-only")
        self.assertEqual(self.domains()["web2"]["state"], "DOMAIN_STATE_STOPPED")
        self.assertIn("web2-root", self.volumes())

    def test_customizes_the_clone_offline(self):
        """--hostname, --ssh-key, --file, --ip/--gateway/--dns and a new identity land in the root; the file system stays clean."""
        key = os.path.join(self.workdir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "admin@it", "-f", key], check=True,
                       capture_output=True)
        write(os.path.join(self.workdir, "motd.txt"), "Welcome to web1\n")
        self.vm("create", "web1", "--image", "golden", "--root-size", "32M", "--hostname", "web1", "--ssh-key",
                key + ".pub", "--file", "/etc/motd=@" + os.path.join(self.workdir, "motd.txt"), "--file",
                "/etc/issue=hello", "--ip", "10.0.0.5/24", "--gateway", "10.0.0.1", "--dns", "10.0.0.53")
        d = self.domains()["web1"]
        self.assertEqual(d["state"], "DOMAIN_STATE_RUNNING")
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/hostname"), b"web1\n")
        self.assertIn(b"127.0.1.1\tweb1", self.debugfs_cat("web1-root", "/etc/hosts"))
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/motd"), b"Welcome to web1\n")
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/issue"), b"hello")
        with open(key + ".pub", "rb") as f:
            self.assertIn(f.read().strip(), self.debugfs_cat("web1-root", "/root/.ssh/authorized_keys"))
        mac = d["spec"]["vifs"][0]["mac"]
        network = self.debugfs_cat("web1-root", "/etc/network/interfaces.d/xenctl-" + mac.replace(":", ""))
        self.assertIn(b"10.0.0.5", network)
        self.assertIn(b"10.0.0.1", network)
        # A new identity: machine-id reset, a fresh host key; the image keeps its own.
        self.assertNotIn(b"0123456789abcdef", self.debugfs_cat("web1-root", "/etc/machine-id"))
        web1_key = self.debugfs_cat("web1-root", "/etc/ssh/ssh_host_ed25519_key.pub").decode()
        self.assertNotEqual(web1_key.split()[1], self.golden_host_key.split()[1])
        self.assertEqual(self.debugfs_cat("golden", "/etc/hostname"), b"golden\n")
        self.vm("create", "web2", "--image", "golden", "--hostname", "web2")
        web2_key = self.debugfs_cat("web2-root", "/etc/ssh/ssh_host_ed25519_key.pub").decode()
        self.assertNotEqual(web1_key.split()[1], web2_key.split()[1])
        for volume in ("web1-root", "web2-root"):
            fsck = subprocess.run(["e2fsck", "-fn", self.volume_file(volume)], capture_output=True, text=True)
            self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)

    def test_a_failing_customization_leaves_nothing(self):
        """A customization the image cannot take (a group it lacks) fails the operation (exit 3) and removes the clone."""
        r = self.vm("create", "web1", "--image", "golden", "--user", "alice::wheel", expect=3)  # NOT_FOUND: no such group
        self.assertIn("provisioning domain 'web1': customize: ", r.err)
        self.assertIn("wheel", r.err)
        self.assertIn("undone: clone", r.err)
        self.assertEqual(list(self.volumes()), ["golden"])
        self.assertEqual(self.domains(), {})

    def test_a_failing_step_leaves_nothing(self):
        """A start the hypervisor refuses undoes the definition and the clone, and the error says so."""
        r = self.vm("create", "big", "--image", "golden", "--keep-identity", "--memory", "1T", expect=1)
        self.assertIn("provisioning domain 'big': start: creating domain 'big': ", r.err)
        self.assertIn("undone: clone", r.err)
        self.assertEqual(list(self.volumes()), ["golden"])
        self.assertEqual(self.domains(), {})
        self.assertEqual(sorted(f for f in os.listdir(self.pool_dir) if not f.startswith(".")), ["golden.img"])

    def test_secrets_stay_out_of_logs_and_operations(self):
        """Password hashes, user-data and keys given to a create appear neither in the daemon's log (audit
        included) nor in the operations, whether the create succeeds or fails."""
        key = os.path.join(self.workdir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "secret-key-comment-4711", "-f", key],
                       check=True, capture_output=True)
        with open(key + ".pub", encoding="utf-8") as f:
            public_key = f.read().split()[1]
        password_hash = "$6$saltsaltsalt$SECRETHASH4711abcdefghijklmnopqrstuvwxyz0123456789"
        user_data = os.path.join(self.workdir, "user-data")
        write(user_data, "#cloud-config\nsecret_token: USERDATA4711\n")
        self.vm("create", "web1", "--image", "golden", "--keep-identity", "--user", f"alice:{password_hash}",
                "--ssh-key", key + ".pub", "--user-data", user_data)
        # The same secrets in a create that fails while customizing (no such group).
        self.vm("create", "web2", "--image", "golden", "--keep-identity", "--user", f"bob:{password_hash}:nosuch",
                "--ssh-key", key + ".pub", "--user-data", user_data, expect=3)
        ops = self.vmm("ops", "--all", "--json").out
        log = self.daemon.log()
        self.assertIn("audit identity=uid:0 role=admin method=DomainService.CreateDomain target=web1", log)
        for secret in ("SECRETHASH4711", "USERDATA4711", public_key, "secret-key-comment-4711"):
            with self.subTest(secret=secret):
                self.assertNotIn(secret, log)
                self.assertNotIn(secret, ops)
        # They did reach the guest.
        self.assertIn(b"SECRETHASH4711", self.debugfs_cat("web1-root", "/etc/shadow"))

    def test_container_text_runs_on_the_new_root(self):
        """vm-create --container and vmm create FILE --image run a container file's statements on the new root, after the typed customizations, in the create's one operation."""
        write(os.path.join(self.workdir, "hosts.patch"),
              "--- a/etc/hosts\n+++ b/etc/hosts\n@@ -1,2 +1,3 @@\n 127.0.0.1\tlocalhost\n"
              " 127.0.1.1\tweb1\n+10.0.0.9\tdb\n")
        container = os.path.join(self.workdir, "web1.container")
        write(container, "[replace /etc/motd archive root\n  Welcome to web1\n] [end]\n"
                         f"[patch root {self.workdir}/hosts.patch][end]\n")
        self.vm("create", "web1", "--image", "golden", "--hostname", "web1", "--container", container)
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/motd"), b"  Welcome to web1\n")
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/hosts"), b"127.0.0.1\tlocalhost\n127.0.1.1\tweb1\n10.0.0.9\tdb\n")
        op = [o for o in self.vmm("ops", "--all", "--json").json() if o["target"] == "web1"]
        self.assertEqual(len(op), 1)
        # A container file given as vmm create's FILE: its xl config is the spec, its expressions change the root.
        full = os.path.join(self.workdir, "web2.cfg")
        write(full, "name = 'web2'\nmemory = 128\nvcpus = 1\n"
                    "[replace /etc/motd archive vol:main/web2-root\nWelcome to web2\n] [end]\n")
        self.vm("create", full, "--image", "golden", "--keep-identity")
        self.assertEqual(self.debugfs_cat("web2-root", "/etc/motd"), b"Welcome to web2\n")
        self.assertEqual(self.domains()["web2"]["spec"]["memory_mib"], "128")
        for volume in ("web1-root", "web2-root"):
            fsck = subprocess.run(["e2fsck", "-fn", self.volume_file(volume)], capture_output=True, text=True)
            self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)

    def test_a_bad_container_text_leaves_nothing(self):
        """A container text with an error is refused with its file, line and column; one whose patch does not apply undoes the clone."""
        container = os.path.join(self.workdir, "bad.container")
        write(container, "\n[replace /etc/motd archive /srv/other.img\nx\n] [end]\n")
        r = self.vm("create", "web1", "--image", "golden", "--container", container, expect=2)
        self.assertIn(f"{container}:2:1: [replace] changes '/srv/other.img'", r.err)
        write(container, "[replace /etc/motd archive root\nx\n] [end]\n[nosuch][end]\n")
        r = self.vm("create", "web1", "--image", "golden", "--container", container, expect=2)
        self.assertIn(f"{container}:4:2: unknown expression '[nosuch]'", r.err)
        write(os.path.join(self.workdir, "bad.patch"), "--- a/etc/hosts\n+++ b/etc/hosts\n@@ -1 +1 @@\n-nothere\n+x\n")
        write(container, f"[patch root {self.workdir}/bad.patch][end]\n")
        r = self.vm("create", "web1", "--image", "golden", "--container", container, expect=1)
        self.assertIn(f"customize: {container}:1:1: [patch]", r.err)
        self.assertIn("undone: clone", r.err)
        self.assertEqual(list(self.volumes()), ["golden"])
        self.assertEqual(self.domains(), {})

    def test_refusals(self):
        """Bad requests are refused at once, naming what to do, and change nothing."""
        r = self.vm("create", "web1", "--image", "https://images.example/golden.tar.zst", "--keep-identity", expect=2)
        self.assertIn("import it first (`vm-image import NAME https://images.example/golden.tar.zst`)", r.err)
        r = self.vm("create", "web1", "--image", "nosuch", "--keep-identity", expect=1)
        self.assertIn("root image 'nosuch' is not in the catalog", r.err)
        r = self.vm("create", "web1", "--memory", "256M", "--vcpus", "1", "--hostname", "web1", expect=2)
        self.assertIn("--hostname changes a root cloned from an image; give the image with --image", r.err)
        r = self.vm("create", "web1", "--image", "golden", "--gateway", "10.0.0.1", expect=2)
        self.assertIn("--gateway completes the static address --ip gives", r.err)
        r = self.vm("create", "web1", "--image", "golden", "--root-size", "8M", "--keep-identity", expect=2)
        self.assertIn("below the size of image 'golden'", r.err)
        self.vm("volume", "create", "web1-root", "1M")
        r = self.vm("create", "web1", "--image", "golden", "--keep-identity", expect=1)
        self.assertIn("its root volume 'main/web1-root' already exists", r.err)
        self.assertEqual(self.domains(), {})
        self.assertEqual(sorted(self.volumes()), ["golden", "web1-root"])


    def test_customize_volume_changes_an_existing_volume(self):
        """vm-volume customize writes the hostname, keys, an address and a new identity into a clone it did not make."""
        key = os.path.join(self.workdir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@it", "-f", key], check=True,
                       capture_output=True)
        self.vm("volume", "clone", "golden", "disk0", "--size", "32M")
        done = self.vm("volume", "customize", "disk0", "--hostname", "node7", "--ssh-key", key + ".pub", "--ip",
                       "10.0.0.7/24", "--mac", "00:16:3e:00:00:07", "--gateway", "10.0.0.1", "--dns", "10.0.0.53",
                       "--json").json()
        self.assertEqual((done["name"], done["origin"]), ("disk0", "golden"))
        self.assertEqual(self.debugfs_cat("disk0", "/etc/hostname"), b"node7\n")
        self.assertIn(b"127.0.1.1\tnode7", self.debugfs_cat("disk0", "/etc/hosts"))
        with open(key + ".pub", "rb") as f:
            self.assertIn(f.read().strip(), self.debugfs_cat("disk0", "/root/.ssh/authorized_keys"))
        network = self.debugfs_cat("disk0", "/etc/network/interfaces.d/xenctl-00163e000007")
        self.assertIn(b"10.0.0.7", network)
        self.assertIn(b"10.0.0.1", network)
        # The identity is reset: an empty machine-id (systemd makes a new one at boot), a new host key.
        self.assertEqual(self.debugfs_cat("disk0", "/etc/machine-id"), b"")
        key_now = self.debugfs_cat("disk0", "/etc/ssh/ssh_host_ed25519_key.pub").decode()
        self.assertNotEqual(key_now.split()[1], self.golden_host_key.split()[1])
        subprocess.run(["e2fsck", "-fn", self.volume_file("disk0")], check=True, capture_output=True)
        ops = [o for o in self.vmm("ops", "--all", "--json").json() if o["kind"] == "customize-volume"]
        self.assertEqual([(o["state"], o["target"]) for o in ops], [("OPERATION_STATE_SUCCEEDED", "main/disk0")])
        # --keep-identity with a hostname leaves the machine-id as it is.
        self.vm("volume", "clone", "golden", "disk1")
        self.vm("volume", "customize", "disk1", "--hostname", "node8", "--keep-identity")
        self.assertEqual(self.debugfs_cat("disk1", "/etc/hostname"), b"node8\n")
        self.assertIn(b"0123456789abcdef", self.debugfs_cat("disk1", "/etc/machine-id"))

    def test_customize_volume_refusals(self):
        """CustomizeVolume refuses a volume a running domain uses (naming it), a golden volume and an empty request."""
        self.vm("create", "web1", "--image", "golden", "--keep-identity")
        r = self.vm("volume", "customize", "web1-root", "--hostname", "other", expect=1)
        self.assertIn("running domain 'web1' uses it; shut the domain down first", r.err)
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/hostname"), b"golden\n")
        r = self.vm("volume", "customize", "golden", "--hostname", "other", expect=1)
        self.assertIn("volume 'main/golden': it is the base volume of image 'golden'", r.err)
        self.assertEqual(self.debugfs_cat("golden", "/etc/hostname"), b"golden\n")
        self.vm("volume", "clone", "golden", "disk0")
        r = self.vm("volume", "customize", "disk0", "--keep-identity", expect=2)
        self.assertIn("nothing to change", r.err)
        r = self.vm("volume", "customize", "disk0", "--ip", "10.0.0.7/24", expect=2)
        self.assertIn("give one --mac per --ip", r.err)
        r = self.vm("volume", "customize", "nosuch", "--hostname", "x", expect=3)
        self.assertIn("nosuch", r.err)
        self.assertEqual(self.debugfs_cat("disk0", "/etc/hostname"), b"golden\n")

if __name__ == "__main__":
    import unittest

    unittest.main()
