"""Streams without a thread each (issue 17 part 3, issue 13 part 7), against
the real xenctld: WatchEvents and WatchOperation are served on gRPC's
callback API, so hundreds of open watchers add no threads to the daemon,
each still hears its events, the per-caller bound still refuses by name,
and cancelled streams give their slots back. Client: an independent grpcio
client built from the .proto files (test_independent_client.proto_pool)."""

import time

import grpc

from harness import DaemonTestCase
from test_independent_client import start_with_client

WATCHERS = 400


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError(f"no Threads line in /proc/{pid}/status")


class StreamsTest(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        start_with_client(self, f"[daemon]\nmax_streams_per_caller = {WATCHERS}\n")
        self.events = self.channel.unary_stream("/xenctl.v1.DomainService/WatchEvents",
                                                request_serializer=lambda m: m.SerializeToString(),
                                                response_deserializer=self.msg("DomainEvent").FromString)
        self.watch = self.channel.unary_stream("/xenctl.v1.OperationService/WatchOperation",
                                               request_serializer=lambda m: m.SerializeToString(),
                                               response_deserializer=self.msg("Operation").FromString)

    def define(self, name):
        """CreateDomain (define only); its operation."""
        req = self.msg("CreateDomainRequest")(
            spec=self.msg("DomainSpec")(name=name, memory_mib=64, vcpus=1), define_only=True)
        create = self.channel.unary_unary("/xenctl.v1.DomainService/CreateDomain",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=self.msg("Operation").FromString)
        return create(req, timeout=60)

    def probe(self):
        """A WatchOperation of no operation: NOT_FOUND with a slot free, RESOURCE_EXHAUSTED without."""
        try:
            list(self.watch(self.msg("WatchOperationRequest")(id="op-0"), timeout=60))
        except grpc.RpcError as err:
            return err
        self.fail("WatchOperation of an unknown id ended without an error")

    def wait_for(self, code):
        deadline = time.monotonic() + 20
        while (err := self.probe()).code() != code:
            self.assertLess(time.monotonic(), deadline, f"still {err.code()}: {err.details()}")
            time.sleep(0.05)
        return err

    def test_many_watchers_cost_no_threads(self):
        """400 open WatchEvents streams add no thread each, each hears its event, the next is refused naming the limit, and cancelling frees the slots."""
        self.vm("list")  # the daemon has served a call: its threads are started
        before = threads_of(self.daemon.proc.pid)
        streams = [self.events(self.msg("WatchEventsRequest")(), timeout=120) for _ in range(WATCHERS)]
        refused = self.wait_for(grpc.StatusCode.RESOURCE_EXHAUSTED)  # every slot is held: all are served
        self.assertIn(f"limit per caller is {WATCHERS} ([daemon] max_streams_per_caller)", refused.details())
        opened = threads_of(self.daemon.proc.pid)
        # A thread per stream would be 400 more; gRPC's own pollers are a handful.
        self.assertLess(opened - before, 16, f"{opened} threads with {WATCHERS} streams open, {before} before")
        self.define("web1")  # by a unary call: vm-create would watch its operation, and no slot is free
        for s in streams:
            self.assertEqual(next(s).name, "web1")
        for s in streams:
            s.cancel()
        self.wait_for(grpc.StatusCode.NOT_FOUND)  # the cancelled streams gave their slots back

    def console_stream(self, *inputs):
        attach = self.channel.stream_stream("/xenctl.v1.DomainService/AttachConsole",
                                            request_serializer=lambda m: m.SerializeToString(),
                                            response_deserializer=self.msg("ConsoleOutput").FromString)
        return attach(iter(inputs), timeout=120)

    def test_many_consoles_cost_no_threads(self):
        """40 console sessions add no thread each; each shows its guest's output and ends when the guest goes."""
        names = [f"web{i}" for i in range(40)]
        for name in names:
            self.vm("create", name, "--memory", "64M", "--vcpus", "1")
        before = threads_of(self.daemon.proc.pid)
        sessions = [self.console_stream(self.msg("ConsoleInput")(name=name, read_only=True)) for name in names]
        for name, s in zip(names, sessions):  # each guest's banner is read once, by its one session
            self.assertIn(f"console of domain '{name}'".encode(), next(s).data)
        opened = threads_of(self.daemon.proc.pid)
        self.assertLess(opened - before, 16, f"{opened} threads with 40 consoles open, {before} before")
        for name in names:
            self.vm("destroy", name)
        for name, s in zip(names, sessions):
            self.assertIn(f"domain '{name}'", list(s)[-1].closed_reason)

    def test_console_input_the_guest_does_not_take_ends_the_session(self):
        """Keystrokes the guest side leaves untaken for 5 s end the session, saying how many bytes were left."""
        self.vm("create", "web1", "--memory", "64M", "--vcpus", "1")
        flood = self.msg("ConsoleInput")(name="web1", data=b"x" * (1 << 20))
        reasons = [o.closed_reason for o in self.console_stream(flood) if o.closed_reason]
        self.assertEqual(len(reasons), 1)
        self.assertRegex(reasons[0], r"the console of domain 'web1' takes no input \(\d+ bytes left unsent\)")

    def test_watch_operation_follows_to_the_end(self):
        """WatchOperation streams an operation's records and ends after the finished one."""
        op = self.define("web1")
        records = list(self.watch(self.msg("WatchOperationRequest")(id=op.id), timeout=60))
        self.assertTrue(records)
        self.assertEqual(records[-1].id, op.id)
        self.assertEqual(self.pool.FindEnumTypeByName("xenctl.v1.OperationState").values_by_number[
            records[-1].state].name, "OPERATION_STATE_SUCCEEDED")
        # A finished operation is sent once, and the stream ends.
        again = list(self.watch(self.msg("WatchOperationRequest")(id=op.id), timeout=60))
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0].state, records[-1].state)

    def test_wait_operation_answers_finished_or_not_found(self):
        """WaitOperation (served on the callback API) answers a finished operation at once, and NOT_FOUND for an unknown id."""
        wait = self.channel.unary_unary("/xenctl.v1.OperationService/WaitOperation",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.msg("Operation").FromString)
        op = self.define("web1")
        done = wait(self.msg("WaitOperationRequest")(id=op.id, timeout_seconds=30), timeout=60)
        self.assertEqual(done.id, op.id)
        self.assertEqual(self.pool.FindEnumTypeByName("xenctl.v1.OperationState").values_by_number[
            done.state].name, "OPERATION_STATE_SUCCEEDED")
        with self.assertRaises(grpc.RpcError) as err:
            wait(self.msg("WaitOperationRequest")(id="op-0"), timeout=60)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
