"""The man pages stay true to the binaries: every option that --help lists
is documented, every command has its section, vm-* pages lead to vmm(1)."""

import os
import re
import shutil
import subprocess
import unittest

from harness import VMM_DIR, DaemonTestCase

MAN_DIR = os.environ.get("MAN_DIR", "")
COMMANDS = ["create", "list", "info", "start", "shutdown", "reboot", "destroy", "delete", "pause", "unpause", "set",
            "console", "volume", "image", "container", "ops", "watch", "host"]
VM_COMMANDS = COMMANDS[:15]
VOLUME_COMMANDS = ["create", "clone", "snapshot", "rollback", "resize", "delete", "list", "pools"]
IMAGE_COMMANDS = ["import", "list", "delete", "export"]


class ManPageTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        with open(os.path.join(MAN_DIR, "vmm.1"), encoding="utf-8") as f:
            self.page = f.read()

    def help_options(self, *argv):
        text = self.vmm(*argv, "--help").out
        return set(re.findall(r"(?m)^\s+(?:-\w,)?(--[a-z][a-z-]*)", text))

    def test_every_option_is_documented(self):
        """Each --help option of each command appears in vmm.1 (as roff's \\-\\-name)."""
        for command in [None, *COMMANDS]:
            argv = [command] if command else []
            options = self.help_options(*argv)
            self.assertIn("--connect", options, argv)  # the regex works
            for option in options:
                with self.subTest(command=command, option=option):
                    self.assertIn(option.replace("-", r"\-"), self.page)

    def test_every_volume_option_is_documented(self):
        """Each --help option of each `vmm volume` subcommand appears in vmm.1."""
        for sub in VOLUME_COMMANDS:
            for option in self.help_options("volume", sub):
                with self.subTest(sub=sub, option=option):
                    self.assertIn(option.replace("-", r"\-"), self.page)
        section = self.page.split(".SH COMMANDS\n")[1].split("\n.SH ")[0]
        for sub in VOLUME_COMMANDS:
            with self.subTest(sub=sub):
                self.assertRegex(section, rf'(?m)^\.BI? "?{sub}\b')

    def test_every_image_option_is_documented(self):
        """Each --help option of each `vmm image` subcommand appears in vmm.1."""
        for sub in IMAGE_COMMANDS:
            for option in self.help_options("image", sub):
                with self.subTest(sub=sub, option=option):
                    self.assertIn(option.replace("-", r"\-"), self.page)

    def test_every_command_has_a_section(self):
        """Each command opens a .TP entry under COMMANDS."""
        section = self.page.split(".SH COMMANDS\n")[1].split("\n.SH ")[0]
        entries = re.findall(r"(?m)^\.TP\n(.*)$", section)
        for command in COMMANDS:
            with self.subTest(command=command):
                self.assertTrue(any(re.match(rf'\.BI? "?{command}\b', e) or rf"\fB{command} " in e for e in entries),
                                entries)

    def test_exit_codes_match_help(self):
        help_text = self.vmm("--help").out
        for code in range(5):
            self.assertIn(f"\n  {code}  ", help_text)
            self.assertIn(f".B {code}\n", self.page)

    def test_vm_pages_point_at_vmm(self):
        for command in VM_COMMANDS:
            with self.subTest(command=command):
                with open(os.path.join(MAN_DIR, f"vm-{command}.1"), encoding="utf-8") as f:
                    self.assertEqual(f.read(), ".so man1/vmm.1\n")
                self.assertIn(rf"vm\-{command}", self.page.split(".SH SYNOPSIS")[0])  # NAME section
                self.assertTrue(os.path.islink(os.path.join(VMM_DIR, f"vm-{command}")))

    @unittest.skipUnless(shutil.which("groff"), "groff is not installed")
    def test_page_renders_without_warnings(self):
        proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(MAN_DIR, "vmm.1")],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main()
