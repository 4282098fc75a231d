"""Golden images through lib/image (CurlFetcher, minisign, safe unpacking),
driven by tests/integration/tools/image_tool against real servers on
loopback that these tests start: HTTP and HTTPS (a CA made here with
openssl), FTP (pyftpdlib), file://. Images are signed with the real
`minisign`; hostile archives are made here with Python's tarfile.

IMAGE_TOOL comes from CTest (tests/integration/CMakeLists.txt).
"""

import hashlib
import http.server
import io
import json
import logging
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.parse
import warnings

from harness import Daemon, DaemonTestCase

IMAGE_TOOL = os.environ.get("IMAGE_TOOL", "")
TOOL_TIMEOUT_S = 120


def run_tool(*args):
    """Runs image_tool; returns (exit code, parsed JSON or None, stderr)."""
    p = subprocess.run([IMAGE_TOOL, *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None
    return p.returncode, out, p.stderr


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, **kw)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.root with Range support, plus faults the tests switch on:
    server.drop_once (paths whose body is cut halfway once), server.fail_once
    (paths answered 503 once), server.ignore_range, /redirect/N/PATH,
    /stall/PATH (headers, then silence) and /nolength/PATH (no
    Content-Length: the body ends when the connection closes)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_PUT(self):
        """Stores the body (chunked, as a stream is sent, or with a length) under server.root/uploads."""
        path = urllib.parse.urlparse(self.path).path
        body = b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not path.startswith("/uploads/"):
            self.send_error(403)
            return
        dest = os.path.join(self.server.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(body)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        srv = self.server
        path = urllib.parse.urlparse(self.path).path
        srv.log.append((path, self.headers.get("Range")))
        if path.startswith("/redirect/"):
            _, _, n, rest = path.split("/", 3)
            n = int(n)
            self.send_response(302)
            self.send_header("Location", f"/redirect/{n - 1}/{rest}" if n > 1 else "/" + rest)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/to-file":  # a redirect a server must not be able to make us follow
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in srv.fail_once:
            srv.fail_once.discard(path)
            self.send_error(503)
            return
        stall = path.startswith("/stall/")
        if stall:
            path = path[len("/stall"):]
        nolength = path.startswith("/nolength/")
        if nolength:
            path = path[len("/nolength"):]
        file = os.path.join(srv.root, path.lstrip("/"))
        if not os.path.isfile(file):
            self.send_error(404)
            return
        with open(file, "rb") as f:
            data = f.read()
        start = 0
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if nolength:
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if stall:
            srv.stall_release.wait(30)
            self.close_connection = True
            return
        if path in srv.drop_once:
            srv.drop_once.discard(path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (a cancelled or refused import) are expected


class HttpServer:
    def __init__(self, root, tls=None):
        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.root = root
        self.httpd.log = []
        self.httpd.drop_once = set()
        self.httpd.fail_once = set()
        self.httpd.ignore_range = False
        self.httpd.stall_release = threading.Event()
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.stall_release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class FtpServer:
    def __init__(self, root):
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        log = logging.getLogger("pyftpdlib")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        auth = DummyAuthorizer()
        with warnings.catch_warnings():  # "write permissions assigned to anonymous user": wanted
            warnings.simplefilter("ignore")
            auth.add_anonymous(root, perm="elradfmw")  # writable: exports are stored here
        handler = type("Handler", (FTPHandler,), {"authorizer": auth})
        self.server = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.base = f"ftp://127.0.0.1:{self.server.address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"handle_exit": False}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.close_all()


def make_ca(d):
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2",
       "-subj", "/CN=xenctl test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sh("openssl", "req", *ec, "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr", "-subj", "/CN=127.0.0.1")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
       "-CAcreateserial", "-out", f"{d}/srv.pem", "-days", "2", "-extfile", f"{d}/ext.cnf")
    return f"{d}/ca.pem", (f"{d}/srv.pem", f"{d}/srv.key")


def minisign_keygen(d, name):
    pub, sec = f"{d}/{name}.pub", f"{d}/{name}.key"
    sh("minisign", "-G", "-W", "-p", pub, "-s", sec)
    with open(pub) as f:
        key_id = f.readline().strip().split()[-1]
    return pub, sec, key_id


def minisign_sign(sec, path, legacy=False):
    sh("minisign", "-S", "-s", sec, "-m", path, *(["-l"] if legacy else []), "-t", "xenctl test image")


def make_rootfs(d):
    """A small root file system with a big sparse-ish file, links, modes and times."""
    os.makedirs(f"{d}/etc")
    os.makedirs(f"{d}/usr/bin")
    os.makedirs(f"{d}/var/empty")
    with open(f"{d}/etc/hostname", "w") as f:
        f.write("golden\n")
    with open(f"{d}/usr/bin/tool", "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(f"{d}/usr/bin/tool", 0o755)
    with open(f"{d}/usr/bin/blob", "wb") as f:
        f.write(os.urandom(3 << 20))
    os.link(f"{d}/usr/bin/tool", f"{d}/usr/bin/tool2")
    os.symlink("usr/bin", f"{d}/bin")
    os.chmod(f"{d}/var/empty", 0o555)
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (1700000000, 1700000000), follow_symlinks=False)


def tree(d):
    """{relative name: (type, mode, size, mtime, content digest or link target)}."""
    out = {}
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, d)
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            else:
                what = ""
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                        st.st_size if stat.S_ISREG(st.st_mode) else 0, int(st.st_mtime), what)
    return out


