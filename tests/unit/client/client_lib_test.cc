// Unit tests of client/lib: addresses, flag values, proto conversion, output, exit codes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "client/lib/client.h"
#include "client/lib/exit_codes.h"
#include "client/lib/output.h"
#include "client/lib/specs.h"
#include "client/lib/table.h"
#include "client/lib/target.h"

namespace xenctl::client {
namespace {

// The flag wins over the environment, which wins over the default socket.
// gRPC's refusal of a request over the daemon's limit names [daemon]
// max_request_size and its value, but only for the request that was sent.
TEST(ClientTest, OversizeRequestNamesTheDaemonSetting) {
  std::optional<std::string> why = oversizeRequest("Received message larger than max (1048700 vs. 1048576)", 1048700);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "the request is 1048700 bytes, more than xenctld takes: 1048576 bytes ([daemon] max_request_size "
                  "in its config); send less, or raise it");
  EXPECT_FALSE(oversizeRequest("Received message larger than max (5000000 vs. 4194304)", 120));  // a reply
  EXPECT_FALSE(oversizeRequest("too many operations", 1048700));
}

TEST(TargetTest, ResolvesFlagThenEnvThenDefault) {
  auto t = resolveTarget("unix:/tmp/a.sock", "unix:/tmp/b.sock");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->grpc_target, "unix:/tmp/a.sock");
  EXPECT_EQ(t->source, "--connect");
  t = resolveTarget("", "unix:/tmp/b.sock");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->grpc_target, "unix:/tmp/b.sock");
  EXPECT_EQ(t->source, "XENCTL_CONNECT");
  t = resolveTarget("", "");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->grpc_target, "unix:/run/xenctld/xenctld.sock");
  EXPECT_EQ(t->source, "default");
  t = resolveTarget("", nullptr);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->address, "unix:/run/xenctld/xenctld.sock");
}

// Each TLS file comes from its flag, else its variable.
TEST(TargetTest, ResolvesTlsFilesFlagThenEnv) {
  TlsFiles flags{"/flag/cert.pem", "", ""};
  TlsFiles got = resolveTlsFiles(flags, "/env/cert.pem", "/env/key.pem", nullptr);
  EXPECT_EQ(got.cert, "/flag/cert.pem");
  EXPECT_EQ(got.key, "/env/key.pem");
  EXPECT_EQ(got.ca, "");
}

// A tcp: target without the three TLS files is refused before any connection, naming what is missing.
TEST(TargetTest, TcpNeedsTlsFiles) {
  auto t = parseTarget("tcp:dom0.example:7443", "--connect");
  ASSERT_TRUE(t.ok());
  auto c = Client::connect(*t, TlsFiles{"/c.pem", "", ""}, absl::Seconds(1), absl::Seconds(1));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  EXPECT_EQ(c.status().message(),
            "connecting to tcp:dom0.example:7443 needs mutual TLS: give --key (or $XENCTL_KEY), --ca (or $XENCTL_CA): "
            "the client certificate and key, and the CA of xenctld's certificate");
  c = Client::connect(*t, TlsFiles{"/nonexistent/c.pem", "/k.pem", "/ca.pem"}, absl::Seconds(1), absl::Seconds(1));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  EXPECT_EQ(c.status().message(), "reading --cert /nonexistent/c.pem: No such file or directory");
  EXPECT_EQ(exitCodeFor(c.status()), 2);
}

// gRPC wants an absolute path after "unix:".
TEST(TargetTest, MakesUnixPathsAbsolute) {
  auto t = parseTarget("unix:run/x.sock", "--connect");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->endpoint.starts_with("/")) << t->endpoint;
  EXPECT_TRUE(t->endpoint.ends_with("/run/x.sock")) << t->endpoint;
  EXPECT_EQ(t->grpc_target, "unix:" + t->endpoint);
}

TEST(TargetTest, ParsesTcp) {
  auto t = parseTarget("tcp:dom0.example:7443", "--connect");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, Target::Kind::kTcp);
  EXPECT_EQ(t->grpc_target, "dom0.example:7443");
  t = parseTarget("tcp:[::1]:7443", "--connect");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->grpc_target, "[::1]:7443");
}

