"""Container files (the paper's vm-container, Figure 2) against the real
xenctld: the daemon checks the file and strips its expressions; the client
writes the plain xl config; a file with an error is refused with its line
and column and changes nothing."""

import os
import subprocess
import textwrap

from harness import Daemon, DaemonTestCase

CONTAINER = textwrap.dedent("""\
    name   = 'web1'
    memory = 256
    [replace /etc/HOSTNAME
    archive http://foo.org/images/etc.cpio.gz

    FCDOBBS

    ] [end]
    disk   = [ 'vol:thin/web1,xvda,w' ]
    [hostname web1 archive vol:thin/web1][end]
    vcpus  = 1
    """)

STRIPPED = ("name   = 'web1'\nmemory = 256\n\n\n\n\n\n\n"
            "disk   = [ 'vol:thin/web1,xvda,w' ]\n\nvcpus  = 1\n")


class ContainerTest(DaemonTestCase):

    def test_dry_run_writes_the_stripped_config(self):
        """vm-container --dry-run --stripped OUT writes the xl config without the expressions, lines kept."""
        path = self.write("my-domain", CONTAINER)
        out = os.path.join(self.workdir, "my-config")
        r = self.vm("container", "--container", path, "--stripped", out, "--dry-run")
        self.assertIn("dry run", r.out)
        with open(out, encoding="utf-8") as f:
            self.assertEqual(f.read(), STRIPPED)
        # To stdout, byte for byte.
        self.assertEqual(self.vm("container", "--container", path, "--stripped", "-", "--dry-run").out, STRIPPED)

    def test_plain_xl_config_passes_through(self):
        """A file with no expressions is its own stripped config, and nothing needs running."""
        text = "name = 'db1'\nmemory = 128\ndisk = [ '/srv/db1.img,xvda,w' ]\n"
        path = self.write("db1.cfg", text)
        r = self.vm("container", "--container", path, "--stripped", "-")
        self.assertEqual(r.out, text)

    def test_syntax_error_names_line_and_column_and_writes_nothing(self):
        """An error names FILE:LINE:COLUMN, exits 2, and leaves no stripped config."""
        path = self.write("bad.cfg", "name = 'bad'\n\n  [replace /etc/hostname\n  bad\n  ] [end]\n")
        out = os.path.join(self.workdir, "out.cfg")
        r = self.vm("container", "--container", path, "--stripped", out, expect=2)
        self.assertIn(f"{path}:4:3: [replace] needs 'archive URI' before its text", r.err)
        self.assertFalse(os.path.exists(out))

    def test_vmm_create_refuses_a_bad_container_file(self):
        """vmm create FILE of a container file with an error stores no domain and starts no operation."""
        path = self.write("bad.cfg", "name = 'web2'\nmemory = 128\n[image /srv/x 50XB lbl][end]\n")
        r = self.vmm("create", path, expect=2)
        self.assertIn(f"{path}:3:15: [image] SIZE '50XB' is not a size", r.err)
        self.assertEqual(self.vm("list", "--json").json(), [])
        self.assertEqual(self.vmm("ops", "--all", "--json").json(), [])


MOTD_PATCH = textwrap.dedent("""\
    --- a/etc/motd
    +++ b/etc/motd
    @@ -1,3 +1,3 @@
     Welcome
    -to the golden image
    +to web1
     Bye
    """)


