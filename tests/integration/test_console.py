"""vm-console against a real xenctld on the test hypervisor, whose domains
have a real pty console: it prints a line naming the domain, and closes when
the domain ends."""

import os
import subprocess
import time
import unittest

from harness import VMM_DIR, DaemonTestCase


class ConsoleTest(DaemonTestCase):
    def console(self, *args, stdin=subprocess.DEVNULL):
        return subprocess.Popen([os.path.join(VMM_DIR, "vm-console"), *args], stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env())

    def read_until(self, proc, needle, limit_s=20):
        seen = b""
        deadline = time.monotonic() + limit_s
        os.set_blocking(proc.stdout.fileno(), False)
        while needle not in seen and time.monotonic() < deadline:
            chunk = proc.stdout.read()
            if chunk:
                seen += chunk
            else:
                time.sleep(0.05)
        return seen

    def test_read_only_shows_output_and_ends_with_the_domain(self):
        """--read-only prints what the guest wrote; destroying the domain closes the console: exit 0, reason on stderr."""
        self.vm("create", "web1", "--memory", "256", "--vcpus", "1", expect=0)
        proc = self.console("--read-only", "web1")
        self.addCleanup(proc.kill)
        seen = self.read_until(proc, b"console of domain 'web1'")
        self.assertIn(b"console of domain 'web1' (domid 1)", seen, self.daemon.log())
        self.vm("destroy", "web1", expect=0)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"closed", err)
        self.assertIn(b"domain 'web1'", err)

    def test_interactive_session_leaves_at_end_of_input(self):
        """Without a terminal, keystrokes come from stdin; its end leaves the session, the guest keeps running."""
        self.vm("create", "web1", "--memory", "256", "--vcpus", "1", expect=0)
        proc = self.console("web1", stdin=subprocess.PIPE)
        self.addCleanup(proc.kill)
        self.read_until(proc, b"console of domain 'web1'")
        proc.stdin.write(b"ls /\r")
        proc.stdin.close()
        proc.stdin = None  # closed: communicate must not flush it
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.domains()["web1"]["state"], "DOMAIN_STATE_RUNNING")

    def test_refusals(self):
        """A defined but stopped domain cannot be attached (exit 1, says so); an unknown one is exit 3."""
        self.vm("create", "idle", "--memory", "256", "--vcpus", "1", "--define-only", expect=0)
        r = self.vm("console", "--read-only", "idle", expect=1)
        self.assertIn("domain 'idle' is not running", r.err)
        r = self.vm("console", "--read-only", "nosuch", expect=3)
        self.assertIn("nosuch", r.err)


if __name__ == "__main__":
    unittest.main()