// A bad address is a usage error naming the address, its source and the forms.
TEST(TargetTest, RejectsBadAddresses) {
  for (const char* bad : {"foo", "unix:", "tcp:host", "tcp:host:0", "tcp:host:99999", "tcp:::1:80", "http://x"}) {
    auto t = parseTarget(bad, "XENCTL_CONNECT");
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(bad), std::string::npos) << t.status();
    EXPECT_NE(t.status().message().find("XENCTL_CONNECT"), std::string::npos) << t.status();
    EXPECT_NE(t.status().message().find("unix:PATH or tcp:HOST:PORT"), std::string::npos) << t.status();
  }
}

TEST(SpecsTest, ParsesPositionalDisk) {
  auto d = parseDiskSpec("/dev/vg0/web1,xvda,w");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target, "/dev/vg0/web1");
  EXPECT_EQ(d->vdev, "xvda");
  EXPECT_EQ(d->mode, "w");
  d = parseDiskSpec("vol:pool/web1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->target, "vol:pool/web1");
  EXPECT_EQ(d->vdev, "");
  EXPECT_EQ(d->mode, "");  // the daemon's default
  d = parseDiskSpec("/srv/b.img,xvdb,ro");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->mode, "r");
}

TEST(SpecsTest, ParsesKeyedDisk) {
  auto d = parseDiskSpec("target=/srv/a.img,vdev=xvdb,access=rw,format=raw");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target, "/srv/a.img");
  EXPECT_EQ(d->vdev, "xvdb");
  EXPECT_EQ(d->mode, "w");
  EXPECT_EQ(d->format, "raw");
}

TEST(SpecsTest, RejectsBadDisks) {
  for (const char* bad : {"", ",xvda", "/a,xvda,x", "/a,xvda,w,extra", "target=/a,colour=red", "vdev=xvda"}) {
    auto d = parseDiskSpec(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("--disk"), std::string::npos);
  }
}

TEST(SpecsTest, ParsesVif) {
  auto v = parseVifSpec("bridge=xenbr0,mac=00:16:3e:00:00:01,ip=10.0.0.2");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bridge, "xenbr0");
  EXPECT_EQ(v->mac, "00:16:3e:00:00:01");
  EXPECT_EQ(v->ip, "10.0.0.2");
  v = parseVifSpec("");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, core::VifSpec{});
  auto bad = parseVifSpec("bridge=xenbr0,model=e1000");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'model'"), std::string::npos) << bad.status();
  EXPECT_FALSE(parseVifSpec("xenbr0").ok());
}

// Flag values become the request; unset choices carry core's defaults, which are the daemon's.
TEST(SpecsTest, BuildsCreateArgs) {
  CreateFlags f;
  f.name = "web1";
  f.memory = "1G";
  f.maxmem = "2048";
  f.vcpus = 2;
  f.disks = {"/dev/vg0/web1,xvda,w"};
  f.vifs = {"bridge=xenbr0"};
  f.on_crash = "preserve";
  auto req = createArgsFromFlags(f, "req-1");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->request_id(), "req-1");
  EXPECT_EQ(req->spec().name(), "web1");
  EXPECT_EQ(req->spec().memory_mib(), 1024u);
  EXPECT_EQ(req->spec().maxmem_mib(), 2048u);
  EXPECT_EQ(req->spec().vcpus(), 2u);
  EXPECT_EQ(req->spec().type(), v1::DOMAIN_TYPE_PVH);
  EXPECT_EQ(req->spec().on_poweroff(), v1::LIFECYCLE_ACTION_DESTROY);
  EXPECT_EQ(req->spec().on_crash(), v1::LIFECYCLE_ACTION_PRESERVE);
  EXPECT_EQ(req->spec().on_reboot(), v1::LIFECYCLE_ACTION_RESTART);
  ASSERT_EQ(req->spec().disks_size(), 1);
  EXPECT_EQ(req->spec().disks(0).vdev(), "xvda");
  ASSERT_EQ(req->spec().vifs_size(), 1);
  EXPECT_EQ(req->spec().vifs(0).bridge(), "xenbr0");
}

