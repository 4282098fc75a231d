"""The real vmm / vm-* binaries against the real xenctld (test hypervisor)."""

import json
import os
import re
import socket
import subprocess
import unittest

from harness import VMM_DIR, XENCTLD, DaemonTestCase, read, wait_for_socket

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^00:16:3e:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$")
OP_RE = re.compile(r"^op-[0-9a-f]{16}$")

# --json prints the v1 Domain message (protobuf's JSON mapping, .proto field names).
DOMAIN_KEYS = {
    "spec", "state", "domid", "vcpus_online", "memory_mib", "cpu_time_seconds", "foreign", "created_at",
    "state_reason", "owner_uid", "owner", "grants",
}
SPEC_KEYS = {
    "name", "uuid", "type", "kernel", "ramdisk", "cmdline", "bootloader", "bootloader_args", "memory_mib",
    "maxmem_mib", "vcpus", "maxvcpus", "disks", "vifs", "on_poweroff", "on_reboot", "on_crash",
    "on_watchdog",
}
TABLE_HEADER = ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)", "UUID"]


def table_rows(text):
    """A vm-list table as {name: [cells]}, checking the header."""
    lines = text.splitlines()
    assert lines and lines[0].split() == TABLE_HEADER, f"bad header in:\n{text}"
    return {cells[0]: cells for cells in (line.split() for line in lines[1:])}


def stored(domains):
    """What a failed request must not change: everything but live counters."""
    return {name: {k: v for k, v in d.items() if k != "cpu_time_seconds"} for name, d in domains.items()}


