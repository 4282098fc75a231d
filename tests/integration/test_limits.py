"""Limits on what a caller controls (issue 13, part 7), against the real
xenctld: lists larger than one gRPC answer are paged, oversized fields and
requests are refused by name, streams per caller are bounded, a file:// FIFO
import fails at once instead of holding an operation slot, and a download
past [images] max_download_size is refused naming the setting. Clients: the
real vm-* commands and an independent grpcio client built from the .proto
files (test_independent_client.proto_pool)."""

import os
import tarfile
import time

import grpc

from harness import DaemonTestCase
from test_images import HttpServer
from test_independent_client import start_with_client


class LimitsTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        self.www = os.path.join(self.workdir, "www")
        os.makedirs(self.www)
        blob = os.path.join(self.workdir, "blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(3 << 20))
        with tarfile.open(os.path.join(self.www, "big.tar"), "w") as t:  # unpacks as it streams, past 1 MiB
            t.add(blob, arcname="blob")
        self.http = HttpServer(self.www)
        self.addCleanup(self.http.stop)
        start_with_client(self, "[daemon]\nmax_streams_per_caller = 2\nmax_request_size = \"1M\"\n"
                                "[images]\nmax_download_size = \"1M\"\n"
                                f'[[images.source]]\nprefix = "{self.http.base}/"\npolicy = "none"\n')

    def unary(self, service, method, request, response_type):
        call = self.channel.unary_unary(f"/xenctl.v1.{service}/{method}",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.msg(response_type).FromString)
        return call(request, timeout=60)

    def create(self, name, disks=(), request_id=""):
        spec = self.msg("DomainSpec")(name=name, memory_mib=64, vcpus=1,
                                      disks=[self.msg("Disk")(target=t, vdev=f"xvd{i}", mode="r")
                                             for i, t in enumerate(disks)])
        req = self.msg("CreateDomainRequest")(request_id=request_id, spec=spec, define_only=True)
        return self.unary("DomainService", "CreateDomain", req, "Operation")

    def test_lists_larger_than_one_answer_are_paged(self):
        """Domains whose specs together pass 4 MiB are listed in pages; vm-list and vmm ops show them all."""
        names = [f"big{i:02d}" for i in range(20)]
        # 64 disks of ~4000-byte paths: ~260 KB a domain, ~5 MB in all. Each
        # create is an operation a worker runs: listed before it ends, the
        # domain may not be defined yet, so each is waited for.
        created = [self.create(name, [f"/srv/{name}/{i:02d}/" + "d" * 3980 for i in range(64)]) for name in names]
        self.assertEqual([self.wait(op).state for op in created], [3] * len(names), "every create succeeds")
        first = self.unary("DomainService", "ListDomains", self.msg("ListDomainsRequest")(), "ListDomainsResponse")
        self.assertTrue(first.next_page_token, "one answer of more than 4 MiB would fail every client")
        self.assertLess(first.ByteSize(), 4 << 20)
        listed = self.vm("list", "--json").json()
        self.assertEqual([d["spec"]["name"] for d in listed], names)
        self.assertEqual(len(listed[0]["spec"]["disks"]), 64)
        ops = self.vmm("ops", "--all", "--json").json()
        self.assertEqual(len(ops), 20)

    def wait(self, op):
        while op.state not in (3, 4, 5):  # SUCCEEDED, FAILED, CANCELLED
            op = self.unary("OperationService", "WaitOperation",
                            self.msg("WaitOperationRequest")(id=op.id, timeout_seconds=10), "Operation")
        return op

    def test_64_concurrent_creates_queue_and_all_succeed(self):
        """64 clients creating and starting a domain at once (past max_operations 16 and max_operations_per_caller 12) are all accepted, wait their turn, and all succeed."""
        from concurrent.futures import ThreadPoolExecutor

        def one(i):
            spec = self.msg("DomainSpec")(name=f"q{i:02d}", memory_mib=64, vcpus=1)
            first = self.unary("DomainService", "CreateDomain",
                               self.msg("CreateDomainRequest")(request_id=f"q{i}", spec=spec), "Operation")
            return first, self.wait(first)

        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(one, range(64)))
        failed = [(done.target, done.status_message) for _, done in results if done.state != 3]
        self.assertEqual(failed, [], "every create succeeds, none is refused")
        print(f"\n64 concurrent creates: 64 succeeded; largest queue_position answered "
              f"{max(first.queue_position for first, _ in results)}")
        domains = self.unary("DomainService", "ListDomains", self.msg("ListDomainsRequest")(), "ListDomainsResponse")
        self.assertEqual(len(domains.domains), 64)

    def test_request_id_belongs_to_its_request(self):
        """The same request_id with the same request is the same operation; with another request (another name, another method) it is refused naming the id and the earlier operation."""
        op = self.wait(self.create("rid1", request_id="rid"))
        self.assertEqual(self.create("rid1", request_id="rid").id, op.id)
        with self.assertRaises(grpc.RpcError) as e:
            self.create("rid2", request_id="rid")
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("request_id 'rid' was already used", e.exception.details())
        self.assertIn(op.id, e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.unary("DomainService", "DeleteDomain", self.msg("DeleteDomainRequest")(name="rid1", request_id="rid"),
                       "Operation")
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn(op.id, e.exception.details())
        self.assertEqual(len(self.unary("DomainService", "ListDomains", self.msg("ListDomainsRequest")(),
                                        "ListDomainsResponse").domains), 1, "nothing was deleted or made")

    def test_operation_history_larger_than_one_answer_is_paged(self):
        """560 failed imports whose messages are cut at 4 KiB each pass 4 MiB together: ListOperations pages them."""
        for i in range(560):
            self.import_failing(f"i{i}")
        deadline = time.monotonic() + 60
        while self.vmm("ops", "--json").json():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        req = self.msg("ListOperationsRequest")(limit=1000)
        first = self.unary("OperationService", "ListOperations", req, "ListOperationsResponse")
        self.assertTrue(first.next_page_token)
        self.assertLess(first.ByteSize(), 4 << 20)
        self.assertLessEqual(len(first.operations[0].status_message), 4096)
        self.assertIn("bytes cut)", first.operations[0].status_message)
        ops = self.vmm("ops", "--all", "--limit", "1000", "--json").json()
        self.assertEqual(len(ops), 560)
        self.assertEqual(len({o["id"] for o in ops}), 560, "no operation is listed twice across pages")
        # The limit counts over all pages from the first: operations started
        # between two pages neither show up nor push the oldest out.
        page = self.unary("OperationService", "ListOperations", self.msg("ListOperationsRequest")(limit=540),
                          "ListOperationsResponse")
        self.assertTrue(page.next_page_token)
        for i in range(3):
            self.import_failing(f"late{i}")
        ids = [o.id for o in page.operations]
        while page.next_page_token:
            page = self.unary("OperationService", "ListOperations",
                              self.msg("ListOperationsRequest")(limit=540, page_token=page.next_page_token),
                              "ListOperationsResponse")
            ids += [o.id for o in page.operations]
        self.assertEqual(ids, [o["id"] for o in ops[:540]])

    def import_failing(self, name):
        """Starts an import that fails at once, its message cut at 4 KiB; waits while the caller has too many."""
        req = self.msg("ImportImageRequest")(name=name, uri="file:///nonexistent/" + "u" * 4000, sha256="0" * 64)
        while True:
            try:
                return self.unary("ImageService", "ImportImage", req, "Operation")
            except grpc.RpcError as err:  # past max_operations_per_caller: wait for one to finish
                self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, err.details())
                time.sleep(0.02)

    def test_oversized_fields_refused_by_name(self):
        """A 1.1 MB request_id, a 100 KB one, 65 disks and a request past max_request_size are refused; vm-list keeps working."""
        with self.assertRaises(grpc.RpcError) as e:
            self.create("web1", request_id="r" * 1100000)
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)  # past max_request_size (1M)
        with self.assertRaises(grpc.RpcError) as e:
            self.create("web1", request_id="r" * 100000)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("request_id is 100000 bytes, more than the limit of 128", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.create("web1", [f"/srv/d{i}" for i in range(65)])
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("domain 'web1': disks: 65 given, more than the limit of 64", e.exception.details())
        r = self.vm("create", "web1", "--memory", "64M", "--vcpus", "1", "--define-only", "--kernel", "/boot/k",
                    "--cmdline", "x" * 5000, expect=2)
        self.assertIn("cmdline is 5000 bytes, more than the limit of 4096", r.err)
        # Through the CLI, gRPC's refusal of a request past max_request_size (1M) names the setting.
        path = self.write("big.cfg", "name = 'big'\n" + "#" * ((1 << 20) - 14) + "\n")  # 1 MiB: the client sends it
        r = self.vmm("create", path, expect=1)
        self.assertRegex(r.err, r"^vmm: the request is 1048\d\d\d bytes, more than xenctld takes: 1048576 bytes "
                                r"\(\[daemon\] max_request_size in its config\); send less, or raise it\n$")
        self.assertEqual(self.vm("list", "--json").json(), [])

    def test_streams_per_caller_are_bounded(self):
        """With two WatchEvents streams open, a caller's next stream is refused naming [daemon] max_streams_per_caller; closing one frees its slot."""
        events = self.channel.unary_stream("/xenctl.v1.DomainService/WatchEvents",
                                           request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=self.msg("DomainEvent").FromString)
        watch = self.channel.unary_stream("/xenctl.v1.OperationService/WatchOperation",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=self.msg("Operation").FromString)

        def probe():
            """A WatchOperation of no operation: NOT_FOUND with a slot free, RESOURCE_EXHAUSTED without."""
            try:
                list(watch(self.msg("WatchOperationRequest")(id="op-0"), timeout=60))
            except grpc.RpcError as err:
                return err
            self.fail("WatchOperation of an unknown id ended without an error")

        def wait_for(code):
            deadline = time.monotonic() + 20  # a cancelled stream is noticed within the server's 1 s check
            while (err := probe()).code() != code:
                self.assertLess(time.monotonic(), deadline, f"still {err.code()}: {err.details()}")
                time.sleep(0.1)
            return err

        streams = [events(self.msg("WatchEventsRequest")(), timeout=60) for _ in range(2)]
        refused = wait_for(grpc.StatusCode.RESOURCE_EXHAUSTED)  # both streams are being served
        self.assertIn("limit per caller is 2 ([daemon] max_streams_per_caller)", refused.details())
        with self.assertRaises(grpc.RpcError) as e:
            next(events(self.msg("WatchEventsRequest")(), timeout=60))
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.create("web1")  # the streams still serve their events
        for s in streams:
            self.assertEqual(next(s).name, "web1")
        streams[0].cancel()
        wait_for(grpc.StatusCode.NOT_FOUND)

    def test_fifo_import_fails_at_once(self):
        """A file:// FIFO is refused without being opened: the operation fails and holds no slot."""
        fifo = os.path.join(self.workdir, "pipe.img")
        os.mkfifo(fifo)
        r = self.vm("image", "import", "x", "file://" + fifo, "--sha256", "0" * 64, expect=1)
        self.assertIn("it is a FIFO; file:// reads and writes only regular files", r.err)
        self.assertEqual(self.vmm("ops", "--json").json(), [], "no operation is left running")

    def test_download_size_limit_names_the_setting(self):
        """An image larger than [images] max_download_size is refused before its body, naming the setting."""
        r = self.vm("image", "import", "big", self.http.base + "/big.tar", expect=1)
        self.assertIn("the announced size is more than the limit of 1048576 bytes", r.err)
        self.assertIn("[images] max_download_size", r.err)
        r = self.vm("image", "import", "big", self.http.base + "/nolength/big.tar", expect=1)
        self.assertIn("more than the limit of 1048576 bytes arrived", r.err)
        self.assertEqual(self.vm("image", "list", "--json").json(), [])