class ContainerApplyTest(DaemonTestCase):
    """ApplyContainer against the real xenctld: a dir pool "thin" whose
    volumes are ext4 image files, edited offline and read back by debugfs."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        self.pool_dir = os.path.join(self.workdir, "pools", "thin")
        config = self.write("xenctld.toml", f'[[pool]]\nname = "thin"\ndriver = "dir"\npath = "{self.pool_dir}"\n')
        self.daemon = Daemon(self.workdir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.vm("volume", "create", "web1", "64M", "--ext4")
        self.volume = os.path.join(self.pool_dir, "web1.img")
        self.patch = self.write("motd.patch", MOTD_PATCH)

    def cat(self, path):
        r = subprocess.run(["debugfs", "-R", f"cat {path}", self.volume], capture_output=True, text=True, check=True)
        return r.stdout

    def container(self, name="web1"):
        return self.write(f"{name}.cfg", textwrap.dedent(f"""\
            name   = '{name}'
            memory = 128
            disk   = [ 'vol:thin/web1,raw,xvda,w' ]
            [replace /etc/motd archive vol:thin/web1
            Welcome
            to the golden image
            Bye
            ] [end]
            [patch vol:thin/web1 {self.patch}][end]
            [replace /etc/HOSTNAME archive vol:thin/web1
            FCDOBBS
            ] [end]
            [hostname {name} archive vol:thin/web1][end]
            """))

    def test_vm_container_replaces_and_patches_a_volume(self):
        """vm-container --container FILE replaces, patches and customizes files in the volume, in order."""
        path = self.container()
        r = self.vm("container", "--container", path)
        self.assertIn("expressions applied", r.out)
        self.assertEqual(self.cat("/etc/motd"), "Welcome\nto web1\nBye\n")
        self.assertEqual(self.cat("/etc/HOSTNAME"), "FCDOBBS\n")
        self.assertEqual(self.cat("/etc/hostname"), "web1\n")
        ops = self.vmm("ops", "--all", "--json").json()
        self.assertEqual([(o["kind"], o["target"], o["state"]) for o in ops],
                         [("apply-container", path, "OPERATION_STATE_SUCCEEDED"),
                          ("create-volume", "thin/web1", "OPERATION_STATE_SUCCEEDED")])
        fsck = subprocess.run(["e2fsck", "-fn", self.volume], capture_output=True, text=True)
        self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)

    def test_create_image_populate_as_in_the_paper(self):
        """[create] packs a directory, [image] makes a labelled ext4 image file and a volume, [populate] fills them; the daemon's mkfs.ext4 and e2fsck agree."""
        src = os.path.join(self.workdir, "etc-src")
        os.makedirs(os.path.join(src, "etc"))
        self.write("etc-src/etc/hosts", "127.0.0.1 localhost\n")
        archive = os.path.join(self.workdir, "images", "etc.cpio.gz")
        os.makedirs(os.path.dirname(archive))
        image = os.path.join(self.workdir, "images", "fido-etc")
        forked = os.path.join(self.workdir, "images", "fcdobbs-etc.cpio.gz")
        path = self.write("fido.cfg", textwrap.dedent(f"""\
            name = 'fido'
            [create
             {src}/
             file://{archive}
             ][end]
            [image {image}
             50MB
             fido_etc] [end]
            [populate image
             {image}
             /mnt/
             file://{archive}
             ][end]
            [image vol:thin/data 16M data][end]
            [populate image vol:thin/data /mnt file://{archive}][end]
            [replace /etc/HOSTNAME archive {image}
            FCDOBBS
            ] [end]
            [replace /etc/HOSTNAME archive file://{archive} fork file://{forked}
            FCDOBBS
            ] [end]
            """))
        self.vm("container", "--container", path)
        self.assertTrue(os.path.exists(archive))
        with open(forked, "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")  # the fork of the archive, a cpio.gz
        for img in (image, os.path.join(self.pool_dir, "data.img")):
            cat = subprocess.run(["debugfs", "-R", "cat /etc/hosts", img], capture_output=True, text=True, check=True)
            self.assertEqual(cat.stdout, "127.0.0.1 localhost\n")
            fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
            self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)
        label = subprocess.run(["e2label", image], capture_output=True, text=True, check=True)
        self.assertEqual(label.stdout, "fido_etc\n")
        self.assertEqual(os.path.getsize(image), 50 << 20)
        # Again: the image exists now, and the run is refused before anything changes.
        r = self.vm("container", "--container", path, expect=None)
        self.assertNotEqual(r.rc, 0)
        self.assertIn(f"{path}:6:1: [image] {image} already exists", r.err)

    def test_failing_run_changes_nothing(self):
        """A hunk that does not apply fails the run with its place, and the volume keeps what it had."""
        bad = self.write("bad.cfg", f"name = 'web1'\n[replace /etc/motd archive vol:thin/web1\nother\n] [end]\n"
                                    f"[patch vol:thin/web1 {self.patch}][end]\n")
        r = self.vm("container", "--container", bad, expect=None)
        self.assertNotEqual(r.rc, 0)
        self.assertIn(f"{bad}:5:1: [patch]", r.err)
        self.assertIn("does not apply", r.err)
        ls = subprocess.run(["debugfs", "-R", "ls /etc", self.volume], capture_output=True, text=True)
        self.assertNotIn("motd", ls.stdout)

    def test_dry_run_changes_nothing(self):
        """--dry-run checks the file with the daemon and leaves the volume alone."""
        self.vm("container", "--container", self.container(), "--dry-run")
        ls = subprocess.run(["debugfs", "-R", "ls /etc", self.volume], capture_output=True, text=True)
        self.assertNotIn("motd", ls.stdout)

    def test_vmm_create_applies_then_creates(self):
        """vmm create FILE runs the expressions, then creates the domain from the stripped config; a second
        run against the volume of the running domain is refused."""
        path = self.container()
        self.vmm("create", path)
        self.assertEqual(self.cat("/etc/motd"), "Welcome\nto web1\nBye\n")
        dom = self.domains()["web1"]
        self.assertEqual(dom["spec"]["disks"][0]["target"], "vol:thin/web1")
        r = self.vm("container", "--container", path, expect=None)
        self.assertNotEqual(r.rc, 0)
        self.assertIn("running domain 'web1' uses it", r.err)
