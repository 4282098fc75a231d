"""Crash recovery: the real xenctld (test hypervisor, a dir pool) is made to
abort at every crash point it lists (XENCTLD_CRASH_AT=list: each journaled
step of each journaled operation, begun and done), then started again. After
each restart nothing is half-made: no volume that is neither an image's base
nor a defined domain's disk, no catalog row without its volume, no domain
whose volumes are missing, no staging leftovers; the interrupted operation
says it was finished or undone at restart; and the same request repeated
with the same request_id returns that operation and makes nothing new."""

import os
import signal
import subprocess
import tarfile

import grpc

from harness import XENCTLD, Daemon, DaemonTestCase
from test_independent_client import message_class, proto_pool
from test_provision import sha256_of, write


class CrashDaemon(Daemon):
    """A Daemon started with XENCTLD_CRASH_AT set (or not)."""

    crash_at = None

    def start(self):
        saved = os.environ.pop("XENCTLD_CRASH_AT", None)
        if self.crash_at:
            os.environ["XENCTLD_CRASH_AT"] = self.crash_at
        try:
            super().start()
        finally:
            os.environ.pop("XENCTLD_CRASH_AT", None)
            if saved is not None:
                os.environ["XENCTLD_CRASH_AT"] = saved


class CrashRecoveryTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        root = os.path.join(self.workdir, "rootfs")
        write(os.path.join(root, "etc/hostname"), "golden\n")
        write(os.path.join(root, "etc/hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n")
        write(os.path.join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        write(os.path.join(root, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n", 0o444)
        os.makedirs(os.path.join(root, "etc/ssh"))
        os.makedirs(os.path.join(root, "root"), mode=0o700)
        self.golden = os.path.join(self.workdir, "golden.img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", root, self.golden, "16M"], check=True, capture_output=True)
        # The archive form goes through mkfs.ext4 -d in xenctld (the step a kill -9 once left half-made).
        self.archive = os.path.join(self.workdir, "root.tar.gz")
        with tarfile.open(self.archive, "w:gz", format=tarfile.PAX_FORMAT) as t:
            t.add(root, arcname=".")

    # --- one daemon per crash point, in its own directory

    def fresh(self, name):
        d = os.path.join(self.workdir, name)
        os.makedirs(d)
        self.pool_dir = os.path.join(d, "pool")
        config = os.path.join(d, "xenctld.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'[[pool]]\nname = "main"\npath = "{self.pool_dir}"\n')
        self.daemon = CrashDaemon(d, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)

    def restart(self, crash_at=None):
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        self.daemon.crash_at = crash_at
        self.daemon.start()

    def import_golden(self):
        self.vm("image", "import", "golden", "file://" + self.golden, "--sha256", sha256_of(self.golden))

    # --- what each kind of operation needs first, and the request that crashes

    def prepare(self, kind):
        if kind in ("create-domain", "fork-domain", "delete-domain", "apply-container", "delete-image"):
            self.import_golden()
        if kind == "fork-domain":
            self.vm("create", "src", "--image", "golden", "--keep-identity", "--define-only")
        if kind in ("delete-domain", "apply-container"):
            self.vm("create", "web1", "--image", "golden", "--keep-identity", "--define-only")

    def request(self, kind, plain=False):
        """(argv after vm-, the target) of the request each crash point's kind is; `plain`: a create without a root image."""
        if kind == "create-domain" and plain:
            return ["create", "web1", "--memory", "128M", "--vcpus", "1"], "web1"
        if kind == "create-domain":
            return ["create", "web1", "--image", "golden", "--root-size", "32M", "--hostname", "web1"], "web1"
        if kind == "fork-domain":
            return ["fork", "src", "web2", "--hostname", "web2"], "web2"
        if kind == "import-image":
            return ["image", "import", "base", "file://" + self.archive, "--sha256", sha256_of(self.archive)], "base"
        if kind == "delete-domain":
            return ["delete", "web1", "--delete-volumes"], "web1"
        if kind == "delete-image":
            return ["image", "delete", "golden"], "golden"
        if kind == "apply-container":
            path = self.write("web1.cfg", "name = 'web1'\n[hostname web1 archive vol:main/web1-root][end]\n")
            return ["container", "--container", path], None
        self.fail(f"no request for crash points of {kind}")

    # --- the invariants

    def state(self):
        vols = {v["name"]: v for v in self.vm("volume", "list", "--json").json()}
        imgs = {i["name"]: i for i in self.vm("image", "list", "--json").json()}
        doms = self.domains()
        return vols, imgs, doms

    def check_consistent(self, point):
        """Returns a list of what is wrong after the restart (empty: recovered)."""
        wrong = []
        vols, imgs, doms = self.state()
        image_volumes = set()
        for name, img in imgs.items():
            pool, vol = img["base_volume"].split("/", 1)
            image_volumes.add(vol)
            if pool != "main" or vol not in vols:
                wrong.append(f"catalog row {name} has no volume {img['base_volume']}")
        disk_volumes = set()
        for name, d in doms.items():
            for disk in d["spec"].get("disks", []):
                target = disk["target"]
                if target.startswith("vol:main/"):
                    vol = target[len("vol:main/"):]
                    disk_volumes.add(vol)
                    if vol not in vols:
                        wrong.append(f"domain {name} names the missing volume {vol}")
        for vol in vols:
            if vol not in image_volumes and vol not in disk_volumes:
                wrong.append(f"leftover volume {vol} (no catalog row, no domain)")
        files = sorted(f for f in os.listdir(self.pool_dir) if f.endswith(".img"))
        if len(files) != len(vols):
            wrong.append(f"pool files {files} are not the volumes {sorted(vols)}")
        tmp = os.path.join(self.pool_dir, ".tmp")
        if os.path.isdir(tmp) and os.listdir(tmp):
            wrong.append(f"pool staging files left: {os.listdir(tmp)}")
        staging = os.path.join(self.daemon.state_dir, "images.tmp")
        if os.path.isdir(staging) and os.listdir(staging):
            wrong.append(f"image staging left: {os.listdir(staging)}")
        return wrong

    def check_outcome(self, kind, target, before_ids):
        """The interrupted operation: finished, saying what recovery did. Returns (op, what is wrong)."""
        ops = [o for o in self.vmm("ops", "--all", "--json").json()
               if o["kind"] == kind and target in (None, o["target"]) and o["id"] not in before_ids]
        if len(ops) != 1:
            return None, [f"expected one {kind} of {target}, found {ops}"]
        op = ops[0]
        text = op.get("message", "") + " " + op.get("status_message", "")
        wrong = []
        if op["state"] not in ("OPERATION_STATE_SUCCEEDED", "OPERATION_STATE_FAILED"):
            wrong.append(f"operation left {op['state']}")
        if "at restart" not in text:
            wrong.append(f"operation does not say what recovery did: {op}")
        if target is None:  # it makes nothing
            return op, wrong
        _, imgs, doms = self.state()
        made = target in (imgs if kind in ("import-image", "delete-image") else doms)
        expect_made = not kind.startswith("delete-") and op["state"] == "OPERATION_STATE_SUCCEEDED"
        if made != expect_made:
            wrong.append(f"{target} {'exists' if made else 'is missing'} after a {op['state']} {kind}")
        return op, wrong

    def crash_and_recover(self, n, point, plain=False):
        """Crashes at `point` and starts again; returns what is wrong afterwards."""
        kind = point.split("/")[0]
        self.fresh(f"p{n}")
        self.prepare(kind)
        before_ids = {o["id"] for o in self.vmm("ops", "--all", "--json").json()}
        self.restart(crash_at=point)
        argv, target = self.request(kind, plain)
        rid = f"crash-{n}"
        self.vm(*argv, "--request-id", rid, expect=None)
        try:
            rc = self.daemon.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != -signal.SIGABRT:
            return [f"xenctld did not abort there (exit {rc})"]
        self.daemon.crash_at = None
        self.daemon.start()
        wrong = self.check_consistent(point)
        op, outcome = self.check_outcome(kind, target, before_ids)
        wrong += outcome
        if op is not None:
            print(f"{point}{' (no root image)' if plain else ''}: {op['state'].removeprefix('OPERATION_STATE_')}: "
                  f"{op['message']}")
            # The same request again: the same operation, nothing new made.
            counts = [len(x) for x in self.state()]
            again = self.vm(*argv, "--request-id", rid, "--no-wait", "--json", expect=None)
            if op["id"] not in again.out:
                wrong.append(f"a retry with request_id {rid} did not return {op['id']}: {again!r}")
            if [len(x) for x in self.state()] != counts:
                wrong.append("a retry with the same request_id made something")
        return wrong

    def test_retry_after_lost_reply_and_crash(self):
        """An independent client whose CreateDomain reply is lost to a crash retries with the same request_id through the restart: it gets the operation the daemon had started, recovered, and no second domain or volume."""
        pool = proto_pool(self.workdir)
        msg = lambda name: message_class(pool, f"xenctl.v1.{name}")  # noqa: E731
        self.fresh("lost")
        self.import_golden()
        self.restart(crash_at="create-domain/define:stored")
        req = msg("CreateDomainRequest")(request_id="lost-1", spec=msg("DomainSpec")(name="web1", memory_mib=128,
                                                                                     vcpus=1),
                                         root=msg("RootImage")(image="golden"), keep_identity=True)

        def create():
            with grpc.insecure_channel(self.daemon.address) as channel:
                call = channel.unary_unary("/xenctl.v1.DomainService/CreateDomain",
                                           request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=msg("Operation").FromString)
                return call(req, timeout=10)

        # The reply is dropped: the call is made and never read; the daemon dies in the operation.
        with grpc.insecure_channel(self.daemon.address) as channel:
            lost = channel.unary_unary("/xenctl.v1.DomainService/CreateDomain",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=msg("Operation").FromString).future(req, timeout=30)
            try:
                rc = self.daemon.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                rc = None
            self.assertEqual(rc, -signal.SIGABRT, f"{lost.exception() if rc is None else ''}\n{self.daemon.log()}")
        # While it is down the retry fails UNAVAILABLE; once it is back, the same operation.
        with self.assertRaises(grpc.RpcError) as down:
            create()
        self.assertEqual(down.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.daemon.crash_at = None
        self.daemon.start()
        op = create()
        ops = [o for o in self.vmm("ops", "--all", "--json").json() if o["kind"] == "create-domain"]
        self.assertEqual([(o["id"], o["request_id"]) for o in ops], [(op.id, "lost-1")])
        self.assertEqual(ops[0]["state"], "OPERATION_STATE_FAILED")
        self.assertIn("undone at restart", ops[0]["message"])
        self.assertEqual(create().id, op.id)
        vols, imgs, doms = self.state()
        self.assertEqual((sorted(vols), sorted(imgs), sorted(doms)), (["golden"], ["golden"], []))
        # The name is free again: a new request makes the domain.
        self.vm("create", "web1", "--image", "golden", "--keep-identity", "--request-id", "lost-2")
        self.assertEqual(sorted(self.state()[2]), ["web1"])

    def test_every_crash_point_is_recovered(self):
        """At every crash point xenctld knows, a crash then a restart leaves nothing half-made, and a retried request_id returns the same operation."""
        listed = subprocess.run([XENCTLD], env={**os.environ, "XENCTLD_CRASH_AT": "list"}, capture_output=True,
                                text=True, timeout=30, check=True).stdout.split()
        self.assertGreater(len(listed), 20, listed)
        # The define points are passed by a create without a root image too.
        walks = [(point, False) for point in listed]
        walks += [(point, True) for point in listed if point.startswith("create-domain/define")]
        failures = {}
        for n, (point, plain) in enumerate(walks):
            try:
                wrong = self.crash_and_recover(n, point, plain)
            except Exception as e:  # noqa: BLE001 (a crash point whose walk broke is not recovered)
                wrong = [f"{type(e).__name__}: {e}"]
            if wrong:
                failures[point + (" (no root image)" if plain else "")] = wrong + ["--- xenctld log", self.daemon.log()]
            self.daemon.stop()
        recovered = len(walks) - len(failures)
        print(f"\n{recovered} of {len(walks)} crash points recovered")
        self.assertEqual(failures, {}, "\n\n".join(f"{p}:\n" + "\n".join(w) for p, w in failures.items()))


if __name__ == "__main__":
    import unittest
    unittest.main()
