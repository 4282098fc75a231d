"""Remote callers over mutual TLS: the real xenctld with a tcp: listener on
loopback, certificates made at test time with the openssl CLI, driven by the
real vmm / vm-* and by independent clients (Python's grpc and ssl modules)."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

import grpc

from harness import CALL_TIMEOUT_S, START_DEADLINE_S, XENCTLD, DaemonTestCase, read

CLIENT_SUBJECT = "CN=orchestrator,O=example"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pki:
    """CAs and certificates made by the openssl CLI (EC P-256: fast)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def ca(self, name, subject):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.pem"), "-subj", subject,
                     "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(f"{name}.pem")

    def leaf(self, name, ca, subject, sans, usage, days=1):
        """Signs a certificate for `subject` with `ca`; days < 0 makes it expired."""
        ext = self.path(f"{name}.ext")
        with open(ext, "w", encoding="utf-8") as f:
            f.write(f"subjectAltName={sans}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.csr"), "-subj", subject)
        self.openssl("x509", "-req", "-in", self.path(f"{name}.csr"), "-CA", self.path(f"{ca}.pem"),
                     "-CAkey", self.path(f"{ca}.key"), "-CAcreateserial", "-days", str(days),
                     "-extfile", ext, "-out", self.path(f"{name}.pem"))
        return self.path(f"{name}.pem"), self.path(f"{name}.key")


class TlsTestCase(DaemonTestCase):
    """A daemon on a Unix socket and on tcp:127.0.0.1:PORT with [daemon.tls]."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        self.pki = Pki(os.path.join(self.workdir, "pki"))
        self.pki.ca("ca", "/CN=xenctl test CA")
        self.pki.ca("other-ca", "/CN=someone else's CA")
        self.server_cert, self.server_key = self.pki.leaf(
            "server", "ca", "/CN=xenctld-1", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        self.client_cert, self.client_key = self.pki.leaf(
            "client", "ca", "/O=example/CN=orchestrator", "DNS:orch.example,URI:spiffe://example/orch", "clientAuth")
        self.port = free_port()
        self.tcp = f"tcp:127.0.0.1:{self.port}"

    def start(self, listen_tcp, tls=True):
        """Starts xenctld with a config naming `listen_tcp` (a TOML value) and,
        when `tls`, [daemon.tls]; returns once it serves on both sockets."""
        text = f'[daemon]\nlisten = ["unix:{self.daemon.sock}", {listen_tcp}]\n'
        # The orchestrator's certificate is an admin's (deny by default otherwise).
        text += f'[access]\nadmin = ["cert:{CLIENT_SUBJECT}"]\n'
        if tls:
            text += (f'[daemon.tls]\ncert = "{self.server_cert}"\nkey = "{self.server_key}"\n'
                     f'client_ca = "{self.pki.path("ca.pem")}"\n')
        config = self.write("xenctld.toml", text)
        self.daemon.extra_args = ["--config", config]
        # --listen from the harness would replace the config's; give both.
        self.daemon.extra_args += ["--listen", self.tcp]
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.wait_for_log("serving on")

    def wait_for_log(self, needle, count=1):
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.daemon.log().count(needle) >= count:
                return
            if self.daemon.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.fail(f"xenctld did not log {needle!r}:\n{self.daemon.log()}")

    def tls_env(self, cert=None, key=None, ca=None):
        """Clients reach the tcp: listener; TLS files from the variables."""
        env = self.env(XENCTL_CONNECT=self.tcp, XENCTL_CERT=cert or self.client_cert,
                       XENCTL_KEY=key or self.client_key, XENCTL_CA=ca or self.pki.path("ca.pem"))
        return env

    def served_certificate_subject(self):
        """The subject CN of the certificate the tcp: listener presents now,
        read by Python's ssl module (an independent TLS client)."""
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        ctx.load_cert_chain(self.client_cert, self.client_key)
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=CALL_TIMEOUT_S) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                subject = dict(x[0] for x in s.getpeercert()["subject"])
        return subject["commonName"]

    def grpc_credentials(self):
        """Python grpc's credentials for the good client certificate."""
        def content(path):
            with open(path, "rb") as f:
                return f.read()
        return grpc.ssl_channel_credentials(root_certificates=content(self.pki.path("ca.pem")),
                                            private_key=content(self.client_key),
                                            certificate_chain=content(self.client_cert))

    def raw_call(self, channel, method, timeout=CALL_TIMEOUT_S):
        """A unary call with an empty request, its reply left undecoded."""
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return call(b"", timeout=timeout)


class MutualTlsTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        self.start(f'"{self.tcp}"')

    def test_good_client_works_and_is_named_by_its_certificate(self):
        """A client with a certificate from client_ca is served, and the daemon's audit names its subject."""
        self.vm("list", env=self.tls_env())
        # The flags work as the variables do, and a mutation is audited with the certificate's subject.
        env = self.env()
        self.vm("create", "remote1", "--memory", "256M", "--vcpus", "1", "--connect", self.tcp, "--cert", self.client_cert,
                "--key", self.client_key, "--ca", self.pki.path("ca.pem"), env=env)
        audit = [l for l in self.daemon.log().splitlines() if "method=DomainService.CreateDomain" in l]
        self.assertEqual(len(audit), 1, self.daemon.log())
        self.assertIn(f'audit identity="cert:{CLIENT_SUBJECT}" role=admin', audit[0])
        # The same domain is there for a local caller, whose audit names its uid.
        self.vm("pause", "remote1")
        self.assertRegex(self.daemon.log(), r"audit identity=uid:\d+ role=admin method=DomainService.PauseDomain "
                                            r"target=remote1")
        self.assertIn("mutual TLS on tcp: listeners: certificate subject CN=xenctld-1", self.daemon.log())

    def test_client_without_certificate_is_refused(self):
        """The daemon refuses a TLS client that presents no certificate; vmm asks for one before connecting."""
        with open(self.pki.path("ca.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        with grpc.secure_channel(f"127.0.0.1:{self.port}", creds) as channel:
            with self.assertRaises(grpc.RpcError) as e:
                self.raw_call(channel, "/xenctl.v1.DomainService/ListDomains", timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # A plaintext client is refused as well.
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            with self.assertRaises(grpc.RpcError) as e:
                self.raw_call(channel, "/xenctl.v1.DomainService/ListDomains", timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        env = {k: v for k, v in self.env(XENCTL_CONNECT=self.tcp).items() if k not in ("XENCTL_CERT", "XENCTL_KEY")}
        env["XENCTL_CA"] = self.pki.path("ca.pem")
        r = self.vm("list", expect=2, env=env)
        self.assertIn(f"connecting to {self.tcp} needs mutual TLS: give --cert (or $XENCTL_CERT), --key", r.err)
        self.assertNotIn("audit", self.daemon.log())

    def test_certificate_from_another_ca_is_refused(self):
        """A client certificate that client_ca did not sign never reaches a service."""
        cert, key = self.pki.leaf("stranger", "other-ca", "/CN=orchestrator/O=example", "DNS:orch.example",
                                  "clientAuth")
        r = self.vm("create", "intruder", "--memory", "256M", "--vcpus", "1", expect=4, env=self.tls_env(cert=cert, key=key))
        self.assertIn(f"cannot connect to xenctld at {self.tcp}", r.err)
        self.assertIn("TLS handshake failed", r.err)
        self.assertNotIn("audit", self.daemon.log())
        self.assertEqual(self.domains(), {})

    def test_expired_certificate_is_refused(self):
        """A client certificate past its notAfter is refused even though client_ca signed it."""
        cert, key = self.pki.leaf("expired", "ca", "/CN=orchestrator/O=example", "DNS:orch.example", "clientAuth",
                                  days=-1)
        r = self.vm("create", "late", "--memory", "256M", "--vcpus", "1", expect=4, env=self.tls_env(cert=cert, key=key))
        self.assertIn("TLS handshake failed", r.err)
        self.assertNotIn("audit", self.daemon.log())
        self.assertEqual(self.domains(), {})

    def test_server_certificate_from_another_ca_is_refused_by_the_client(self):
        """vmm refuses a daemon whose certificate --ca did not sign."""
        r = self.vm("list", expect=4, env=self.tls_env(ca=self.pki.path("other-ca.pem")))
        self.assertIn("TLS handshake failed", r.err)

    def test_sighup_reloads_the_certificate_and_keeps_the_unix_socket(self):
        """SIGHUP serves the new server certificate; a Unix connection open across it keeps working."""
        self.assertEqual(self.served_certificate_subject(), "xenctld-1")
        unix = grpc.insecure_channel(self.daemon.address)
        self.addCleanup(unix.close)
        events = unix.unary_stream("/xenctl.v1.DomainService/WatchEvents", request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)(b"", timeout=CALL_TIMEOUT_S)
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(e for _, e in zip(range(1), events)), daemon=True)
        reader.start()
        self.raw_call(unix, "/xenctl.v1.DomainService/ListDomains")
        # A remote stream open across the reload is served by the replaced server until it ends (30 s grace).
        remote = grpc.secure_channel(f"127.0.0.1:{self.port}", self.grpc_credentials())
        self.addCleanup(remote.close)
        remote_events = remote.unary_stream("/xenctl.v1.DomainService/WatchEvents", request_serializer=lambda b: b,
                                            response_deserializer=lambda b: b)(b"", timeout=CALL_TIMEOUT_S)
        remote_seen = []
        remote_reader = threading.Thread(
            target=lambda: remote_seen.extend(e for _, e in zip(range(1), remote_events)), daemon=True)
        remote_reader.start()
        self.raw_call(remote, "/xenctl.v1.DomainService/ListDomains")

        # A reload that fails (the key does not match) keeps the old certificate.
        _, other_key = self.pki.leaf("spare", "ca", "/CN=spare", "DNS:localhost", "serverAuth")
        shutil.copy(other_key, self.server_key)
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for_log("TLS certificates not reloaded")
        self.assertIn(f"[daemon.tls] key {self.server_key} does not match", self.daemon.log())
        self.assertEqual(self.served_certificate_subject(), "xenctld-1")

        cert, key = self.pki.leaf("server2", "ca", "/CN=xenctld-2", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        shutil.copy(cert, self.server_cert)
        shutil.copy(key, self.server_key)
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: TLS certificates reloaded")
        # The replaced server closes its port on a thread of its own, just after.
        deadline = time.monotonic() + START_DEADLINE_S
        subject = self.served_certificate_subject()
        while subject != "xenctld-2" and time.monotonic() < deadline:
            time.sleep(0.05)
            subject = self.served_certificate_subject()
        self.assertEqual(subject, "xenctld-2")
        self.vm("list", env=self.tls_env())
        # Another reload while the first replaced server still has a stream does not wait for it.
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: TLS certificates reloaded", count=2)
        self.vm("list", env=self.tls_env())

        # The streams opened before the reloads see a domain made after them, on the same connections.
        self.raw_call(unix, "/xenctl.v1.DomainService/ListDomains")
        self.vm("create", "after-reload", "--memory", "256M", "--vcpus", "1")
        reader.join(CALL_TIMEOUT_S)
        remote_reader.join(CALL_TIMEOUT_S)
        self.assertEqual(len(seen), 1, "the WatchEvents stream opened before SIGHUP saw no event")
        self.assertEqual(len(remote_seen), 1, "the TLS WatchEvents stream opened before the reloads saw no event")
        events.cancel()
        remote_events.cancel()


class ListenerStartTest(TlsTestCase):
    def run_daemon(self, config_text):
        """Runs xenctld to its exit (it must refuse to start); returns (rc, log)."""
        config = self.write("refused.toml", config_text)
        proc = subprocess.run([XENCTLD, "--config", config, "--state-dir", os.path.join(self.workdir, "state"),
                               "--hypervisor", "test"], capture_output=True, text=True, timeout=CALL_TIMEOUT_S)
        return proc.returncode, proc.stderr

    def test_tcp_listener_without_tls_is_refused_at_start(self):
        """A tcp: listener with neither [daemon.tls] nor insecure = true stops xenctld at start, naming the settings."""
        rc, log = self.run_daemon(f'[daemon]\nlisten = ["unix:{self.daemon.sock}", "{self.tcp}"]\n')
        self.assertEqual(rc, 2, log)
        self.assertIn(f"listen address '{self.tcp}' needs mutual TLS: set [daemon.tls] cert, key and client_ca", log)
        self.assertIn("insecure = true", log)
        self.assertFalse(os.path.exists(self.daemon.sock))

    def test_bad_tls_file_is_refused_at_start(self):
        """A [daemon.tls] file that is missing stops xenctld at start, naming the setting and the file."""
        missing = os.path.join(self.workdir, "nope.pem")
        rc, log = self.run_daemon(f'[daemon]\nlisten = ["{self.tcp}"]\n[daemon.tls]\ncert = "{missing}"\n'
                                  f'key = "{self.server_key}"\nclient_ca = "{self.pki.path("ca.pem")}"\n')
        self.assertEqual(rc, 1, log)
        self.assertIn(f"[daemon.tls] cert {missing}: No such file or directory", log)

    def test_key_open_to_other_users_is_warned(self):
        """A [daemon.tls] key that other users can read still serves, with a warning naming it."""
        os.chmod(self.server_key, 0o640)
        self.start(f'"{self.tcp}"')
        self.assertIn(f"[daemon.tls] key {self.server_key} is open to other users (mode 0640)", self.daemon.log())
        self.vm("list", env=self.tls_env())

    def test_insecure_listener_starts_with_a_warning(self):
        """insecure = true serves the tcp: listener in plaintext and warns at every start; its callers have no
        identity, so no role, and are refused."""
        self.start(f'{{ address = "{self.tcp}", insecure = true }}', tls=False)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            with self.assertRaises(grpc.RpcError) as refused:
                self.raw_call(channel, "/xenctl.v1.DomainService/ListDomains")
        self.assertEqual(refused.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("unknown (role none) may not call DomainService.ListDomains", refused.exception.details())
        warning = f"listening on {self.tcp} without TLS (insecure = true)"
        self.assertIn(warning, self.daemon.log())
        self.daemon.stop()
        self.daemon.start()
        self.wait_for_log("serving on")
        self.assertIn(warning, self.daemon.log())


if __name__ == "__main__":
    unittest.main()
