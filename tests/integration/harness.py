"""Shared fixtures of the integration tests: the real xenctld on a temporary
Unix socket with the test hypervisor, and the real vmm / vm-* binaries.

Paths come from CTest (tests/integration/CMakeLists.txt) through the
environment: XENCTLD, VMM_DIR, PROTO_DIR, PROTOC, PROTO_INCLUDE, MAN_DIR.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

XENCTLD = os.environ.get("XENCTLD", "")
VMM_DIR = os.environ.get("VMM_DIR", "")

# Generous bounds for a loaded 2-core machine; the happy path takes milliseconds.
START_DEADLINE_S = 20
CALL_TIMEOUT_S = 60


def require_binaries(test):
    for what, path in (("XENCTLD", XENCTLD), ("VMM_DIR/vmm", os.path.join(VMM_DIR, "vmm"))):
        if not path or not os.access(path, os.X_OK):
            test.fail(f"{what} is not an executable ({path!r}); run the tests through ctest")


def wait_for_socket(path, proc, log_path, deadline_s=START_DEADLINE_S):
    """Returns once something accepts connections on `path`; fails early if
    the daemon exits. Polls with a bounded deadline (the daemon has no
    readiness channel outside systemd)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"xenctld exited with {proc.returncode} before listening:\n{read(log_path)}")
        if os.path.exists(path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(path)
                    return
                except OSError:
                    pass
        time.sleep(0.02)
    raise AssertionError(f"xenctld did not listen on {path} within {deadline_s} s:\n{read(log_path)}")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"({path}: {e})"


class Daemon:
    """One xenctld process. Several may run in turn on the same state dir."""

    def __init__(self, workdir, state_dir=None, extra_args=()):
        self.workdir = workdir
        self.sock = os.path.join(workdir, "xenctld.sock")
        self.address = "unix:" + self.sock
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.extra_args = list(extra_args)
        self.log_path = None
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.workdir, f"xenctld.{self.starts}.log")
        argv = [XENCTLD, "--listen", self.address, "--state-dir", self.state_dir, "--hypervisor", "test",
                *self.extra_args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for_socket(self.sock, self.proc, self.log_path)

    def stop(self):
        """SIGTERM; returns the exit status. The daemon must remove its socket."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"xenctld did not stop within 30 s of SIGTERM:\n{self.log()}")

    def log(self):
        return read(self.log_path) if self.log_path else ""


class Result:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


class DaemonTestCase(unittest.TestCase):
    """Each test gets a fresh daemon in a fresh directory; clients find it
    through XENCTL_CONNECT."""

    start_daemon = True

    def setUp(self):
        require_binaries(self)
        # Short path: a Unix socket path must fit in 108 bytes.
        self.workdir = tempfile.mkdtemp(prefix="xenctl-it-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.daemon = Daemon(self.workdir)
        if self.start_daemon:
            self.daemon.start()
            self.addCleanup(self.daemon.stop)

    def write(self, name, text):
        """Writes `text` to NAME in the test's directory; returns its path."""
        path = os.path.join(self.workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k != "XENCTL_CONNECT"}
        env["XENCTL_CONNECT"] = self.daemon.address
        env.update(extra)
        return env

    def run_cli(self, argv, expect=None, env=None):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              env=env if env is not None else self.env())
        r = Result(argv, proc)
        if expect is not None:
            self.assertEqual(r.rc, expect, f"{r!r}\n--- xenctld log\n{self.daemon.log()}")
        return r

    def vm(self, command, *args, expect=0, env=None):
        """Runs vm-COMMAND ARGS (the symlink to vmm)."""
        return self.run_cli([os.path.join(VMM_DIR, f"vm-{command}"), *args], expect=expect, env=env)

    def vmm(self, *args, expect=0, env=None):
        return self.run_cli([os.path.join(VMM_DIR, "vmm"), *args], expect=expect, env=env)

    def domains(self):
        """vm-list --json as a dict by name."""
        listed = self.vm("list", "--json").json()
        self.assertIsInstance(listed, list)
        return {d["spec"]["name"]: d for d in listed}
