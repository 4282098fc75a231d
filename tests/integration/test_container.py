"""Container files (the paper's vm-container, Figure 2) against the real
xenctld: the daemon checks the file and strips its expressions; the client
writes the plain xl config; a file with an error is refused with its line
and column and changes nothing."""

import os
import textwrap

from harness import DaemonTestCase

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
