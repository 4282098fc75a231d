"""One caller of the authorization matrix (test_authz.py): an independent
gRPC client (grpcio + protobuf, messages from a descriptor set, none of the
project's code) that the test starts as another uid. It reads one JSON
request per line on stdin and answers one JSON line on stdout:

  in:  {"method": "/xenctl.v1.DomainService/GetDomain", "request": {...},
        "kind": "unary" | "server_stream" | "bidi", "timeout": 5}
  out: {"code": "OK" | "PERMISSION_DENIED" | ..., "message": "...",
        "responses": [{...}, ...]}

With CA, CERT and KEY files after the descriptor set, the channel is mutual
TLS to ADDRESS (HOST:PORT). A stream that is still open at its timeout answers DEADLINE_EXCEEDED with
what it received: the call was admitted and is waiting for more."""

import json
import os
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def message_class(pool, desc):
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    address, descriptor_set = sys.argv[1], sys.argv[2]
    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in fds.file:
        pool.Add(file_proto)
    if len(sys.argv) > 3:
        def content(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=content(sys.argv[3]), private_key=content(sys.argv[5]),
                                             certificate_chain=content(sys.argv[4]))
        channel = grpc.secure_channel(address, creds)
    else:
        channel = grpc.insecure_channel(address)
    for line in sys.stdin:
        q = json.loads(line)
        service, method = q["method"].strip("/").split("/")
        mdesc = pool.FindServiceByName(service).FindMethodByName(method)
        req_cls = message_class(pool, mdesc.input_type)
        resp_cls = message_class(pool, mdesc.output_type)
        req = json_format.ParseDict(q.get("request", {}), req_cls())
        kind = q.get("kind", "unary")
        args = dict(request_serializer=lambda m: m.SerializeToString(), response_deserializer=resp_cls.FromString)
        responses = []
        try:
            if kind == "unary":
                responses.append(channel.unary_unary(q["method"], **args)(req, timeout=q.get("timeout", 30)))
            elif kind == "server_stream":
                for r in channel.unary_stream(q["method"], **args)(req, timeout=q.get("timeout", 30)):
                    responses.append(r)
            else:
                for r in channel.stream_stream(q["method"], **args)(iter([req]), timeout=q.get("timeout", 30)):
                    responses.append(r)
            code, message = "OK", ""
        except grpc.RpcError as e:
            code, message = e.code().name, e.details() or ""
        out = {"code": code, "message": message,
               "responses": [json_format.MessageToDict(r, preserving_proto_field_name=True) for r in responses]}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    # Out without the interpreter's shutdown: grpcio's threads can hold it
    # there for good, and this process keeps the test's stderr open, which
    # makes ctest wait for it (seen once in a full run).
    channel.close()
    os._exit(0)


if __name__ == "__main__":
    main()