TEST(SpecsTest, CreateArgsErrorsNameTheFlag) {
  CreateFlags f;
  f.name = "web1";
  f.vcpus = 1;
  f.memory = "lots";
  auto a = createArgsFromFlags(f, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--memory: invalid size 'lots'")) << a.status();
  f.memory = "512M";
  f.type = "kvm";
  a = createArgsFromFlags(f, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--type: unknown domain type 'kvm'")) << a.status();
  f.type = "hvm";
  f.on_reboot = "explode";
  a = createArgsFromFlags(f, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--on-reboot:")) << a.status();
}

// A temporary file that is removed with the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/xenctl-client-test-XXXXXX";
    int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    path_ = tmpl;
    EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An existing file as NAME, without spec flags, or --xl-config FILE: the file's text is sent, not a spec.
TEST(SpecsTest, XlConfigFromNameOrFlagIsSentAsText) {
  TempFile file("name = 'web1'\nmemory = 256\n");
  CreateFlags f;
  f.name = file.path();
  f.paused = true;
  auto req = createArgs(f, "", {}, "req-2");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->source_case(), v1::CreateDomainRequest::kXlConfig);
  EXPECT_EQ(req->xl_config().file_name(), file.path());
  EXPECT_EQ(req->xl_config().text(), "name = 'web1'\nmemory = 256\n");
  EXPECT_TRUE(req->paused());
  EXPECT_FALSE(req->has_spec());

  f.name.clear();
  req = createArgs(f, file.path(), {}, "req-3");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->xl_config().file_name(), file.path());
}

// --image makes a root with its customizations; local files are read; --ip adds a vif.
TEST(SpecsTest, ImageFlagsBuildTheRootAndItsCustomizations) {
  TempFile key("ssh-ed25519 AAAAC3Nza one@host\n# a comment\n\nssh-ed25519 AAAAC3Nzb two@host\r\n");
  TempFile motd("Welcome\n");
  TempFile user_data("#cloud-config\n");
  CreateFlags f;
  f.name = "web1";
  f.image = "debian-12";
  f.pool = "thin";
  f.root_size = "8G";
  f.hostname = "web1";
  f.ssh_key_files = {key.path()};
  f.ssh_user = "admin";
  f.files = {"/etc/motd=@" + motd.path(), "/etc/issue=hello=world"};
  f.users = {"alice:$6$salt$hash:sudo,adm", "bob"};
  f.ip = "10.0.0.5/24";
  f.gateway = "10.0.0.1";
  f.dns = {"10.0.0.53,10.0.0.54", "10.0.0.55"};
  f.user_data_file = user_data.path();
  TempFile container("[hostname web1 archive root][end]\n");
  f.container_file = container.path();
  f.keep_identity = true;
  auto a = createArgs(f, "", {"--ip"}, "r");
  ASSERT_TRUE(a.ok()) << a.status();
  const v1::CreateDomainRequest& req = *a;
  EXPECT_EQ(req.spec().memory_mib(), kImageDefaultMemoryMib);  // --memory and --vcpus may be left out with --image
  EXPECT_EQ(req.spec().vcpus(), kImageDefaultVcpus);
  ASSERT_EQ(req.spec().vifs_size(), 1);
  EXPECT_EQ(req.spec().vifs(0).bridge(), "");  // Xen's default bridge
  EXPECT_EQ(req.spec().vifs(0).ip(), "10.0.0.5/24");
  EXPECT_EQ(req.root().image(), "debian-12");
  EXPECT_EQ(req.root().pool(), "thin");
  EXPECT_EQ(req.root().size_mib(), 8192u);
  EXPECT_TRUE(req.keep_identity());
  ASSERT_EQ(req.customizations_size(), 9);
  EXPECT_EQ(req.customizations(0).hostname(), "web1");
  EXPECT_EQ(req.customizations(1).file().path(), "/etc/motd");
  EXPECT_EQ(req.customizations(1).file().content(), "Welcome\n");
  EXPECT_EQ(req.customizations(2).file().content(), "hello=world");
  EXPECT_EQ(req.customizations(3).ssh_authorized_keys().user(), "admin");
  EXPECT_EQ(req.customizations(3).ssh_authorized_keys().keys_size(), 2);
  EXPECT_EQ(req.customizations(3).ssh_authorized_keys().keys(1), "ssh-ed25519 AAAAC3Nzb two@host");
  EXPECT_EQ(req.customizations(4).user().password_hash(), "$6$salt$hash");
  EXPECT_EQ(req.customizations(4).user().groups_size(), 2);
  EXPECT_EQ(req.customizations(5).user().name(), "bob");
  EXPECT_EQ(req.customizations(6).cloud_init_user_data(), "#cloud-config\n");
  EXPECT_EQ(req.customizations(7).container_text(), "[hostname web1 archive root][end]\n");
  EXPECT_EQ(req.container_file_name(), container.path());
  EXPECT_EQ(req.customizations(8).network().vif(), 0u);
  EXPECT_EQ(req.customizations(8).network().gateway(), "10.0.0.1");
  EXPECT_EQ(req.customizations(8).network().dns_size(), 3);
}

// Customization flags without --image, --gateway without --ip, bad --file / --user values and keyless files are refused by name.
TEST(SpecsTest, ImageFlagErrorsNameTheFlag) {
  CreateFlags f;
  f.name = "web1";
  f.memory = "512";
  f.vcpus = 1;
  f.hostname = "web1";
  auto a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--hostname changes a root cloned from an image")) << a.status();
  f.hostname.clear();
  f.container_file = "/nonexistent/web1.container";
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--container changes a root cloned from an image")) << a.status();
  f.image = "golden";
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--container: cannot read '/nonexistent/web1.container'"))
      << a.status();
  f.image.clear();
  f.container_file.clear();
  f.image = "golden";
  f.gateway = "10.0.0.1";
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--gateway completes the static address --ip gives"))
      << a.status();
  f.gateway.clear();
  f.files = {"etc/motd=x"};
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "invalid --file 'etc/motd=x'")) << a.status();
  f.files = {"/etc/motd=@/nonexistent/motd"};
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--file: cannot read '/nonexistent/motd'")) << a.status();
  f.files.clear();
  f.users = {"a:b:c:d"};
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "invalid --user 'a:b:c:d'")) << a.status();
  f.users.clear();
  TempFile empty("# no key here\n");
  f.ssh_key_files = {empty.path()};
  a = createArgs(f, "", {"--memory", "--vcpus"}, "r");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "holds no key")) << a.status();
  f.ssh_key_files.clear();
  f.ip = "10.0.0.5/24";
  f.vifs = {"bridge=xenbr0,ip=10.0.0.6/24"};
  a = createArgs(f, "", {"--memory", "--vcpus", "--ip", "--vif"}, "r");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "both give its address")) << a.status();
}

