"""An independent gRPC client — Python grpcio and protobuf, the .proto files
compiled at run time into a descriptor set, none of our generated code —
talks to the real xenctld. It checks the contract as a third party sees it."""

import json
import os
import subprocess
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from harness import Daemon, DaemonTestCase

PROTO_DIR = os.environ.get("PROTO_DIR", "")
PROTOC = os.environ.get("PROTOC", "protoc")
PROTO_INCLUDE = os.environ.get("PROTO_INCLUDE", "/usr/include")


def message_class(pool, full_name):
    desc = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)  # protobuf 3.21 / 4.21


def proto_pool(workdir):
    """A descriptor pool of every .proto under PROTO_DIR, compiled by protoc into `workdir`."""
    protos = sorted(os.path.join("xenctl/v1", f) for f in os.listdir(os.path.join(PROTO_DIR, "xenctl/v1"))
                    if f.endswith(".proto"))
    if not protos:
        raise AssertionError(f"no .proto files under {PROTO_DIR}")
    out = os.path.join(workdir, "xenctl.pb")
    subprocess.run([PROTOC, "--include_imports", f"--descriptor_set_out={out}", "-I", PROTO_DIR,
                    "-I", PROTO_INCLUDE, *protos], check=True, cwd=PROTO_DIR, timeout=60)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in fds.file:
        pool.Add(file_proto)
    return pool


def start_with_client(case, config_text):
    """Starts case.daemon with [config_text] as its config and gives case an
    independent client of it: case.pool, case.msg(NAME) and case.channel."""
    config = case.write("xenctld.toml", config_text)
    case.daemon = Daemon(case.workdir, extra_args=["--config", config])
    case.daemon.start()
    case.addCleanup(case.daemon.stop)
    case.pool = proto_pool(case.workdir)
    case.msg = lambda name: message_class(case.pool, f"xenctl.v1.{name}")
    case.channel = grpc.insecure_channel(case.daemon.address)
    case.addCleanup(case.channel.close)


class IndependentClientTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.pool = proto_pool(self.workdir)
        self.msg = lambda name: message_class(self.pool, f"xenctl.v1.{name}")
        self.channel = grpc.insecure_channel(self.daemon.address)
        self.addCleanup(self.channel.close)

    def enum_value(self, enum, name):
        return self.pool.FindEnumTypeByName(f"xenctl.v1.{enum}").values_by_name[name].number

    def unary(self, service, method, request_type, response_type, **fields):
        call = self.channel.unary_unary(f"/xenctl.v1.{service}/{method}",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.msg(response_type).FromString)
        return call(self.msg(request_type)(**fields), timeout=30)

    def watch(self, op_id):
        call = self.channel.unary_stream("/xenctl.v1.OperationService/WatchOperation",
                                         request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=self.msg("Operation").FromString)
        return list(call(self.msg("WatchOperationRequest")(id=op_id), timeout=60))

    def test_list_domains_and_watch_operation(self):
        """ListDomains and WatchOperation, called by a client built only from the .proto files."""
        empty = self.unary("DomainService", "ListDomains", "ListDomainsRequest", "ListDomainsResponse")
        self.assertEqual(len(empty.domains), 0)

        op_id = self.vm("create", "web1", "--memory", "512M", "--vcpus", "2", "--vif", "bridge=xenbr0",
                        "--no-wait").out.strip()
        updates = self.watch(op_id)
        self.assertGreaterEqual(len(updates), 1)
        final = updates[-1]
        self.assertEqual(final.id, op_id)
        self.assertEqual(final.state, self.enum_value("OperationState", "OPERATION_STATE_SUCCEEDED"))
        self.assertEqual((final.kind, final.target, final.status_code, final.percent), ("create-domain", "web1", 0, 100))
        self.assertTrue(final.HasField("finished_at"))
        percents = [u.percent for u in updates]
        self.assertEqual(percents, sorted(percents), "progress must be monotonic")
        for u in updates[:-1]:
            self.assertNotEqual(u.state, final.state)

        resp = self.unary("DomainService", "ListDomains", "ListDomainsRequest", "ListDomainsResponse")
        self.assertEqual([d.spec.name for d in resp.domains], ["web1"])
        d = resp.domains[0]
        self.assertEqual(d.state, self.enum_value("DomainState", "DOMAIN_STATE_RUNNING"))
        self.assertEqual((d.spec.memory_mib, d.spec.vcpus, d.spec.vifs[0].bridge), (512, 2, "xenbr0"))
        self.assertEqual(d.spec.type, self.enum_value("DomainType", "DOMAIN_TYPE_PVH"))

        # Our CLI and the independent client see the same domain.
        cli = json.loads(self.vm("list", "--json").out)
        self.assertEqual((cli[0]["spec"]["uuid"], int(cli[0]["domid"]), cli[0]["spec"]["vifs"][0]["mac"]),
                         (d.spec.uuid, d.domid, d.spec.vifs[0].mac))

        # Watching a finished operation returns its final state at once.
        again = self.watch(op_id)
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0].state, final.state)

    def test_errors_carry_grpc_codes(self):
        """Errors reach a third-party client as gRPC codes with messages naming the object."""
        with self.assertRaises(grpc.RpcError) as e:
            self.watch("op-00000000000000ff")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("op-00000000000000ff", e.exception.details())

        spec = self.msg("DomainSpec")(name="Web_1!", memory_mib=512, vcpus=1)
        with self.assertRaises(grpc.RpcError) as e:
            self.unary("DomainService", "CreateDomain", "CreateDomainRequest", "Operation", request_id="r1", spec=spec)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("'Web_1!'", e.exception.details())

        with self.assertRaises(grpc.RpcError) as e:
            self.unary("DomainService", "GetDomain", "GetDomainRequest", "Domain", name="nosuch")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("'nosuch'", e.exception.details())

        # ListDomains reads its request's bytes itself (a raw method): bytes
        # that are no ListDomainsRequest (a field 3 whose length runs past
        # the end) are refused by name, and the next call is answered.
        raw = self.channel.unary_unary("/xenctl.v1.DomainService/ListDomains")
        with self.assertRaises(grpc.RpcError) as e:
            raw(b"\x1a\xff\x01abc", timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("xenctl.v1.ListDomainsRequest", e.exception.details())
        listed = self.unary("DomainService", "ListDomains", "ListDomainsRequest", "ListDomainsResponse")
        self.assertEqual(len(listed.domains), 0)

    def test_create_from_xl_config_text(self):
        """CreateDomain takes an xl config's text (no file on the daemon's side); a key that is not
        xl.cfg(5)'s is INVALID_ARGUMENT naming it; a request with neither spec nor xl_config is INVALID_ARGUMENT."""
        xl = self.msg("XlConfig")(file_name="api.cfg", text="name = 'api1'\nmemory = 128\nvcpus = 2\n")
        op = self.unary("DomainService", "CreateDomain", "CreateDomainRequest", "Operation", request_id="x1",
                        xl_config=xl, define_only=True)
        self.assertEqual(op.target, "api1")
        self.assertEqual(self.watch(op.id)[-1].state, self.enum_value("OperationState", "OPERATION_STATE_SUCCEEDED"))
        d = self.unary("DomainService", "GetDomain", "GetDomainRequest", "Domain", name="api1")
        self.assertEqual((d.spec.memory_mib, d.spec.vcpus, d.spec.type),
                         (128, 2, self.enum_value("DomainType", "DOMAIN_TYPE_PV")))

        bad = self.msg("XlConfig")(file_name="api.cfg", text="name = 'api2'\npcis = [ '01:00.0' ]\n")
        with self.assertRaises(grpc.RpcError) as e:
            self.unary("DomainService", "CreateDomain", "CreateDomainRequest", "Operation", request_id="x2",
                       xl_config=bad)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("pcis (line 2)", e.exception.details())

        with self.assertRaises(grpc.RpcError) as e:
            self.unary("DomainService", "CreateDomain", "CreateDomainRequest", "Operation", request_id="x3")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("needs a spec or an xl_config", e.exception.details())

    def test_volumes_and_images_continue_after_a_page_token(self):
        """ListVolumes and ListImages answer in key order ("POOL/NAME", name) and continue after a page_token;
        the last page has no next_page_token."""
        for name in ("vc", "va", "vb"):
            self.vm("volume", "create", name, "4M")
        first = self.unary("VolumeService", "ListVolumes", "ListVolumesRequest", "ListVolumesResponse")
        self.assertEqual([v.name for v in first.volumes], ["va", "vb", "vc"])
        self.assertEqual(first.next_page_token, "")
        pool = first.volumes[0].pool
        rest = self.unary("VolumeService", "ListVolumes", "ListVolumesRequest", "ListVolumesResponse",
                          page_token=f"{pool}/va")
        self.assertEqual([v.name for v in rest.volumes], ["vb", "vc"])
        self.assertEqual([v["name"] for v in self.vm("volume", "list", "--json").json()], ["va", "vb", "vc"])
        images = self.unary("ImageService", "ListImages", "ListImagesRequest", "ListImagesResponse", page_token="a")
        self.assertEqual((len(images.images), images.next_page_token), (0, ""))


if __name__ == "__main__":
    unittest.main()
