"""Fork and diff through the real vm-fork / vm-diff against the real xenctld
(test hypervisor, a dir pool "main" whose volumes are image files): the
golden image of test_provision.py, a customized clone of it, its differences
listed and written as a patch that a container file's [patch] applies to
another clone, and a fork with its own identity. Volumes are read back
offline with debugfs."""

import os
import subprocess
import unittest

import test_provision
from test_provision import write


class ForkDiffTest(test_provision.ProvisionTest):
    """The same daemon, pool and golden image as the provisioning tests;
    only the tests below run here (see load_tests)."""

    def fsck_clean(self, volume):
        fsck = subprocess.run(["e2fsck", "-fn", self.volume_file(volume)], capture_output=True, text=True)
        self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)

    def test_diff_lists_what_the_root_changed(self):
        """vm-diff lists the files a customized clone changed from its golden image, and reads both read-only."""
        self.vm("create", "web1", "--image", "golden", "--hostname", "web1", "--file", "/etc/motd=hello\n",
                "--file", "/srv/app.conf=port=80\n", "--define-only")
        before = {v: os.stat(self.volume_file(v)).st_mtime_ns for v in ("golden", "web1-root")}
        lines = self.vm("diff", "web1").out.splitlines()
        self.assertIn("changed  /etc/hostname  content", lines)
        self.assertIn("added    /etc/motd  file 0644 0:0", lines)
        self.assertIn("added    /srv  directory 0755 0:0", lines)
        self.assertIn("added    /srv/app.conf  file 0644 0:0", lines)
        self.assertIn("changed  /etc/machine-id  content", lines)
        self.assertIn("changed  /etc/ssh/ssh_host_ed25519_key  content", lines)
        self.assertNotIn("/etc/passwd", "\n".join(lines))  # unchanged: not listed
        self.assertEqual({v: os.stat(self.volume_file(v)).st_mtime_ns for v in before}, before)
        d = self.vm("diff", "web1", "--json").json()
        self.assertEqual((d["volume"], d["vdev"], d["origin"]), ("vol:main/web1-root", "xvda", "vol:main/golden"))
        hostname = next(c for c in d["changes"] if c["path"] == "/etc/hostname")
        self.assertEqual(hostname["kind"], "KIND_CHANGED")
        self.assertTrue(hostname["content_changed"])
        self.assertFalse(hostname["mode_changed"])
        self.assertEqual(hostname["after"]["size"], str(len("web1\n")))

    def test_patch_applies_to_another_copy(self):
        """vm-diff --patch writes a unified diff (a/ b/ names, strip 1) that a container file's [patch] and patch(1) apply."""
        self.vm("create", "web1", "--image", "golden", "--hostname", "web1", "--file", "/etc/motd=hello\n",
                "--keep-identity", "--define-only")
        patch = self.vm("diff", "web1", "--patch").out
        self.assertTrue(patch.startswith("--- a/etc/hostname\n+++ b/etc/hostname\n"), patch)
        self.assertIn("--- /dev/null\n+++ b/etc/motd\n@@ -0,0 +1,1 @@\n+hello\n", patch)
        copy = os.path.join(self.workdir, "copy")
        os.makedirs(copy)
        subprocess.run(["debugfs", "-R", f"rdump / {copy}", self.volume_file("golden")], check=True,
                       capture_output=True)
        applied = subprocess.run(["patch", "-p1", "-d", copy], input=patch, text=True, capture_output=True)
        self.assertEqual(applied.returncode, 0, applied.stdout + applied.stderr)
        for path in ("etc/hostname", "etc/hosts", "etc/motd"):
            with open(os.path.join(copy, path), "rb") as f:
                self.assertEqual(f.read(), self.debugfs_cat("web1-root", "/" + path), path)
        # The container language's [patch], on another clone of the image.
        patch_file = os.path.join(self.workdir, "web1.patch")
        write(patch_file, patch)
        self.vm("create", "web2", "--image", "golden", "--keep-identity", "--define-only")
        container = os.path.join(self.workdir, "web2.cfg")
        write(container, f"[patch vol:main/web2-root {patch_file} 1][end]\n")
        self.vm("container", "--container", container)
        for path in ("/etc/hostname", "/etc/hosts", "/etc/motd"):
            self.assertEqual(self.debugfs_cat("web2-root", path), self.debugfs_cat("web1-root", path), path)
        self.fsck_clean("web2-root")
        self.assertEqual(self.vm("diff", "web2", "--patch").out, patch)

    def test_diff_refusals(self):
        """A running domain and a domain without a cloned root are refused, naming what to do."""
        self.vm("create", "web1", "--image", "golden", "--keep-identity")
        r = self.vm("diff", "web1", expect=1)
        self.assertIn("stop it first (`vm-shutdown web1`)", r.err)
        self.vm("volume", "create", "blank", "16M", "--ext4")
        self.vm("create", "plain", "--memory", "64M", "--vcpus", "1", "--disk", "vol:main/blank,xvda,w",
                "--define-only")
        r = self.vm("diff", "plain", expect=1)
        self.assertIn("main/blank was not cloned from another volume", r.err)
        self.vm("diff", "nosuch", expect=3)

    def test_fork_gives_a_new_identity(self):
        """vm-fork clones a stopped domain's root, gives it a new identity and hostname, defines and starts it."""
        self.vm("create", "web1", "--image", "golden", "--hostname", "web1", "--file", "/etc/motd=hello\n",
                "--vif", "bridge=xenbr0", "--define-only")
        web1_key = self.debugfs_cat("web1-root", "/etc/ssh/ssh_host_ed25519_key.pub").split()[1]
        self.vm("fork", "web1", "web2", "--hostname", "web2")
        d = self.domains()
        self.assertEqual(d["web2"]["state"], "DOMAIN_STATE_RUNNING")
        self.assertEqual(d["web1"]["state"], "DOMAIN_STATE_STOPPED")
        web1, web2 = d["web1"]["spec"], d["web2"]["spec"]
        self.assertEqual(web2["disks"][0]["target"], "vol:main/web2-root")
        self.assertNotEqual(web2["uuid"], web1["uuid"])
        self.assertNotEqual(web2["vifs"][0]["mac"], web1["vifs"][0]["mac"])
        self.assertEqual(self.volumes()["web2-root"]["origin"], "web1-root")
        self.assertEqual(self.debugfs_cat("web2-root", "/etc/hostname"), b"web2\n")
        self.assertEqual(self.debugfs_cat("web2-root", "/etc/motd"), b"hello\n")  # the source's changes are kept
        self.assertEqual(self.debugfs_cat("web2-root", "/etc/machine-id"), b"")
        self.assertNotEqual(self.debugfs_cat("web2-root", "/etc/ssh/ssh_host_ed25519_key.pub").split()[1], web1_key)
        self.assertEqual(self.debugfs_cat("web1-root", "/etc/hostname"), b"web1\n")
        self.fsck_clean("web2-root")
        ops = [o for o in self.vmm("ops", "--all", "--json").json() if o["kind"] == "fork-domain"]
        self.assertEqual((ops[0]["state"], ops[0]["target"]), ("OPERATION_STATE_SUCCEEDED", "web2"), ops)
        # The fork's diff is against its source.
        self.vm("shutdown", "web2", "--force", "--timeout", "1")
        d = self.vm("diff", "web2", "--json").json()
        self.assertEqual(d["origin"], "vol:main/web1-root")
        self.assertIn("/etc/hostname", [c["path"] for c in d["changes"]])

    def test_fork_refusals_and_undo(self):
        """A running source and a taken name are refused at once; a failing start leaves no clone and no domain."""
        self.vm("create", "web1", "--image", "golden", "--keep-identity")
        r = self.vm("fork", "web1", "web2", expect=1)
        self.assertIn("domain 'web1' is running", r.err)
        self.assertIn("stop it first (`vm-shutdown web1`)", r.err)
        self.vm("destroy", "web1")
        r = self.vm("fork", "web1", "web1", expect=2)
        self.vm("create", "web3", "--image", "golden", "--keep-identity", "--define-only")
        r = self.vm("fork", "web1", "web3", expect=1)
        self.assertIn("already exists", r.err)
        self.vm("create", "big", "--image", "golden", "--keep-identity", "--memory", "1T", "--define-only")
        r = self.vm("fork", "big", "big2", expect=1)
        self.assertIn("forking domain 'big' as 'big2': start: ", r.err)
        self.assertIn("undone: clone", r.err)
        self.assertNotIn("big2-root", self.volumes())
        self.assertNotIn("big2", self.domains())
        self.assertNotIn("big2-root.img", os.listdir(self.pool_dir))


def load_tests(loader, tests, pattern):
    """This module's own tests, not the provisioning tests it inherits."""
    return unittest.TestSuite(ForkDiffTest(name) for name in loader.getTestCaseNames(ForkDiffTest)
                              if name in vars(ForkDiffTest))


if __name__ == "__main__":
    unittest.main()