// Spec flags with a file, NAME with --xl-config, a missing file, and flags without --memory are refused.
TEST(SpecsTest, XlConfigConflictsAreRefused) {
  TempFile file("name = 'web1'\n");
  CreateFlags f;
  auto a = createArgs(f, file.path(), {"--memory", "--disk"}, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--memory, --disk cannot be combined with an xl config"))
      << a.status();
  f.name = "web1";
  a = createArgs(f, file.path(), {}, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::StrContains(a.status().message(), "drop 'web1'")) << a.status();
  f.name.clear();
  a = createArgs(f, "/nonexistent/x.cfg", {}, "r");
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
  a = createArgs(f, "/tmp", {}, "r");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "is not a regular file")) << a.status();
  // With spec flags an existing file's name is a domain NAME, so flags mode applies.
  f.name = file.path();
  a = createArgs(f, "", {"--vcpus"}, "r");
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::StartsWith(a.status().message(), "--memory is required")) << a.status();
  f.name.clear();
  a = createArgs(f, "", {}, "r");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "NAME")) << a.status();
}

TEST(ExitCodeTest, MapsStatusCodes) {
  EXPECT_EQ(exitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(exitCodeFor(absl::InvalidArgumentError("x")), kExitUsage);
  EXPECT_EQ(exitCodeFor(absl::NotFoundError("x")), kExitNotFound);
  EXPECT_EQ(exitCodeFor(absl::AlreadyExistsError("x")), kExitFailed);
  EXPECT_EQ(exitCodeFor(absl::FailedPreconditionError("x")), kExitFailed);
  // A server-side UNAVAILABLE is a failure; not reaching the daemon is exit 4.
  EXPECT_EQ(exitCodeFor(absl::UnavailableError("xenstored")), kExitFailed);
  EXPECT_EQ(exitCodeFor(markConnectError(absl::UnavailableError("no daemon"))), kExitCannotConnect);
}

// A failed operation carries the server's code and message; it maps like an RPC error.
TEST(OperationTest, StatusOfFinishedOperations) {
  v1::Operation op;
  op.set_id("op-1");
  op.set_kind("create-domain");
  op.set_target("web1");
  op.set_state(v1::OPERATION_STATE_SUCCEEDED);
  EXPECT_TRUE(operationStatus(op).ok());
  op.set_state(v1::OPERATION_STATE_FAILED);
  op.set_status_code(3);
  op.set_status_message("domain 'web1': memory 10 MiB is out of range");
  Status s = operationStatus(op);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), op.status_message());
  op.set_status_code(0);  // a daemon bug: failed without a code
  EXPECT_EQ(operationStatus(op).code(), absl::StatusCode::kUnknown);
  op.set_state(v1::OPERATION_STATE_RUNNING);
  EXPECT_EQ(operationStatus(op).code(), absl::StatusCode::kFailedPrecondition);
  op.set_state(v1::OPERATION_STATE_CANCELLED);
  EXPECT_EQ(operationStatus(op).code(), absl::StatusCode::kCancelled);
  EXPECT_NE(operationStatus(op).message().find("op-1"), std::string::npos);
}

