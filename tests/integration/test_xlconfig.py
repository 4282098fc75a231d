"""xl config files: `vmm create FILE` and `vm-create --xl-config FILE` against
the real xenctld (test hypervisor). The client sends the file; the daemon
reads it with libxlutil; what xl would ignore is refused by name and
nothing is stored."""

import os
import textwrap

from harness import DaemonTestCase

PV_CONFIG = textwrap.dedent("""\
    # A PV guest as xen-tools writes one
    name        = 'web1'
    uuid        = '6F1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8'
    type        = 'pv'
    kernel      = '/boot/vmlinuz-6.1.0-13-amd64'
    ramdisk     = '/boot/initrd.img-6.1.0-13-amd64'
    root        = '/dev/xvda2 ro'
    extra       = 'console=hvc0'
    memory      = 512
    maxmem      = 1024
    vcpus       = 2
    maxvcpus    = 4
    disk        = [ 'phy:/dev/vg0/web1-disk,xvda2,w',
                    'format=raw, vdev=xvdb, access=ro, target=/srv/xen/web1-data.img' ]
    vif         = [ 'mac=00:16:3e:4a:1b:2c,bridge=xenbr0,ip=10.0.0.7' ]
    on_crash    = 'preserve'
    on_watchdog = 'restart'
    """)

HVM_WITH_UNKNOWN = textwrap.dedent("""\
    type = "hvm"
    name = "win10"
    memory = 2048
    memroy = 1
    disk = [ '/srv/xen/win10.qcow2,qcow2,hda,w' ]
    serail = 'pty'
    vnc = 1
    """)