class LifecycleTest(DaemonTestCase):
    def create_three(self):
        web1 = self.vm("create", "web1", "--memory", "512M", "--vcpus", "2", "--maxvcpus", "4", "--maxmem", "1G",
                       "--disk", "/dev/vg0/web1,xvda,w", "--vif", "bridge=xenbr0,ip=10.0.0.2",
                       "--cmdline", "console=hvc0", "--kernel", "/boot/vmlinuz")
        db1 = self.vm("create", "db1", "--memory", "1024", "--vcpus", "2", "--type", "hvm", "--paused",
                      "--disk", "target=/srv/db1.img,vdev=xvdb,access=ro,format=raw", "--on-crash", "preserve",
                      "--json")
        build1 = self.vm("create", "build1", "--memory", "768", "--vcpus", "1", "--define-only", "--json")
        return web1, db1, build1

    def test_create_three_then_list_and_info(self):
        """create prints the domain; list and info show exactly what was asked for."""
        web1, db1, build1 = self.create_three()

        # Human output of create: the vm-list table with the one domain.
        rows = table_rows(web1.out)
        self.assertEqual(list(rows), ["web1"])
        self.assertEqual(rows["web1"][2:5], ["512", "2", "running"])
        self.assertEqual(web1.err, "")  # progress goes to stderr only on a terminal
        # --json output of create: the Domain message.
        self.assertEqual(db1.json()["state"], "DOMAIN_STATE_PAUSED")
        self.assertEqual(build1.json()["state"], "DOMAIN_STATE_STOPPED")
        self.assertEqual(build1.json()["domid"], "-1")  # int64: a string in protobuf's JSON mapping

        doms = self.domains()
        self.assertEqual(set(doms), {"web1", "db1", "build1"})
        for d in doms.values():
            self.assertEqual(set(d), DOMAIN_KEYS, d["spec"]["name"])
            self.assertEqual(set(d["spec"]), SPEC_KEYS, d["spec"]["name"])
            self.assertRegex(d["spec"]["uuid"], UUID_RE)
            self.assertFalse(d["foreign"])
            self.assertEqual(d["state_reason"], "")
            self.assertRegex(d["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            self.assertEqual(d["owner_uid"], str(os.getuid()))
        self.assertEqual(len({d["spec"]["uuid"] for d in doms.values()}), 3)

        w, ws = doms["web1"], doms["web1"]["spec"]
        self.assertEqual((w["state"], ws["type"], ws["vcpus"], ws["maxvcpus"], ws["memory_mib"], ws["maxmem_mib"]),
                         ("DOMAIN_STATE_RUNNING", "DOMAIN_TYPE_PVH", 2, 4, "512", "1024"))
        self.assertEqual((w["vcpus_online"], w["memory_mib"]), (2, "512"))
        self.assertGreater(int(w["domid"]), 0)
        self.assertEqual((ws["kernel"], ws["cmdline"]), ("/boot/vmlinuz", "console=hvc0"))
        self.assertEqual(ws["disks"], [{"target": "/dev/vg0/web1", "vdev": "xvda", "mode": "w", "format": ""}])
        self.assertEqual(len(ws["vifs"]), 1)
        self.assertEqual((ws["vifs"][0]["bridge"], ws["vifs"][0]["ip"]), ("xenbr0", "10.0.0.2"))
        self.assertRegex(ws["vifs"][0]["mac"], MAC_RE)  # generated in the Xen OUI
        self.assertEqual((ws["on_poweroff"], ws["on_reboot"], ws["on_crash"]),
                         ("LIFECYCLE_ACTION_DESTROY", "LIFECYCLE_ACTION_RESTART", "LIFECYCLE_ACTION_DESTROY"))

        d, ds = doms["db1"], doms["db1"]["spec"]
        self.assertEqual((d["state"], ds["type"], ds["memory_mib"], ds["maxmem_mib"], ds["on_crash"]),
                         ("DOMAIN_STATE_PAUSED", "DOMAIN_TYPE_HVM", "1024", "1024", "LIFECYCLE_ACTION_PRESERVE"))
        self.assertEqual(ds["disks"], [{"target": "/srv/db1.img", "vdev": "xvdb", "mode": "r", "format": "raw"}])
        self.assertNotEqual(d["domid"], w["domid"])

        b = doms["build1"]
        self.assertEqual((b["state"], b["domid"], b["spec"]["vcpus"], b["vcpus_online"], b["spec"]["memory_mib"]),
                         ("DOMAIN_STATE_STOPPED", "-1", 1, 0, "768"))

        # The table says the same as the JSON.
        rows = table_rows(self.vm("list").out)
        self.assertEqual(set(rows), {"web1", "db1", "build1"})
        for name, cells in rows.items():
            j = doms[name]
            self.assertEqual(len(cells), 7, cells)
            self.assertEqual(cells[1], j["domid"] if j["domid"] != "-1" else "-")
            self.assertEqual("DOMAIN_STATE_" + cells[4].upper(), j["state"])
            self.assertEqual(cells[6], j["spec"]["uuid"])
        self.assertEqual(rows["build1"][2:4], ["768", "1"])
        self.assertEqual(rows["db1"][2:4], ["1024", "2"])

        # vm-X is vmm X, byte for byte.
        self.assertEqual(self.vmm("list", "--json").out, self.vm("list", "--json").out)
        self.assertEqual(self.vmm("--json", "list").out, self.vm("list", "--json").out)

        # info: the same object as in the list; the human form has the xl key names.
        self.assertEqual(self.vm("info", "web1", "--json").json(), w)
        info = self.vm("info", "web1").out
        for line in ("name:           web1", f"uuid:           {ws['uuid']}", "state:          running",
                     "vcpus:          2", "maxvcpus:       4", "memory:         512 MiB", "maxmem:         1024 MiB",
                     "disk:           target=/dev/vg0/web1,vdev=xvda,access=w", "on_reboot:      restart"):
            self.assertIn(line + "\n", info)

    def test_pause_unpause(self):
        """pause and unpause change the state the hypervisor reports, and nothing else."""
        self.create_three()
        before = self.domains()["web1"]
        paused = self.vm("pause", "web1", "--json").json()
        self.assertEqual(paused["state"], "DOMAIN_STATE_PAUSED")
        self.assertEqual(paused["domid"], before["domid"])
        self.assertEqual(self.domains()["web1"]["state"], "DOMAIN_STATE_PAUSED")
        unpaused = self.vm("unpause", "web1", "--json").json()
        self.assertEqual(unpaused["state"], "DOMAIN_STATE_RUNNING")
        self.assertEqual(stored({"x": unpaused}), stored({"x": before}))
        # db1 was created paused.
        self.assertEqual(self.vm("unpause", "db1", "--json").json()["state"], "DOMAIN_STATE_RUNNING")

    def test_pause_stopped_domain_fails_and_names_it(self):
        """Pausing a domain that is not running fails (exit 1) with a message naming it."""
        self.create_three()
        before = stored(self.domains())
        r = self.vm("pause", "build1", expect=1)
        self.assertTrue(r.err.startswith("vm-pause: "), r)
        self.assertIn("'build1'", r.err)
        self.assertEqual(r.out, "")
        self.assertEqual(stored(self.domains()), before)

    def test_set_vcpus_and_memory(self):
        """vm-set changes a running domain live and keeps the values in its definition."""
        self.create_three()
        d = self.vm("set", "web1", "--vcpus", "4", "--memory", "768M", "--json").json()
        self.assertEqual((d["spec"]["vcpus"], d["vcpus_online"], d["spec"]["memory_mib"], d["memory_mib"]),
                         (4, 4, "768", "768"))
        self.assertEqual((d["spec"]["maxvcpus"], d["spec"]["maxmem_mib"], d["state"]),
                         (4, "1024", "DOMAIN_STATE_RUNNING"))
        d = self.vm("set", "web1", "--vcpus", "1", "--json").json()
        self.assertEqual((d["spec"]["vcpus"], d["vcpus_online"], d["spec"]["memory_mib"]), (1, 1, "768"))
        # A stopped domain: only the definition changes.
        d = self.vm("set", "build1", "--memory", "512", "--json").json()
        self.assertEqual((d["state"], d["spec"]["memory_mib"], d["memory_mib"]), ("DOMAIN_STATE_STOPPED", "512", "0"))

        before = stored(self.domains())
        r = self.vm("set", "web1", "--vcpus", "5", expect=2)
        self.assertEqual(r.err, "vm-set: domain 'web1': vcpus 5 is out of range; use 1 to 4 (maxvcpus)\n")
        r = self.vm("set", "web1", "--memory", "2G", expect=2)
        self.assertIn("domain 'web1': memory 2048 MiB is out of range", r.err)
        r = self.vm("set", "web1", expect=2)
        self.assertEqual(r.err, "vm-set: give --vcpus, --memory or both\n")
        self.assertEqual(stored(self.domains()), before)

    def test_shutdown_destroy_start_reboot_delete(self):
        """The rest of the life cycle, each step checked in the list."""
        self.create_three()
        d = self.vm("shutdown", "web1", "--timeout", "10", "--json").json()
        self.assertEqual((d["state"], d["domid"], d["vcpus_online"]), ("DOMAIN_STATE_STOPPED", "-1", 0))
        r = self.vm("shutdown", "web1", expect=1)
        self.assertEqual(r.err, "vm-shutdown: domain 'web1' is not running\n")

        d = self.vm("destroy", "db1", "--json").json()  # paused: destroy still works
        self.assertEqual((d["state"], d["domid"]), ("DOMAIN_STATE_STOPPED", "-1"))

        d = self.vm("start", "build1", "--json").json()
        self.assertEqual(d["state"], "DOMAIN_STATE_RUNNING")
        domid = d["domid"]
        r = self.vm("start", "build1", expect=1)
        self.assertEqual(r.err, "vm-start: domain 'build1' is already running\n")
        d = self.vm("reboot", "build1", "--json").json()
        self.assertEqual(d["state"], "DOMAIN_STATE_RUNNING")
        self.assertNotEqual(d["domid"], domid)  # Xen builds a new domain on reboot
        d = self.vm("start", "web1", "--paused", "--json").json()
        self.assertEqual(d["state"], "DOMAIN_STATE_PAUSED")

        r = self.vm("delete", "build1", expect=1)
        self.assertIn("domain 'build1' is running", r.err)
        self.assertIn("build1", self.domains())
        r = self.vm("delete", "build1", "--force")
        self.assertEqual((r.out, r.err), ("deleted domain 'build1'\n", ""))
        r = self.vm("delete", "db1", "--json")
        op = r.json()
        self.assertEqual((op["kind"], op["target"], op["state"], op["status_code"]),
                         ("delete-domain", "db1", "OPERATION_STATE_SUCCEEDED", 0))
        self.assertEqual(set(self.domains()), {"web1"})
        self.vm("destroy", "web1")
        self.vm("delete", "web1")
        self.assertEqual(self.vm("list", "--json").out, "[]\n")
        self.assertEqual(self.vm("list").out.split(), TABLE_HEADER)


class RestartTest(DaemonTestCase):
    def test_definitions_survive_a_restart(self):
        """Definitions are kept across a restart; running state is not, and the list says so."""
        self.vm("create", "web1", "--memory", "512", "--vcpus", "2", "--vif", "bridge=xenbr0")
        self.vm("create", "db1", "--memory", "1G", "--vcpus", "1", "--paused")
        self.vm("create", "build1", "--memory", "256", "--vcpus", "1", "--define-only")
        self.vm("set", "web1", "--vcpus", "1")
        before = self.domains()

        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        self.assertFalse(os.path.exists(self.daemon.sock), "xenctld left its socket behind")
        self.vm("list", expect=4)
        self.daemon.start()

        after = self.domains()
        self.assertEqual(set(after), {"web1", "db1", "build1"})
        for name in ("web1", "db1"):
            d = after[name]
            self.assertEqual((d["state"], d["domid"], d["vcpus_online"]), ("DOMAIN_STATE_VANISHED", "-1", 0), name)
            self.assertIn("test hypervisor keeps no running state", d["state_reason"])
        self.assertEqual((after["build1"]["state"], after["build1"]["state_reason"]), ("DOMAIN_STATE_STOPPED", ""))
        kept = {"spec", "foreign", "created_at", "owner_uid", "owner", "grants"}
        for name in before:
            self.assertEqual({k: after[name][k] for k in kept}, {k: before[name][k] for k in kept}, name)
        self.assertEqual(after["web1"]["spec"]["vcpus"], 1)  # the vm-set survived too

        # A vanished domain can be started again from its definition, same uuid and MAC.
        d = self.vm("start", "web1", "--json").json()
        self.assertEqual((d["state"], d["spec"]["uuid"], d["spec"]["vifs"]),
                         ("DOMAIN_STATE_RUNNING", before["web1"]["spec"]["uuid"], before["web1"]["spec"]["vifs"]))
        self.assertEqual(d["vcpus_online"], 1)


class BadInputTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.vm("create", "web1", "--memory", "512", "--vcpus", "2")
        self.vm("create", "db1", "--memory", "256", "--vcpus", "1", "--define-only")
        self.before = stored(self.domains())

    def tearDown(self):
        # Whatever was refused, nothing stored changed.
        self.assertEqual(stored(self.domains()), self.before)

    def test_duplicate_name(self):
        """A taken name: ALREADY_EXISTS, exit 1, the message names the domain."""
        r = self.vm("create", "web1", "--memory", "256", "--vcpus", "1", expect=1)
        self.assertEqual((r.out, r.err), ("", "vm-create: domain 'web1' already exists\n"))
        r = self.vmm("create", "db1", "--memory", "256", "--vcpus", "1", "--define-only", expect=1)
        self.assertEqual(r.err, "vmm: domain 'db1' already exists\n")

    def test_invalid_name(self):
        """A name outside [a-z0-9][a-z0-9-_.]{0,62} is a usage error from the server."""
        r = self.vm("create", "Web_1!", "--memory", "256", "--vcpus", "1", expect=2)
        self.assertTrue(r.err.startswith("vm-create: invalid domain name 'Web_1!': "), r)
        self.assertIn("use 1-63 characters", r.err)
        self.assertEqual(r.out, "")

    def test_memory_out_of_range(self):
        """Memory above Xen's limit or below 32 MiB: INVALID_ARGUMENT, exit 2, naming the domain."""
        r = self.vm("create", "web2", "--memory", "64T", "--vcpus", "1", expect=2)
        self.assertEqual(r.err, "vm-create: domain 'web2': memory 67108864 MiB is out of range; "
                                "use 32 MiB to 16 TiB\n")
        r = self.vm("create", "web2", "--memory", "10", "--vcpus", "1", expect=2)
        self.assertEqual(r.err, "vm-create: domain 'web2': memory 10 MiB is out of range; use 32 MiB to 16 TiB\n")
        r = self.vm("create", "web2", "--memory", "512", "--vcpus", "0", expect=2)
        self.assertIn("domain 'web2': vcpus 0 is out of range", r.err)
        r = self.vm("create", "web2", "--memory", "512", "--maxmem", "256", "--vcpus", "1", expect=2)
        self.assertIn("domain 'web2': maxmem 256 MiB must be at least memory (512 MiB)", r.err)

    def test_bad_flag_values(self):
        """Values the client cannot parse never reach the daemon: exit 2, the flag named."""
        cases = [
            (["--memory", "12X", "--vcpus", "1"], "vm-create: --memory: invalid size '12X': unknown unit"),
            (["--memory", "1.5G", "--vcpus", "1"], "vm-create: --memory: invalid size '1.5G'"),
            (["--memory", "512", "--vcpus", "-1"], "vm-create: "),
            (["--memory", "512", "--vcpus", "1", "--type", "kvm"], "vm-create: --type: unknown domain type 'kvm'"),
            (["--memory", "512", "--vcpus", "1", "--on-crash", "explode"],
             "vm-create: --on-crash: unknown lifecycle action 'explode'"),
            (["--memory", "512", "--vcpus", "1", "--disk", "/a,xvda,x"],
             "vm-create: invalid --disk '/a,xvda,x': mode 'x' is not r, ro, w or rw"),
            (["--memory", "512", "--vcpus", "1", "--vif", "model=e1000"],
             "vm-create: invalid --vif 'model=e1000': key 'model' is not supported"),
            (["--vcpus", "1"], "vm-create: --memory is required"),
            (["--memory", "512", "--vcpus", "1", "--colour", "red"], "vm-create: The following argument"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.vm("create", "web2", *args, expect=2)
                self.assertTrue(r.err.startswith(message), r)
                self.assertEqual(r.out, "")

    def test_bad_resource_changes(self):
        """vm-set beyond the maxima is refused by the server (exit 2), naming the domain."""
        r = self.vm("set", "web1", "--vcpus", "3", expect=2)
        self.assertEqual(r.err, "vm-set: domain 'web1': vcpus 3 is out of range; use 1 to 2 (maxvcpus)\n")
        r = self.vm("set", "web1", "--memory", "16", expect=2)
        self.assertEqual(r.err, "vm-set: domain 'web1': memory 16 MiB is out of range; use 32 to 512 MiB (maxmem)\n")

    def test_unknown_domain(self):
        """Every command on a domain that does not exist: NOT_FOUND, exit 3, naming it."""
        message = "domain 'nosuch' not found; `vm-list` shows the defined domains\n"
        for command, args in (("info", []), ("start", []), ("shutdown", []), ("reboot", []), ("destroy", []),
                              ("delete", []), ("pause", []), ("unpause", []), ("set", ["--vcpus", "1"])):
            with self.subTest(command=command):
                r = self.vm(command, "nosuch", *args, expect=3)
                self.assertEqual((r.out, r.err), ("", f"vm-{command}: {message}"))
        r = self.vmm("watch", "op-00000000000000ff", expect=3)
        self.assertIn("op-00000000000000ff", r.err)


class NoDaemonTest(DaemonTestCase):
    start_daemon = False

    def test_nothing_listening(self):
        """No daemon: exit 4, saying which address was tried and what to do."""
        missing = os.path.join(self.workdir, "none.sock")
        for argv in (["list"], ["list", "--json"], ["create", "web1", "--memory", "512", "--vcpus", "1"],
                     ["info", "web1"]):
            with self.subTest(argv=argv):
                r = self.vm(*argv, expect=4, env=self.env(XENCTL_CONNECT=f"unix:{missing}"))
                self.assertEqual(r.out, "")
                self.assertTrue(r.err.startswith(f"vm-{argv[0]}: cannot connect to xenctld at unix:{missing}: "
                                                 "no such file or directory; is xenctld running?"), r)
                self.assertIn("--connect", r.err)
                self.assertIn("(the address from XENCTL_CONNECT was used)", r.err)

        # --connect wins over XENCTL_CONNECT and is named as the source.
        r = self.vmm("list", "--connect", f"unix:{missing}.2", expect=4, env=self.env(XENCTL_CONNECT="tcp:x:1"))
        self.assertIn(f"at unix:{missing}.2: ", r.err)
        self.assertIn("(the address from --connect was used)", r.err)

        # A socket file nobody accepts on (a daemon that died without cleaning up).
        stale = os.path.join(self.workdir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        r = self.vm("list", "--connect", f"unix:{stale}", expect=4)
        self.assertIn(f"cannot connect to xenctld at unix:{stale}: connection refused;", r.err)

        # Without --connect nor XENCTL_CONNECT: the default socket.
        env = self.env()
        del env["XENCTL_CONNECT"]
        if not os.path.exists("/run/xenctld/xenctld.sock"):
            r = self.vm("list", expect=4, env=env)
            self.assertIn("at unix:/run/xenctld/xenctld.sock: ", r.err)
            self.assertIn("(the default address was used)", r.err)

    def test_bad_address(self):
        """An address that is neither unix:PATH nor tcp:HOST:PORT is a usage error."""
        r = self.vm("list", "--connect", "/run/xenctld.sock", expect=2)
        self.assertEqual(r.err, "vm-list: invalid address '/run/xenctld.sock' (from --connect): unknown scheme; "
                                "use unix:PATH or tcp:HOST:PORT\n")
        r = self.vm("list", expect=2, env=self.env(XENCTL_CONNECT="tcp:localhost"))
        self.assertIn("(from XENCTL_CONNECT)", r.err)


class DaemonConfigTest(DaemonTestCase):
    start_daemon = False

    def run_daemon(self, config_text, *args):
        path = os.path.join(self.workdir, "xenctld.toml")
        with open(path, "w") as f:
            f.write(config_text)
        proc = subprocess.run([XENCTLD, "--config", path, *args], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        return path, proc

    def test_malformed_config_names_file_and_line(self):
        """A malformed config file stops xenctld with a message naming the file and the line."""
        cases = [
            ("[daemon]\nstate_dir = \"/tmp/x\"\nhypervisor = test\n", 3, ""),  # unquoted string
            ("[daemon]\nlisten = [\"unix:/tmp/x.sock\"\nstate_dir = \"/tmp/x\"\n", 3, ""),  # unclosed array
            ("# xenctld\n[daemon]\nstate_dir = \"/tmp/x\"\nmax_ops = 3\n", 4, "unknown key 'max_ops'"),
            ("[daemon]\nmax_operations = \"many\"\n", 2, "'max_operations' must be"),
        ]
        for text, line, words in cases:
            with self.subTest(text=text):
                path, proc = self.run_daemon(text, "--listen", f"unix:{self.daemon.sock}")
                self.assertNotEqual(proc.returncode, 0, proc.stderr)
                self.assertIn(f"{path}:{line}", proc.stderr)
                self.assertIn(words, proc.stderr)
                self.assertFalse(os.path.exists(self.daemon.sock))

    def test_valid_config_file(self):
        """The [daemon] table configures listen, state_dir and hypervisor."""
        path = os.path.join(self.workdir, "xenctld.toml")
        with open(path, "w") as f:
            f.write(f'[daemon]\nlisten = ["{self.daemon.address}"]\nstate_dir = "{self.daemon.state_dir}"\n'
                    f'hypervisor = "test"\nmax_operations = 7\nlog_level = "warn"\n')
        log_path = os.path.join(self.workdir, "config.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([XENCTLD, "--config", path], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            wait_for_socket(self.daemon.sock, proc, log_path)
            host = self.vmm("host", "--json").json()
            self.assertEqual((host["hypervisor"], host["operations_limit"]), ("test", 7))
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=30), 0, read(log_path))
        self.assertTrue(os.path.isdir(self.daemon.state_dir))


class OperationsTest(DaemonTestCase):
    def test_no_wait_then_watch(self):
        """--no-wait prints the operation id; vmm watch follows it to its end."""
        r = self.vm("create", "web1", "--memory", "512", "--vcpus", "1", "--no-wait")
        op_id = r.out.strip()
        self.assertRegex(op_id, OP_RE)
        self.assertEqual(r.out, op_id + "\n")

        lines = self.vmm("watch", op_id).out.splitlines()
        self.assertTrue(lines, "watch printed nothing")
        self.assertTrue(lines[-1].startswith(f"{op_id} create-domain web1: succeeded"), lines)

        updates = [json.loads(line) for line in self.vmm("watch", op_id, "--json").out.splitlines()]
        final = updates[-1]
        self.assertEqual((final["id"], final["kind"], final["target"], final["state"], final["status_code"],
                          final["percent"]),
                         (op_id, "create-domain", "web1", "OPERATION_STATE_SUCCEEDED", 0, 100))
        self.assertIn("finished_at", final)
        self.assertEqual(self.domains()["web1"]["state"], "DOMAIN_STATE_RUNNING")

        ops = self.vmm("ops", "--all", "--json").json()
        self.assertIn(op_id, [o["id"] for o in ops])
        rows = self.vmm("ops", "--all").out.splitlines()
        self.assertEqual(rows[0].split(), ["ID", "Kind", "Target", "State", "Phase", "%", "Started", "Result"])
        self.assertTrue(any(row.startswith(op_id) and " succeeded " in row for row in rows[1:]), rows)
        self.assertEqual(self.vmm("ops", "--json").json(), [])  # nothing is running now

        # --json with --no-wait: the operation object.
        op = self.vm("pause", "web1", "--no-wait", "--json").json()
        self.assertEqual((op["kind"], op["target"]), ("pause-domain", "web1"))
        self.vmm("watch", op["id"])
        self.assertEqual(self.domains()["web1"]["state"], "DOMAIN_STATE_PAUSED")

    def test_failed_operation_exit_code(self):
        """An operation that fails gives its code and message, from the waiting command and from watch."""
        self.vm("create", "db1", "--memory", "512", "--vcpus", "1", "--paused")
        before = stored(self.domains())
        # Accepted (db1 exists), then refused by the hypervisor: db1 is already paused.
        op_id = self.vm("pause", "db1", "--no-wait").out.strip()
        self.assertRegex(op_id, OP_RE)
        r = self.vmm("watch", op_id, expect=1)
        self.assertTrue(r.out.splitlines()[-1].startswith(f"{op_id} pause-domain db1: failed"), r)
        self.assertTrue(r.err.startswith("vmm: pausing domain 'db1': "), r)
        op = self.vmm("ops", "--all", "--json").json()[0]
        self.assertEqual((op["id"], op["state"], op["status_code"]), (op_id, "OPERATION_STATE_FAILED", 9))  # FAILED_PRECONDITION
        r = self.vm("pause", "db1", expect=1)  # waiting: the same result
        self.assertEqual(r.out, "")
        self.assertTrue(r.err.startswith("vm-pause: pausing domain 'db1': "), r)
        self.assertEqual(stored(self.domains()), before)

    def test_progress_on_a_terminal(self):
        """With stderr on a terminal, the wait draws one progress line and clears it; stdout is unchanged."""
        import pty
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([os.path.join(VMM_DIR, "vm-create"), "web1", "--memory", "512", "--vcpus", "1",
                                   "--json"], stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL,
                                  env=self.env(), timeout=60)
            os.close(follower)
            follower = None
            drawn = b""
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                drawn += chunk
        finally:
            if follower is not None:
                os.close(follower)
            os.close(leader)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(json.loads(proc.stdout)["state"], "DOMAIN_STATE_RUNNING")
        self.assertIn(b"create-domain web1: ", drawn)
        self.assertTrue(drawn.startswith(b"\r\x1b[K"), drawn)
        self.assertTrue(drawn.endswith(b"\r\x1b[K"), drawn)  # cleared before the result is printed

    def test_request_id_makes_retries_safe(self):
        """The same --request-id twice gets the same operation, and the work is done once."""
        first = self.vm("create", "web1", "--memory", "512", "--vcpus", "1", "--request-id", "retry-1", "--no-wait")
        again = self.vm("create", "web1", "--memory", "512", "--vcpus", "1", "--request-id", "retry-1", "--no-wait")
        self.assertEqual(first.out, again.out)
        self.vmm("watch", first.out.strip())
        # Waiting on the retried request succeeds too, rather than "already exists".
        r = self.vm("create", "web1", "--memory", "512", "--vcpus", "1", "--request-id", "retry-1", "--json")
        self.assertEqual(r.json()["spec"]["name"], "web1")
        self.assertEqual(list(self.domains()), ["web1"])
        op = self.vmm("ops", "--all", "--json").json()[0]
        self.assertEqual(op["request_id"], "retry-1")
        # Without --request-id every call is new: a second create is refused.
        self.vm("create", "web1", "--memory", "512", "--vcpus", "1", expect=1)

    def test_host(self):
        """vmm host shows the test hypervisor and counts the domains."""
        self.vm("create", "web1", "--memory", "512", "--vcpus", "1")
        self.vm("create", "db1", "--memory", "512", "--vcpus", "1", "--define-only")
        h = self.vmm("host", "--json").json()
        self.assertEqual(h["hypervisor"], "test")
        self.assertEqual((h["domains_defined"], h["domains_running"]), (2, 1))
        self.assertGreater(h["cpus"], 0)
        self.assertGreater(int(h["memory_total_mib"]), int(h["memory_free_mib"]))
        self.assertIsInstance(h["pools"], list)
        text = self.vmm("host").out
        self.assertIn("hypervisor:         test\n", text)


class DispatchTest(DaemonTestCase):
    start_daemon = False

    def test_help_and_names(self):
        """Each vm-X runs vmm X; help documents the exit codes; unknown names are usage errors."""
        r = self.vmm("--help")
        for command in ("create", "list", "info", "start", "shutdown", "reboot", "destroy", "delete", "pause",
                        "unpause", "set", "ops", "watch", "host"):
            self.assertRegex(r.out, rf"\n  {command} ")
        for command in ("create", "list", "info", "start", "shutdown", "reboot", "destroy", "delete", "pause",
                        "unpause", "set"):
            with self.subTest(command=command):
                link = os.path.join(VMM_DIR, f"vm-{command}")
                self.assertEqual(os.readlink(link), "vmm")
                h = self.vm(command, "--help")
                self.assertTrue(h.out.startswith(f"{self.vmm(command, '--help').out.splitlines()[0]}\n"
                                                 f"Usage: vm-{command} "), h.out)
                self.assertIn("  4  cannot connect", h.out)
        self.vmm(expect=2)
        self.vmm("frobnicate", expect=2)
        other = os.path.join(self.workdir, "vm-frobnicate")
        os.symlink(os.path.join(VMM_DIR, "vmm"), other)
        r = self.run_cli([other], expect=2)
        self.assertIn("vm-frobnicate: no such command", r.err)


if __name__ == "__main__":
    unittest.main()