v1::Domain sampleDomain() {
  v1::Domain d;
  v1::DomainSpec* s = d.mutable_spec();
  s->set_name("web1");
  s->set_uuid("6f1c0c3e-8d2a-4b57-9a43-0d1e2f3a4b5c");
  s->set_type(v1::DOMAIN_TYPE_PV);
  s->set_memory_mib(512);
  s->set_vcpus(2);
  s->set_maxvcpus(4);
  auto* disk = s->add_disks();
  disk->set_target("/dev/vg0/web1");
  disk->set_vdev("xvda");
  disk->set_mode("w");
  d.set_state(v1::DOMAIN_STATE_RUNNING);
  d.set_domid(7);
  d.set_vcpus_online(2);
  d.set_memory_mib(500);
  d.set_cpu_time_seconds(12.34);
  d.mutable_created_at()->set_seconds(1700000000);
  return d;
}

// --json is protobuf's JSON mapping with the .proto's names: spec nested, enums by name, 64-bit ints as strings.
TEST(OutputTest, DomainJsonIsTheMessageWithProtoFieldNames) {
  nlohmann::ordered_json j = toJson(sampleDomain());
  EXPECT_EQ(j["spec"]["name"], "web1");
  EXPECT_EQ(j["spec"]["uuid"], "6f1c0c3e-8d2a-4b57-9a43-0d1e2f3a4b5c");
  EXPECT_EQ(j["spec"]["type"], "DOMAIN_TYPE_PV");
  EXPECT_EQ(j["spec"]["vcpus"], 2);
  EXPECT_EQ(j["spec"]["maxvcpus"], 4);
  EXPECT_EQ(j["spec"]["memory_mib"], "512");
  EXPECT_EQ(j["spec"]["maxmem_mib"], "0");  // as sent: 0 means "= memory"
  EXPECT_EQ(j["spec"]["on_poweroff"], "LIFECYCLE_ACTION_UNSPECIFIED");
  EXPECT_EQ(j["spec"]["disks"][0]["target"], "/dev/vg0/web1");
  EXPECT_EQ(j["spec"]["vifs"], nlohmann::ordered_json::array());
  EXPECT_EQ(j["spec"]["bootloader_args"], nlohmann::ordered_json::array());
  EXPECT_EQ(j["state"], "DOMAIN_STATE_RUNNING");
  EXPECT_EQ(j["domid"], "7");
  EXPECT_EQ(j["vcpus_online"], 2);
  EXPECT_EQ(j["memory_mib"], "500");
  EXPECT_EQ(j["cpu_time_seconds"], 12.34);
  EXPECT_EQ(j["foreign"], false);
  EXPECT_EQ(j["state_reason"], "");
  EXPECT_EQ(j["created_at"], "2023-11-14T22:13:20Z");
  // The printer's order (spec first), not the alphabet's.
  EXPECT_EQ(j.begin().key(), "spec");
}