class XlConfigTest(DaemonTestCase):

    def assert_nothing_stored(self):
        self.assertEqual(self.vm("list", "--json").json(), [])
        self.assertEqual(self.vmm("ops", "--all", "--json").json(), [])

    def test_create_from_file_matches_the_file(self):
        """vmm create FILE defines and starts the domain the file describes, key for key."""
        path = self.write("web1.cfg", PV_CONFIG)
        r = self.vmm("create", path, "--json")
        self.assertEqual(r.err, "")
        d = r.json()
        self.assertEqual(d, self.vm("info", "web1", "--json").json())
        self.assertEqual(d["state"], "DOMAIN_STATE_RUNNING")
        d = d["spec"]
        self.assertEqual((d["name"], d["uuid"], d["type"]),
                         ("web1", "6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8", "DOMAIN_TYPE_PV"))
        self.assertEqual((d["memory_mib"], d["maxmem_mib"], d["vcpus"], d["maxvcpus"]), ("512", "1024", 2, 4))
        self.assertEqual((d["kernel"], d["ramdisk"], d["cmdline"]),
                         ("/boot/vmlinuz-6.1.0-13-amd64", "/boot/initrd.img-6.1.0-13-amd64",
                          "root=/dev/xvda2 ro console=hvc0"))
        self.assertEqual(d["disks"], [{"target": "/dev/vg0/web1-disk", "vdev": "xvda2", "mode": "w", "format": ""},
                                      {"target": "/srv/xen/web1-data.img", "vdev": "xvdb", "mode": "r",
                                       "format": ""}])
        self.assertEqual(d["vifs"], [{"bridge": "xenbr0", "mac": "00:16:3e:4a:1b:2c", "ip": "10.0.0.7"}])
        self.assertEqual((d["on_poweroff"], d["on_reboot"], d["on_crash"], d["on_watchdog"]),
                         ("LIFECYCLE_ACTION_DESTROY", "LIFECYCLE_ACTION_RESTART", "LIFECYCLE_ACTION_PRESERVE",
                          "LIFECYCLE_ACTION_RESTART"))

    def test_xl_config_flag_with_define_only_and_human_output(self):
        """vm-create --xl-config FILE --define-only defines it; the table names the domain from the file."""
        path = self.write("db1.cfg", "name = 'db1'\nbootloader = 'pygrub'\nmemory = 256\n")
        r = self.vm("create", "--xl-config", path, "--define-only")
        self.assertEqual(r.out.splitlines()[1].split()[0], "db1")
        d = self.vm("info", "db1", "--json").json()
        self.assertEqual((d["state"], d["spec"]["type"], d["spec"]["bootloader"], d["spec"]["memory_mib"],
                          d["spec"]["vcpus"]), ("DOMAIN_STATE_STOPPED", "DOMAIN_TYPE_PV", "pygrub", "256", 1))

    def test_unknown_keys_are_named_and_nothing_is_stored(self):
        """A file with keys that are not xl.cfg(5)'s is refused (exit 2), every key named with its line."""
        path = self.write("win10.cfg", HVM_WITH_UNKNOWN)
        r = self.vmm("create", path, expect=2)
        self.assertEqual(r.out, "")
        self.assertTrue(r.err.startswith(f"vmm: xl config {path}: xenctld does not support the keys "
                                         "memroy (line 4), serail (line 6): they are not keys of xl.cfg(5)"), r)
        self.assert_nothing_stored()
        self.assertIn(f"target={path}", self.daemon.log())  # the refusal is audited

    def test_unknown_vif_option_is_named(self):
        """An option inside a vif entry that is not xl's is refused by name."""
        path = self.write("a.cfg", "name = 'a'\nkernel = '/k'\nvif = [ 'bridge=xenbr0,modle=e1000' ]\n")
        r = self.vm("create", path, expect=2)
        self.assertIn(f"{path}:3: vif 0 'bridge=xenbr0,modle=e1000': 'modle' is not an option of a vif", r.err)
        self.assert_nothing_stored()

    def test_syntax_error_names_file_line_and_column(self):
        """libxlutil's syntax error comes back (exit 2) with the file, line and column and what xl expects."""
        path = self.write("bad.cfg", "name = 'a'\n\nmemory = 512M\n")
        r = self.vm("create", path, expect=2)
        self.assertEqual(r.err, f"vm-create: xl config {path}:3:13: config parsing error near `M': lexical error "
                                "(outside quotes xl reads lower-case keys, numbers, = += , ; [ ] and # comments; "
                                "quote other text); see xl.cfg(5) for the syntax\n")
        path = self.write("open.cfg", "name = 'a'\nkernel = \"/boot/vmlinuz\nmemory = 64\n")
        r = self.vmm("create", path, expect=2)
        self.assertEqual(r.out, "")
        self.assertEqual(r.err, f"vmm: xl config {path}:2:10: config parsing error near `\"/boot/vmlinuz': "
                                "lexical error (a string ends on its line with the quote it starts with); "
                                "see xl.cfg(5) for the syntax\n")
        path = self.write("list.cfg", "name = 'a'\nkernel = '/k'\ndisk = [ 'a' 'b' ]\n")
        r = self.vm("create", "--xl-config", path, expect=2)
        self.assertIn(f"xl config {path}:3:14: config parsing error near `'b'': syntax error", r.err)
        self.assertIn("(list items are separated by commas and the list ends with ])", r.err)
        self.assert_nothing_stored()

    def test_wrong_value_names_the_key_and_what_it_takes(self):
        """A wrong value is refused (exit 2) naming the file, line, key and what the key takes."""
        path = self.write("v.cfg", "name = 'a'\nkernel = '/k'\non_watchdog = 'bark'\n")
        r = self.vmm("create", path, expect=2)
        self.assertEqual(r.err, f"vmm: xl config {path}:3: on_watchdog 'bark' is not destroy, restart, "
                                "rename-restart, preserve, coredump-destroy, coredump-restart or soft-reset\n")
        path = self.write("m.cfg", "name = 'a'\nkernel = '/k'\nmemory = '2G'\n")
        r = self.vm("create", "--xl-config", path, expect=2)
        self.assertEqual(r.err, f"vm-create: xl config {path}:3: parameter `memory' is not a valid number; "
                                "memory takes a whole number from 1 to 16777216, not '2G'\n")
        self.assert_nothing_stored()

    def test_spec_flags_cannot_be_combined_with_a_file(self):
        """Spec flags next to an xl config are refused by the client, the flags named."""
        path = self.write("web1.cfg", PV_CONFIG)
        r = self.vm("create", "--xl-config", path, "--memory", "1G", "--vif", "bridge=xenbr1", expect=2)
        self.assertEqual(r.err, f"vm-create: --memory, --vif cannot be combined with an xl config ('{path}'), "
                                "which says what the domain is; edit the file instead\n")
        r = self.vm("create", "web1", "--xl-config", path, expect=2)
        self.assertIn("--xl-config takes the domain's name from the file", r.err)
        self.assert_nothing_stored()

    def test_missing_file(self):
        """--xl-config with no such file exits 3 and names it; a NAME that is no file needs --memory."""
        r = self.vm("create", "--xl-config", os.path.join(self.workdir, "nope.cfg"), expect=3)
        self.assertIn("cannot read xl config", r.err)
        r = self.vm("create", "nope", expect=2)
        self.assertTrue(r.err.startswith("vm-create: --memory is required"), r)
        self.assert_nothing_stored()

    def test_existing_name_from_file(self):
        """The daemon's usual checks apply to a spec read from a file: a taken name is ALREADY_EXISTS."""
        path = self.write("web1.cfg", PV_CONFIG.replace("uuid", "# uuid"))
        self.vmm("create", path)
        r = self.vmm("create", path, expect=1)
        self.assertEqual(r.err, "vmm: domain 'web1' already exists\n")