def tar_of(src, out, mode):
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=".")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not IMAGE_TOOL or not os.access(IMAGE_TOOL, os.X_OK):
            raise AssertionError(f"IMAGE_TOOL is not an executable ({IMAGE_TOOL!r}); run the tests through ctest")
        cls.tmp = tempfile.mkdtemp(prefix="xenctl-images-")
        cls.www = os.path.join(cls.tmp, "www")
        os.makedirs(cls.www)
        cls.src = os.path.join(cls.tmp, "rootfs")
        make_rootfs(cls.src)
        cls.src_tree = tree(cls.src)
        cls.ca, certs = make_ca(cls.tmp)
        cls.pub, cls.sec, cls.key_id = minisign_keygen(cls.tmp, "trusted")
        cls.other_pub, cls.other_sec, cls.other_id = minisign_keygen(cls.tmp, "other")
        for name, mode in (("root.tar.gz", "w:gz"), ("root.tar.xz", "w:xz"), ("root.tar.bz2", "w:bz2"),
                           ("root.tar", "w")):
            tar_of(cls.src, os.path.join(cls.www, name), mode)
            minisign_sign(cls.sec, os.path.join(cls.www, name))
        sh("zstd", "-q", "-f", "-o", os.path.join(cls.www, "root.tar.zst"), os.path.join(cls.www, "root.tar"))
        minisign_sign(cls.sec, os.path.join(cls.www, "root.tar.zst"))
        cls.http = HttpServer(cls.www)
        cls.https = HttpServer(cls.www, tls=certs)
        cls.ftp = FtpServer(cls.www)

    @classmethod
    def tearDownClass(cls):
        cls.http.stop()
        cls.https.stop()
        cls.ftp.stop()
        for root, dirs, _ in os.walk(cls.tmp):
            for n in dirs:
                p = os.path.join(root, n)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=self.tmp, prefix="case-")
        self.dest = os.path.join(self.work, "image")

    def remove_dest(self):
        os.chmod(os.path.join(self.dest, "var/empty"), 0o700)  # read-only as in the archive
        shutil.rmtree(self.dest)

    def publish(self, name, data):
        path = os.path.join(self.www, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def import_(self, uri, *extra):
        return run_tool("import", uri, self.dest, "--key", self.pub, "--backoff", "0.05", *extra)

    def assert_refused(self, rc, stderr, code, *needles):
        self.assertEqual(rc, 1, stderr)
        self.assertTrue(stderr.startswith(code + ":"), stderr)
        for n in needles:
            self.assertIn(n, stderr)
        self.assertEqual(os.listdir(self.work), [], "a refused import left files behind")

    # --- the fetcher ---

    def test_http_fetch_is_byte_for_byte(self):
        """A plain HTTP download arrives whole, with progress reported."""
        out = os.path.join(self.work, "out")
        rc, res, err = run_tool("fetch", self.http.base + "/root.tar.gz", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256_of(out), sha256_of(os.path.join(self.www, "root.tar.gz")))
        self.assertEqual(res["attempts"], 1)
        self.assertGreaterEqual(res["progress_calls"], 1)
        self.assertEqual(res["progress_last_bytes"], os.path.getsize(out))

    def test_interrupted_download_resumes_with_range(self):
        """A connection dropped halfway is resumed with a Range request, not restarted."""
        self.http.httpd.drop_once.add("/root.tar")
        self.http.httpd.log.clear()
        out = os.path.join(self.work, "out")
        rc, res, err = run_tool("fetch", self.http.base + "/root.tar", out, "--backoff", "0.05")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256_of(out), sha256_of(os.path.join(self.www, "root.tar")))
        self.assertEqual((res["attempts"], res["resumes"]), (2, 1))
        ranges = [r for p, r in self.http.httpd.log if p == "/root.tar"]
        self.assertEqual(ranges, [None, f"bytes={os.path.getsize(out) // 2}-"])

    def test_resume_against_a_server_ignoring_ranges(self):
        """A server that answers a Range request with the whole body is read again, the known part skipped."""
        self.http.httpd.drop_once.add("/root.tar.xz")
        self.http.httpd.ignore_range = True
        try:
            out = os.path.join(self.work, "out")
            rc, res, err = run_tool("fetch", self.http.base + "/root.tar.xz", out, "--backoff", "0.05")
        finally:
            self.http.httpd.ignore_range = False
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256_of(out), sha256_of(os.path.join(self.www, "root.tar.xz")))

    def test_transient_503_is_retried(self):
        """An HTTP 503 is retried after a backoff."""
        self.http.httpd.fail_once.add("/root.tar.bz2")
        rc, res, err = run_tool("fetch", self.http.base + "/root.tar.bz2", os.path.join(self.work, "o"),
                                "--backoff", "0.05")
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["attempts"], 2)

    def test_errors(self):
        """Missing files, refused connections, size limits and redirect loops fail with their codes."""
        o = os.path.join(self.work, "o")
        rc, _, err = run_tool("fetch", self.http.base + "/nope.tar", o)
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("NOT_FOUND:"), err)
        self.assertIn("/nope.tar", err)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        rc, _, err = run_tool("fetch", f"http://127.0.0.1:{port}/x", o, "--retries", "2", "--backoff", "0.01")
        self.assertTrue(err.startswith("UNAVAILABLE:") and "after 3 attempts" in err, err)
        rc, _, err = run_tool("fetch", self.http.base + "/root.tar", o, "--max-bytes", "100000")
        self.assertTrue(err.startswith("RESOURCE_EXHAUSTED:"), err)
        rc, _, err = run_tool("fetch", self.http.base + "/redirect/3/root.tar.gz", o, "--max-redirects", "5")
        self.assertEqual(rc, 0, err)
        rc, _, err = run_tool("fetch", self.http.base + "/redirect/9/root.tar.gz", o, "--max-redirects", "5")
        self.assertTrue(err.startswith("FAILED_PRECONDITION:") and "redirect" in err.lower(), err)
        rc, _, err = run_tool("fetch", "gopher://127.0.0.1/x", o)
        self.assertTrue(err.startswith("INVALID_ARGUMENT:"), err)
        rc, _, err = run_tool("fetch", self.http.base + "/to-file", o)
        self.assertEqual(rc, 1, "a redirect to file:// was followed")
        self.assertTrue(err.startswith("INVALID_ARGUMENT:"), err)

    def test_size_limit_before_and_while_streaming(self):
        """max_bytes refuses an announced size before the body, and a body without one as it passes the limit; both name the setting."""
        o = os.path.join(self.work, "o")
        rc, _, err = run_tool("fetch", self.http.base + "/root.tar", o, "--max-bytes", "100000")
        self.assertTrue(err.startswith("RESOURCE_EXHAUSTED:"), err)
        self.assertIn("the announced size is more than the limit of 100000 bytes", err)
        self.assertIn("[images] max_download_size", err)
        rc, _, err = run_tool("fetch", self.http.base + "/nolength/root.tar", o, "--max-bytes", "100000",
                              "--retries", "0")
        self.assertTrue(err.startswith("RESOURCE_EXHAUSTED:"), err)
        self.assertIn("more than the limit of 100000 bytes arrived", err)
        self.assertIn("[images] max_download_size", err)
        rc, _, err = run_tool("fetch", self.http.base + "/nolength/root.tar", o)
        self.assertEqual(rc, 0, err)

    def fetch_stalled(self, *options):
        """Fetches from a server that sends its headers, then nothing; returns the error, within 20 s."""
        t0 = time.monotonic()
        _, _, err = run_tool("fetch", self.http.base + "/stall/root.tar.gz", os.path.join(self.work, "o"), *options)
        self.assertLess(time.monotonic() - t0, 20)
        return err

    def test_total_timeout(self):
        """A download that does not end within the total timeout is DEADLINE_EXCEEDED naming the setting."""
        err = self.fetch_stalled("--timeout", "1", "--low-speed-time", "60")
        self.assertTrue(err.startswith("DEADLINE_EXCEEDED:"), err)
        self.assertIn("[images] fetch_timeout", err)

    def test_stalled_transfer_is_cut(self):
        """A server that stops sending is cut by the low-speed limit, naming the setting."""
        err = self.fetch_stalled("--low-speed-time", "1", "--retries", "0")
        self.assertTrue(err.startswith("UNAVAILABLE:"), err)
        self.assertIn("[images] fetch_stall_timeout", err)

    def test_https_needs_a_trusted_ca(self):
        """HTTPS with the test CA works; without it the certificate is not trusted."""
        o = os.path.join(self.work, "o")
        rc, _, err = run_tool("fetch", self.https.base + "/root.tar.gz", o)
        self.assertTrue(err.startswith("FAILED_PRECONDITION:") and "not trusted" in err, err)
        rc, _, err = run_tool("fetch", self.https.base + "/root.tar.gz", o, "--ca", self.ca)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256_of(o), sha256_of(os.path.join(self.www, "root.tar.gz")))

    def test_ftp_fetch(self):
        """FTP downloads arrive whole; a missing file is NOT_FOUND."""
        o = os.path.join(self.work, "o")
        rc, _, err = run_tool("fetch", self.ftp.base + "/root.tar.zst", o)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256_of(o), sha256_of(os.path.join(self.www, "root.tar.zst")))
        rc, _, err = run_tool("fetch", self.ftp.base + "/nope", o)
        self.assertTrue(err.startswith("NOT_FOUND:"), err)

    # --- import: fetch, verify, unpack ---

    def check_imported(self, res):
        self.assertTrue(res["signed"], res)
        self.assertEqual(res["key_id"], self.key_id)
        self.assertEqual(res["trusted_comment"], "xenctl test image")
        self.assertEqual(tree(self.dest), self.src_tree)

    def test_signed_import_over_each_protocol_and_compression(self):
        """A minisign-signed archive imports the same tree over http, https, ftp and file, in each compression."""
        cases = [(self.http.base, "root.tar.gz", "gzip"), (self.https.base, "root.tar.xz", "xz"),
                 (self.ftp.base, "root.tar.zst", "zstd"), ("file://" + self.www, "root.tar.bz2", "bzip2"),
                 (self.http.base, "root.tar", "none")]
        for base, name, flt in cases:
            with self.subTest(uri=base + "/" + name):
                rc, res, err = self.import_(base + "/" + name, "--ca", self.ca)
                self.assertEqual(rc, 0, err)
                self.check_imported(res)
                self.assertEqual(res["filter"], flt)
                self.assertEqual(res["sha256"], sha256_of(os.path.join(self.www, name)))
                self.remove_dest()

    def test_interrupted_import_resumes(self):
        """An import whose download drops halfway resumes and unpacks the same tree, in one pass."""
        self.http.httpd.drop_once.add("/root.tar.gz")
        rc, res, err = self.import_(self.http.base + "/root.tar.gz")
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["resumes"], 1)
        self.check_imported(res)

    def test_remote_unsigned_refused(self):
        """A remote image without a signature is refused unless unsigned images are allowed."""
        self.publish("unsigned.tar.gz", read_bytes(os.path.join(self.www, "root.tar.gz")))
        rc, _, err = self.import_(self.http.base + "/unsigned.tar.gz")
        self.assert_refused(rc, err, "FAILED_PRECONDITION", "no signature at", "unsigned.tar.gz.minisig")
        rc, res, err = self.import_(self.http.base + "/unsigned.tar.gz", "--policy", "none")
        self.assertEqual(rc, 0, err)
        self.assertFalse(res["signed"])

    def test_wrong_signature_refused_nothing_kept(self):
        """An image altered after signing is DATA_LOSS, and nothing is kept."""
        path = self.publish("tampered.tar.gz", read_bytes(os.path.join(self.www, "root.tar.gz")))
        minisign_sign(self.sec, path)
        with open(path, "ab") as f:
            f.write(b"\0" * 1024)  # gzip ignores trailing zeros; the signature does not
        rc, _, err = self.import_(self.http.base + "/tampered.tar.gz")
        self.assert_refused(rc, err, "DATA_LOSS", f"key {self.key_id} does not match the data", "nothing was kept")

    def test_untrusted_signer_refused(self):
        """An image signed by another key is refused, naming both keys."""
        path = self.publish("other.tar.gz", read_bytes(os.path.join(self.www, "root.tar.gz")))
        minisign_sign(self.other_sec, path)
        rc, _, err = self.import_(self.http.base + "/other.tar.gz")
        self.assert_refused(rc, err, "DATA_LOSS", self.other_id, self.key_id, "not a trusted key")
        rc, res, err = run_tool("import", self.http.base + "/other.tar.gz", self.dest, "--key", self.other_pub)
        self.assertEqual(rc, 0, err)

    def test_legacy_signature_refused_clearly(self):
        """A legacy (non-prehashed) minisign signature cannot be checked on a stream and says how to re-sign."""
        path = self.publish("legacy.tar.gz", read_bytes(os.path.join(self.www, "root.tar.gz")))
        minisign_sign(self.sec, path, legacy=True)
        rc, _, err = self.import_(self.http.base + "/legacy.tar.gz")
        self.assert_refused(rc, err, "FAILED_PRECONDITION", "legacy minisign signature")

    def test_wrong_digest_refused_nothing_kept(self):
        """A wrong expected SHA-256 is DATA_LOSS with both digests, and nothing is kept."""
        actual = sha256_of(os.path.join(self.www, "root.tar.gz"))
        wrong = "0" * 64
        rc, _, err = self.import_(self.http.base + "/root.tar.gz", "--sha256", wrong)
        self.assert_refused(rc, err, "DATA_LOSS", f"expected {wrong}", f"got {actual}")
        rc, res, err = self.import_(self.http.base + "/root.tar.gz", "--sha256", actual)
        self.assertEqual(rc, 0, err)
        self.assertTrue(res["digest_checked"])

    def test_sha256sums_beside_the_image(self):
        """SHA256SUMS beside the image gives the expected digest."""
        d = os.path.join(self.www, "sums")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(self.www, "root.tar.gz"), d)
        sums = subprocess.run(["sha256sum", "root.tar.gz"], cwd=d, check=True, capture_output=True).stdout
        with open(os.path.join(d, "SHA256SUMS"), "wb") as f:
            f.write(sums)
        rc, res, err = self.import_(self.http.base + "/sums/root.tar.gz", "--policy", "none")
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["digest_source"], "SHA256SUMS")
        self.remove_dest()
        with open(os.path.join(d, "root.tar.gz"), "ab") as f:
            f.write(b"\0" * 512)
        rc, _, err = self.import_(self.http.base + "/sums/root.tar.gz", "--policy", "none")
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("DATA_LOSS:") and "(SHA256SUMS)" in err, err)

    def test_raw_ext4_image(self):
        """A zstd-compressed raw ext4 image (mkfs.ext4 -d) is copied sparse, byte for byte."""
        img = os.path.join(self.work, "fs.img")
        sh("mkfs.ext4", "-q", "-F", "-d", self.src, img, "32M")
        sh("zstd", "-q", "-f", "-o", os.path.join(self.www, "fs.img.zst"), img)
        minisign_sign(self.sec, os.path.join(self.www, "fs.img.zst"))
        rc, res, err = self.import_(self.http.base + "/fs.img.zst")
        self.assertEqual(rc, 0, err)
        self.assertEqual((res["kind"], res["filter"]), ("raw-ext", "zstd"))
        self.assertEqual(sha256_of(self.dest), sha256_of(img))
        self.assertLess(os.stat(self.dest).st_blocks * 512, 32 << 20)
        os.unlink(img)

    # --- export (the paper's create) ---

    def test_export_then_import_round_trips(self):
        """A tree exported (cpio.gz, tar.zst) to file://, HTTP PUT and FTP imports back as the same tree."""
        cases = [("file://" + os.path.join(self.work, "out.cpio.gz"), "cpio.gz", os.path.join(self.work, "out.cpio.gz")),
                 (self.http.base + "/uploads/a/root.tar.zst", "tar.zst", os.path.join(self.www, "uploads/a/root.tar.zst")),
                 (self.ftp.base + "/uploads/b/root.cpio.gz", "cpio.gz", os.path.join(self.www, "uploads/b/root.cpio.gz"))]
        for uri, fmt, stored in cases:
            with self.subTest(uri=uri):
                rc, res, err = run_tool("export", self.src, uri, "--format", fmt)
                self.assertEqual(rc, 0, err)
                self.assertEqual(res["sha256"], sha256_of(stored))
                rc, res, err = run_tool("import", uri, self.dest, "--sha256", res["sha256"], "--policy", "digest")
                self.assertEqual(rc, 0, err)
                self.assertEqual(tree(self.dest), self.src_tree)
                self.remove_dest()
                os.unlink(stored)
        rc, _, err = run_tool("export", self.src, self.http.base + "/forbidden/x.tar.zst")
        self.assertTrue(err.startswith("PERMISSION_DENIED:") and "storing" in err, err)

    # --- hostile archives ---

    def hostile(self, name, build):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
            build(t)
        path = self.publish(name, buf.getvalue())
        minisign_sign(self.sec, path)
        return self.http.base + "/" + name

    def test_hostile_archives_refused(self):
        """Each hostile archive is refused with a clear error and writes nothing outside the target."""
        outside = os.path.join(self.tmp, "outside")
        os.makedirs(outside, exist_ok=True)
        with open(os.path.join(outside, "secret"), "w") as f:
            f.write("unchanged")

        def reg(t, name, data=b"pwned", mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            t.addfile(ti, io.BytesIO(data))

        def link(t, name, target, kind):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = kind, target
            t.addfile(ti)

        def dev(t, name):
            ti = tarfile.TarInfo(name)
            ti.type, ti.devmajor, ti.devminor = tarfile.BLKTYPE, 8, 0
            t.addfile(ti)

        def many(t):
            for i in range(3000):
                reg(t, f"d/{i}", b"")

        rel = os.path.relpath(outside, self.work)  # from the staging dir's level
        corpus = [
            ("dotdot", lambda t: reg(t, f"../../{rel}/new"), "INVALID_ARGUMENT", "contains '..'"),
            ("absolute", lambda t: reg(t, f"{outside}/new"), "INVALID_ARGUMENT", "absolute name"),
            ("symlink-write", lambda t: (link(t, "evil", outside, tarfile.SYMTYPE), reg(t, "evil/secret")),
             "INVALID_ARGUMENT", "goes through 'evil'"),
            ("symlink-rel-write", lambda t: (link(t, "evil", "../../../outside", tarfile.SYMTYPE),
                                             reg(t, "evil/new")), "INVALID_ARGUMENT", "goes through 'evil'"),
            ("hardlink-out", lambda t: link(t, "h", f"{outside}/secret", tarfile.LNKTYPE), "INVALID_ARGUMENT",
             "absolute name"),
            ("hardlink-dotdot", lambda t: link(t, "h", f"../../{rel}/secret", tarfile.LNKTYPE),
             "INVALID_ARGUMENT", "contains '..'"),
            ("device", lambda t: dev(t, "dev/sda"), "PERMISSION_DENIED", "'dev/sda' is a block device node"),
            ("setuid", lambda t: reg(t, "usr/bin/su", b"#!", 0o4755), "PERMISSION_DENIED", "set-user-id"),
            ("many", many, "RESOURCE_EXHAUSTED", "more than 1000 entries"),
        ]
        for name, build, code, needle in corpus:
            with self.subTest(archive=name):
                uri = self.hostile(f"hostile-{name}.tar.gz", build)
                rc, _, err = self.import_(uri, "--max-entries", "1000")
                self.assert_refused(rc, err, code, needle, f"hostile-{name}.tar.gz")
                self.assertEqual(os.listdir(outside), ["secret"])
                with open(os.path.join(outside, "secret")) as f:
                    self.assertEqual(f.read(), "unchanged")
                self.assertFalse(os.path.exists(os.path.join(self.tmp, "new")))


if __name__ == "__main__":
    unittest.main()


class DaemonImageTest(DaemonTestCase):
    """vm-image against the real xenctld (test hypervisor, a dir pool): imports
    over loopback HTTP signed by the real minisign, verified, unpacked into an
    ext4 base volume whose files are read back with debugfs."""

    start_daemon = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xenctl-dimg-")
        cls.www = os.path.join(cls.tmp, "www")
        os.makedirs(cls.www)
        cls.src = os.path.join(cls.tmp, "rootfs")
        make_rootfs(cls.src)
        cls.pub, cls.sec, cls.key_id = minisign_keygen(cls.tmp, "trusted")
        tar_of(cls.src, os.path.join(cls.www, "root.tar.gz"), "w:gz")
        minisign_sign(cls.sec, os.path.join(cls.www, "root.tar.gz"))
        shutil.copy(os.path.join(cls.www, "root.tar.gz"), os.path.join(cls.www, "unsigned.tar.gz"))
        os.makedirs(os.path.join(cls.www, "lab"))
        shutil.copy(os.path.join(cls.www, "root.tar.gz"), os.path.join(cls.www, "lab", "unsigned.tar.gz"))
        os.makedirs(os.path.join(cls.www, "sums"))
        shutil.copy(os.path.join(cls.www, "root.tar.gz"), os.path.join(cls.www, "sums", "root.tar.gz"))
        shutil.copy(os.path.join(cls.www, "root.tar.gz.minisig"), os.path.join(cls.www, "sums", "root.tar.gz.minisig"))
        with open(os.path.join(cls.www, "sums", "SHA256SUMS"), "w", encoding="utf-8") as f:
            f.write(f"{sha256_of(os.path.join(cls.www, 'root.tar.gz'))}  root.tar.gz\n")
        cls.http = HttpServer(cls.www)
        cls.ftp_root = os.path.join(cls.tmp, "ftp")
        os.makedirs(cls.ftp_root)
        shutil.copy(os.path.join(cls.www, "root.tar.gz"), os.path.join(cls.ftp_root, "root.tar.gz"))
        cls.ftp = FtpServer(cls.ftp_root)

    @classmethod
    def tearDownClass(cls):
        cls.http.stop()
        cls.ftp.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.pool_dir = os.path.join(self.workdir, "pool")
        config = os.path.join(self.workdir, "xenctld.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'[[pool]]\nname = "main"\npath = "{self.pool_dir}"\n'
                    f'[images]\ntrusted_keys = ["{self.pub}"]\n'
                    f'[[images.source]]\nprefix = "{self.http.base}/uploads/"\nallow_unsigned_requests = true\n'
                    f'[[images.source]]\nprefix = "{self.http.base}/lab/"\npolicy = "none"\n'
                    f'[[images.source]]\nprefix = "{self.ftp.base}/"\npolicy = "none"\n')
        self.daemon = Daemon(self.workdir, extra_args=["--config", config])
        self.daemon.start()
        self.addCleanup(self.daemon.stop)

    def image(self, *args, expect=0):
        return self.vm("image", *args, expect=expect)

    def debugfs_cat(self, image, path):
        return subprocess.run(["debugfs", "-R", f"cat {path}", image], capture_output=True, check=True).stdout

    def test_import_list_delete(self):
        """A signed image imports into an ext4 base volume holding the tree; delete waits for its clones."""
        uri = self.http.base + "/root.tar.gz"
        img = self.image("import", "golden", uri, "--json").json()
        self.assertEqual(img["signed_by"], self.key_id)
        self.assertEqual(img["sha256"], sha256_of(os.path.join(self.www, "root.tar.gz")))
        self.assertEqual(img["base_volume"], "main/golden")
        vol = os.path.join(self.pool_dir, "golden.img")
        self.assertEqual(self.debugfs_cat(vol, "/etc/hostname"), b"golden\n")
        self.assertEqual(hashlib.sha256(self.debugfs_cat(vol, "/usr/bin/blob")).hexdigest(),
                         sha256_of(os.path.join(self.src, "usr/bin/blob")))
        self.assertEqual([i["name"] for i in self.image("list", "--json").json()], ["golden"])
        ops = self.vmm("ops", "--all", "--json").json()
        imports = [o for o in ops if o["kind"] == "import-image"]
        self.assertEqual(len(imports), 1, ops)
        self.assertEqual((imports[0]["state"], imports[0]["target"]), ("OPERATION_STATE_SUCCEEDED", "golden"))

        self.vm("volume", "clone", "golden", "web1")
        self.assertEqual(self.image("list", "--json").json()[0]["clones"], 1)
        r = self.image("delete", "golden", expect=1)
        self.assertIn("web1", r.err)
        self.vm("volume", "delete", "web1")
        self.image("delete", "golden")
        self.assertEqual(self.image("list", "--json").json(), [])
        self.assertFalse(os.path.exists(vol))

    def test_export_directory_and_volume(self):
        """vm-image export packs a directory (tar.zst to file://) and an image's volume (cpio.gz, HTTP PUT); both import back."""
        out = os.path.join(self.workdir, "exported.tar.zst")
        done = self.image("export", self.src, "file://" + out, "--format", "tar.zst", "--json").json()
        self.assertEqual(done["state"], "OPERATION_STATE_SUCCEEDED")
        self.assertIn(sha256_of(out), done["message"])
        self.image("import", "fromdir", "file://" + out, "--sha256", sha256_of(out))
        vol = os.path.join(self.pool_dir, "fromdir.img")
        self.assertEqual(self.debugfs_cat(vol, "/etc/hostname"), b"golden\n")

        uri = self.http.base + "/uploads/golden.cpio.gz"
        self.image("export", "vol:main/fromdir", uri)
        self.image("import", "again", uri, "--allow-unsigned")
        vol = os.path.join(self.pool_dir, "again.img")
        self.assertEqual(hashlib.sha256(self.debugfs_cat(vol, "/usr/bin/blob")).hexdigest(),
                         sha256_of(os.path.join(self.src, "usr/bin/blob")))
        r = self.image("export", "relative/dir", "file:///tmp/x.cpio.gz", expect=2)
        self.assertIn("neither an absolute directory nor vol:POOL/NAME", r.err)
        self.image("export", "vol:main/nope", "file:///tmp/x.cpio.gz", expect=3)

    def test_ftp_import_and_export_through_the_helper(self):
        """Over FTP, an import (RETR) and an export (STOR) go through xenctl-fetch; the daemon never maps libcurl."""
        digest = sha256_of(os.path.join(self.ftp_root, "root.tar.gz"))
        self.image("import", "viaftp", self.ftp.base + "/root.tar.gz", "--sha256", digest)
        self.assertEqual(self.debugfs_cat(os.path.join(self.pool_dir, "viaftp.img"), "/etc/hostname"), b"golden\n")
        self.image("export", "vol:main/viaftp", self.ftp.base + "/up/viaftp.cpio.gz")
        stored = os.path.join(self.ftp_root, "up", "viaftp.cpio.gz")
        self.image("import", "backftp", self.ftp.base + "/up/viaftp.cpio.gz", "--sha256", sha256_of(stored))
        self.assertEqual(self.debugfs_cat(os.path.join(self.pool_dir, "backftp.img"), "/etc/hostname"), b"golden\n")
        with open(f"/proc/{self.daemon.proc.pid}/maps", encoding="utf-8") as f:
            maps = f.read()
        self.assertNotIn("libcurl", maps)
        self.assertNotIn("libsystemd", maps)

    def test_refusals_keep_nothing(self):
        """Unsigned remote images are refused, --allow-unsigned too unless their source allows it; a wrong digest is refused; nothing is left."""
        uri = self.http.base + "/unsigned.tar.gz"
        r = self.image("import", "u", uri, expect=1)
        self.assertIn("no signature at", r.err)
        self.assertIn("the default for remote URIs", r.err)
        r = self.image("import", "u", uri, "--allow-unsigned", expect=1)
        self.assertIn(f"importing {uri}: the default for remote URIs (no [[images.source]] matches) wants a "
                      "signature by a trusted key", r.err)
        self.assertIn("add an [[images.source]]", r.err)
        r = self.image("import", "w", self.http.base + "/root.tar.gz", "--sha256", "0" * 64, expect=1)
        self.assertIn("SHA-256 mismatch", r.err)
        self.assertEqual(self.image("list", "--json").json(), [])
        self.assertEqual([v for v in os.listdir(self.pool_dir) if not v.startswith(".")], [])
        self.image("import", "u", self.http.base + "/lab/unsigned.tar.gz")  # its source's policy is none
        self.assertEqual([i["signed_by"] for i in self.image("list", "--json").json()], [""])

    def test_sha256sums_digest_already_imported_is_not_fetched(self):
        """With SHA256SUMS beside it, an image whose SHA-256 is in the catalog is cloned, not downloaded again."""
        uri = self.http.base + "/sums/root.tar.gz"
        self.image("import", "first", uri)
        gets = lambda: sum(1 for path, _ in self.http.httpd.log if path == "/sums/root.tar.gz")
        self.assertEqual(gets(), 1)
        img = self.image("import", "second", uri, "--json").json()
        self.assertEqual(gets(), 1, "the image was downloaded again")
        self.assertEqual(img["sha256"], sha256_of(os.path.join(self.www, "sums", "root.tar.gz")))
        self.assertEqual(img["signed_by"], self.key_id)
        self.assertEqual({i["name"]: i["clones"] for i in self.image("list", "--json").json()},
                         {"first": 1, "second": 0})