// Default scalars are printed; an unset timestamp is left out; a list is a JSON array of the messages.
TEST(OutputTest, StoppedDomainJsonAndLists) {
  v1::Domain d = sampleDomain();
  d.set_state(v1::DOMAIN_STATE_STOPPED);
  d.set_domid(-1);
  d.set_foreign(false);
  d.clear_created_at();
  nlohmann::ordered_json j = toJson(d);
  EXPECT_EQ(j["state"], "DOMAIN_STATE_STOPPED");
  EXPECT_EQ(j["domid"], "-1");
  EXPECT_EQ(j["owner_uid"], "0");
  EXPECT_FALSE(j.contains("created_at"));
  EXPECT_EQ(toJson(Repeated<v1::Domain>()).dump(), "[]");
  EXPECT_EQ(toJson(one(d)).size(), 1u);
  EXPECT_EQ(toJson(one(d))[0], j);
}

// Like xl list: live figures while present, configured ones while not.
TEST(OutputTest, DomainTable) {
  v1::Domain running = sampleDomain();
  v1::Domain s = sampleDomain();
  s.mutable_spec()->set_name("db1");
  s.set_state(v1::DOMAIN_STATE_STOPPED);
  s.set_domid(-1);
  s.set_vcpus_online(0);
  s.set_memory_mib(0);
  Repeated<v1::Domain> both;
  *both.Add() = running;
  *both.Add() = s;
  EXPECT_EQ(domainTable(both),
            "Name  ID  Mem  VCPUs  State    Time(s)  UUID\n"
            "web1   7  500      2  running     12.3  6f1c0c3e-8d2a-4b57-9a43-0d1e2f3a4b5c\n"
            "db1    -  512      2  stopped        -  6f1c0c3e-8d2a-4b57-9a43-0d1e2f3a4b5c\n");
}

TEST(OutputTest, DomainDetails) {
  EXPECT_EQ(domainDetails(sampleDomain()),
            "name:           web1\n"
            "uuid:           6f1c0c3e-8d2a-4b57-9a43-0d1e2f3a4b5c\n"
            "state:          running\n"
            "domid:          7\n"
            "type:           pv\n"
            "vcpus:          2\n"
            "maxvcpus:       4\n"
            "memory:         512 MiB\n"
            "maxmem:         512 MiB\n"
            "vcpus_online:   2\n"
            "memory_current: 500 MiB\n"
            "cpu_time:       12.3 s\n"
            "disk:           target=/dev/vg0/web1,vdev=xvda,access=w\n"
            "on_poweroff:    destroy\n"
            "on_reboot:      restart\n"
            "on_crash:       destroy\n"
            "on_watchdog:    destroy\n"
            "foreign:        no\n"
            "created_at:     2023-11-14T22:13:20Z\n"
            "owner_uid:      0\n");
}

// An operation prints as its message; its progress line names a failure by the server's message.
TEST(OutputTest, OperationJsonAndLine) {
  v1::Operation p;
  p.set_id("op-00000000000000ab");
  p.set_kind("create-domain");
  p.set_target("web1");
  p.set_state(v1::OPERATION_STATE_FAILED);
  p.set_phase("define");
  p.set_percent(10);
  p.set_status_code(6);
  p.set_status_message("domain 'web1' already exists");
  nlohmann::ordered_json j = toJson(p);
  EXPECT_EQ(j["state"], "OPERATION_STATE_FAILED");
  EXPECT_EQ(j["status_code"], 6);
  EXPECT_EQ(j["bytes_done"], "0");
  EXPECT_FALSE(j.contains("finished_at"));
  EXPECT_EQ(operationLine(p),
            "op-00000000000000ab create-domain web1: failed, define 10%: domain 'web1' already exists");
}

// Host info prints as its message, pools included.
TEST(OutputTest, HostJson) {
  v1::HostInfo h;
  h.set_hypervisor("test");
  h.set_cpus(8);
  h.add_pools()->set_name("default");
  nlohmann::ordered_json j = toJson(h);
  EXPECT_EQ(j["hypervisor"], "test");
  EXPECT_EQ(j["cpus"], 8);
  EXPECT_EQ(j["pools"][0]["name"], "default");
}

TEST(TableTest, AlignsColumnsAndTrimsTrailingBlanks) {
  Table t({{"A"}, {"N", Table::Align::kRight}, {"Z"}});
  t.addRow({"long", "1", ""});
  t.addRow({"x", "100", "end"});
  EXPECT_EQ(t.render(), "A       N  Z\nlong    1\nx     100  end\n");
}

}  // namespace
}  // namespace xenctl::client
