#include "daemon/config.h"
#include "daemon/images.h"
#include "daemon/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace xenctl::daemon {
namespace {

std::string write(const std::string& text) {
  static int n = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("xenctl-config-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".toml");
  std::ofstream(p) << text;
  return p.string();
}

// A full file sets every key.
TEST(Config, Loads) {
  auto c = loadConfig(write(R"(
[daemon]
listen = ["unix:/tmp/x.sock", { address = "tcp:127.0.0.1:7000", insecure = true }]
state_dir = "/tmp/st"
hypervisor = "test"
max_operations = 4
log_level = "debug"
[test-hypervisor]
cpus = 2
memory_mib = 1024
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, (std::vector<std::string>{"unix:/tmp/x.sock", "tcp:127.0.0.1:7000"}));
  EXPECT_EQ(c->insecure_listen, std::vector<std::string>{"tcp:127.0.0.1:7000"});
  EXPECT_EQ(c->state_dir, "/tmp/st");
  EXPECT_EQ(c->hypervisor, "test");
  EXPECT_EQ(c->max_operations, 4u);
  EXPECT_EQ(c->test_memory_mib, 1024u);
  EXPECT_TRUE(validateConfig(*c).ok());
}

// The limits' keys are read with their units (their errors are in ErrorsNameFileAndLine).
TEST(Config, Limits) {
  auto c = loadConfig(write(R"(
[daemon]
max_operations_per_caller = 3
max_streams_per_caller = 5
max_request_size = "512K"
[images]
max_download_size = "2G"
fetch_timeout = 0
fetch_stall_timeout = 10
[security]
allowed_paths = ["/srv/xen", "/var/lib/images/"]
bootloaders = ["pygrub", "/usr/lib/xen/bin/pvgrub"]
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_operations_per_caller, 3u);
  EXPECT_EQ(c->max_streams_per_caller, 5u);
  EXPECT_EQ(c->max_request_bytes, 512u << 10);
  EXPECT_EQ(c->images.max_download_bytes, uint64_t{2} << 30);
  EXPECT_EQ(c->images.fetch_timeout_seconds, 0u);
  EXPECT_EQ(c->images.fetch_stall_timeout_seconds, 10u);
  EXPECT_EQ(c->security.allowed_paths, (std::vector<std::string>{"/srv/xen", "/var/lib/images/"}));
  EXPECT_EQ(c->security.bootloaders, (std::vector<std::string>{"pygrub", "/usr/lib/xen/bin/pvgrub"}));
  // The defaults.
  Config d;
  EXPECT_EQ(d.max_operations_per_caller, 12u);
  EXPECT_EQ(d.images.max_download_bytes, uint64_t{16} << 30);
  EXPECT_EQ(d.security.bootloaders, std::vector<std::string>{"pygrub"});
  EXPECT_TRUE(d.security.allowed_paths.empty());
  auto none = loadConfig(write("[images]\nmax_download_size = 0\n"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->images.max_download_bytes, 0u);
}

// Syntax errors, unknown keys and wrong types name the file and the line.
TEST(Config, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& k : {Case{"[daemon]\nlisten = [\"unix:/x\"\n", ":2"},
                        Case{"[daemon]\nstate_dri = \"/x\"\n", ":2: unknown key 'state_dri'"},
                        Case{"[daemon]\n\nmax_operations = \"many\"\n", ":3: 'max_operations' must be"},
                        Case{"[deamon]\n", "unknown section 'deamon'"},
                        // The limits' keys.
                        Case{"[daemon]\nmax_streams_per_caller = 0\n", ":2: 'max_streams_per_caller' must be"},
                        Case{"[daemon]\nmax_request_size = \"2G\"\n", ":2: 'max_request_size' must be"},
                        Case{"[images]\nmax_download_size = \"lots\"\n", ":2: 'max_download_size' must be"},
                        Case{"[images]\nfetch_stall_timeout = 0\n", ":2: 'fetch_stall_timeout' must be"},
                        Case{"[security]\nallowed_paths = [\"srv\"]\n", ":2: 'allowed_paths' must be"},
                        Case{"[security]\nallowed = []\n", ":2: unknown key 'allowed' in [security]"}}) {
    const std::string path = write(k.text);
    auto c = loadConfig(path);
    ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << k.text;
    EXPECT_NE(c.status().message().find(path), absl::string_view::npos) << c.status();
    EXPECT_NE(c.status().message().find(k.needle), absl::string_view::npos) << c.status();
  }
  EXPECT_EQ(loadConfig("/nonexistent/xenctld.toml").status().code(), absl::StatusCode::kInvalidArgument);
}

// Values flags can also set are checked.
TEST(Config, Validation) {
  Config c;
  c.hypervisor = "kvm";
  EXPECT_EQ(validateConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c = Config{};
  c.listen = {"unix:relative.sock"};
  EXPECT_EQ(validateConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c = Config{};
  c.log_level = "loud";
  EXPECT_EQ(validateConfig(c).code(), absl::StatusCode::kInvalidArgument);
}

// [[pool]] tables declare pools in order; without any, one dir pool lives under the state dir.
TEST(Config, Pools) {
  Config none;
  none.state_dir = "/srv/x";
  ASSERT_EQ(effectivePools(none).size(), 1u);
  EXPECT_EQ(effectivePools(none)[0].name, "default");
  EXPECT_EQ(effectivePools(none)[0].path, "/srv/x/volumes");

  auto c = loadConfig(write(R"(
[[pool]]
name = "default"
driver = "dir"
path = "/var/lib/xenctld/volumes"
[[pool]]
name = "fast"
path = "/srv/nvme"
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->pools.size(), 2u);
  EXPECT_EQ(c->pools[1].name, "fast");
  EXPECT_EQ(c->pools[1].driver, "dir");
  EXPECT_TRUE(validateConfig(*c).ok());
  EXPECT_EQ(effectivePools(*c).size(), 2u);

  auto unknown = loadConfig(write("[[pool]]\nname = \"a\"\npath = \"/a\"\nsize = \"1G\"\n"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find(":4: unknown key 'size' in a [[pool]]"), std::string::npos)
      << unknown.status();

  auto pool = [](std::string name, std::string driver, std::string path) {
    PoolConfig p;
    p.name = std::move(name);
    p.driver = std::move(driver);
    p.path = std::move(path);
    return p;
  };
  for (const PoolConfig& bad : {pool("a", "lvm-thin", "/x"), pool("a", "lvm-snapshot", ""), pool("a", "zfs", "/x"),
                                pool("a", "dir", "rel"), pool("Bad Name", "dir", "/x")}) {
    Config k;
    k.hypervisor = "test";
    k.pools = {bad};
    EXPECT_EQ(validateConfig(k).code(), absl::StatusCode::kInvalidArgument) << bad.name << " " << bad.driver;
  }
  Config twice;
  twice.hypervisor = "test";
  twice.pools = {pool("a", "dir", "/x"), pool("a", "dir", "/y")};
  EXPECT_EQ(validateConfig(twice).code(), absl::StatusCode::kInvalidArgument);
}

// [images] names the trusted keys, the CA bundle and what archives may carry; unknown keys are refused.
TEST(Config, Images) {
  auto c = loadConfig(write(R"(
[images]
trusted_keys = ["/etc/xenctl/keys/debian.pub", "/etc/xenctl/keys/local.pub"]
ca_file = "/etc/xenctl/ca.pem"
allow_setid = true
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->images.trusted_keys.size(), 2u);
  EXPECT_EQ(c->images.ca_file, "/etc/xenctl/ca.pem");
  EXPECT_TRUE(c->images.allow_setid);
  EXPECT_EQ(c->images.allow_devices, DeviceNodes::kStandard);
  auto unknown = loadConfig(write("[images]\nkeys = []\n"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown key 'keys' in [images]"), std::string::npos) << unknown.status();
  auto wrong = loadConfig(write("[images]\nallow_setid = \"yes\"\n"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
}

// The built-in defaults accept OS roots (set-id files, the standard /dev nodes), and so does the shipped xenctld.toml.
TEST(Config, ImagesDefaultsAcceptOsRoots) {
  Config builtin;
  EXPECT_TRUE(builtin.images.allow_setid);
  EXPECT_EQ(builtin.images.allow_devices, DeviceNodes::kStandard);
  auto shipped = loadConfig(XENCTL_SOURCE_DIR "/systemd/xenctld.toml");
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  EXPECT_EQ(shipped->images.allow_setid, builtin.images.allow_setid);
  EXPECT_EQ(shipped->images.allow_devices, builtin.images.allow_devices);
}

// allow_devices takes true (any node), false (none) or "standard"; anything else names the choices.
TEST(Config, ImagesAllowDevices) {
  EXPECT_EQ(loadConfig(write("[images]\nallow_devices = true\n"))->images.allow_devices, DeviceNodes::kAll);
  EXPECT_EQ(loadConfig(write("[images]\nallow_devices = false\n"))->images.allow_devices, DeviceNodes::kNone);
  EXPECT_EQ(loadConfig(write("[images]\nallow_devices = \"standard\"\n"))->images.allow_devices,
            DeviceNodes::kStandard);
  auto wrong = loadConfig(write("[images]\nallow_devices = \"all\"\n"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()), ::testing::HasSubstr("true, false or \"standard\""));
}

// [[images.source]] tables give a prefix, a policy, their own keys and whether requests may lower the policy.
TEST(Config, ImageSources) {
  auto c = loadConfig(write(R"(
[images]
trusted_keys = ["/etc/xenctl/keys/debian.pub"]
[[images.source]]
prefix = "https://vendor.example/"
trusted_keys = ["/etc/xenctl/keys/vendor.pub"]
[[images.source]]
prefix = "file:///srv/lab/"
policy = "none"
[[images.source]]
prefix = "http://mirror.lan/"
policy = "digest"
allow_unsigned_requests = true
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->images.sources.size(), 3u);
  const auto& vendor = c->images.sources[0];
  EXPECT_EQ(vendor.prefix, "https://vendor.example/");
  EXPECT_EQ(vendor.policy, "signed") << "signed unless told otherwise";
  ASSERT_TRUE(vendor.trusted_keys.has_value());
  EXPECT_EQ(*vendor.trusted_keys, std::vector<std::string>{"/etc/xenctl/keys/vendor.pub"});
  EXPECT_FALSE(vendor.allow_unsigned_requests);
  EXPECT_EQ(c->images.sources[1].policy, "none");
  EXPECT_FALSE(c->images.sources[1].trusted_keys.has_value()) << "no trusted_keys: the [images] ones";
  EXPECT_EQ(c->images.sources[2].policy, "digest");
  EXPECT_TRUE(c->images.sources[2].allow_unsigned_requests);
  EXPECT_EQ(c->images.sources[2].where.substr(c->images.sources[2].where.rfind(':')), ":10") << "the table's header line";
}

// A bad [[images.source]] names the file, the line, the key and the table.
TEST(Config, ImageSourceErrors) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& k : {
           Case{"[[images.source]]\nprefix = \"https://h/\"\nkeys = []\n",
                ":3: unknown key 'keys' in an [[images.source]]; known: prefix, policy, trusted_keys"},
           Case{"[[images.source]]\nprefix = \"https://h/\"\npolicy = \"auto\"\n",
                ":3: 'policy' must be \"signed\", \"digest\" or \"none\""},
           Case{"[[images.source]]\npolicy = \"none\"\n", ":1: an [[images.source]] needs a prefix"},
           Case{"[[images.source]]\nprefix = \"https://h/\"\nallow_unsigned_requests = \"yes\"\n",
                ":3: 'allow_unsigned_requests' must be true or false"},
           Case{"[[images.source]]\nprefix = \"https://h/\"\ntrusted_keys = \"/k.pub\"\n",
                ":3: 'trusted_keys' must be an array of strings"},
           Case{"[images]\nsource = \"https://h/\"\n", "'source' must be an array of tables ([[images.source]])"},
       }) {
    auto r = loadConfig(write(k.text));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << k.text;
    EXPECT_NE(r.status().message().find(k.needle), std::string::npos) << r.status();
  }
}

// Sources are checked when the daemon prepares its image config: the error names the table's line and the prefix.
TEST(Config, ImageSourcesCheckedAtStart) {
  const std::string state = std::filesystem::temp_directory_path() / ("xenctl-images-" + std::to_string(::getpid()));
  auto load = [&](const std::string& text) {
    auto c = loadConfig(write(text));
    EXPECT_TRUE(c.ok()) << c.status();
    c->state_dir = state;
    return imageConfig(*c);
  };
  auto ok = load("[[images.source]]\nprefix = \"https://lab.example/\"\npolicy = \"none\"\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->sources.choose("https://lab.example/a.tar.gz", image::SignaturePolicy::kAuto)->policy,
            image::SignaturePolicy::kNone);
  auto keyless = load(
      "[[images.source]]\nprefix = \"https://lab.example/\"\npolicy = \"none\"\n"
      "[[images.source]]\nprefix = \"https://vendor.example/\"\n");
  EXPECT_EQ(keyless.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(keyless.status().message().find(":4: image source \"https://vendor.example/\" wants signed images but has "
                                            "no key"),
            std::string::npos)
      << keyless.status();
  auto twice = load("[[images.source]]\nprefix = \"file:///srv/\"\npolicy = \"none\"\n"
                    "[[images.source]]\nprefix = \"file:///srv/\"\npolicy = \"digest\"\n");
  EXPECT_NE(twice.status().message().find(":4: image source \"file:///srv/\" is declared twice"), std::string::npos)
      << twice.status();
  std::filesystem::remove_all(state);
}

// lvm-thin and lvm-snapshot pools take their own keys; a key of another
// driver, a bad number or a missing vg names the file and line.
TEST(Config, LvmPools) {
  auto c = loadConfig(write(R"(
[[pool]]
name = "thin"
driver = "lvm-thin"
vg = "vg0"
thinpool = "pool"
max_overcommit = 4
data_watermark = 85.5
metadata_watermark = 70
[[pool]]
name = "classic"
driver = "lvm-snapshot"
vg = "vg1"
snapshot_size = "512M"
snapshot_watermark = 90
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->pools.size(), 2u);
  EXPECT_EQ(c->pools[0].driver, "lvm-thin");
  EXPECT_EQ(c->pools[0].vg, "vg0");
  EXPECT_EQ(c->pools[0].thinpool, "pool");
  EXPECT_DOUBLE_EQ(c->pools[0].max_overcommit, 4.0);
  EXPECT_DOUBLE_EQ(c->pools[0].data_watermark, 85.5);
  EXPECT_DOUBLE_EQ(c->pools[0].metadata_watermark, 70.0);
  EXPECT_EQ(c->pools[1].driver, "lvm-snapshot");
  EXPECT_EQ(c->pools[1].snapshot_size_mib, 512u);
  EXPECT_DOUBLE_EQ(c->pools[1].snapshot_watermark, 90.0);
  EXPECT_DOUBLE_EQ(c->pools[1].snapshot_percent, 20.0);
  EXPECT_TRUE(validateConfig(*c).ok()) << validateConfig(*c);

  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& k : {
           Case{"[[pool]]\nname = \"t\"\ndriver = \"lvm-thin\"\nvg = \"vg0\"\nthinpool = \"p\"\npath = \"/x\"\n",
                ":6: unknown key 'path' in a [[pool]] with driver \"lvm-thin\""},
           Case{"[[pool]]\nname = \"s\"\ndriver = \"lvm-snapshot\"\nvg = \"vg0\"\nthinpool = \"p\"\n",
                ":5: unknown key 'thinpool'"},
           Case{"[[pool]]\nname = \"t\"\ndriver = \"lvm-thin\"\nvg = \"vg0\"\nthinpool = \"p\"\ndata_watermark = 120\n",
                ":6: 'data_watermark' must be a percentage"},
           Case{"[[pool]]\nname = \"s\"\ndriver = \"lvm-snapshot\"\nvg = \"vg0\"\nsnapshot_size = \"lots\"\n",
                ":5: 'snapshot_size' must be a size"},
           Case{"[[pool]]\nname = \"t\"\ndriver = \"lvm-thin\"\nvg = \"vg0\"\n", ":1: a [[pool]] with driver \"lvm-thin\" needs"},
           Case{"[[pool]]\nname = \"z\"\ndriver = \"zfs\"\n", ":3: driver \"zfs\" is unknown"}}) {
    const std::string path = write(k.text);
    auto bad = loadConfig(path);
    ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << k.text;
    EXPECT_NE(bad.status().message().find(path + k.needle), absl::string_view::npos) << bad.status();
  }
}

// [daemon.tls] names the three PEM files; with it a tcp: listener is valid.
TEST(Config, Tls) {
  auto c = loadConfig(write(R"(
[daemon]
listen = ["tcp:0.0.0.0:7443"]
[daemon.tls]
cert = "/etc/xenctl/tls/xenctld.pem"
key = "/etc/xenctl/tls/xenctld.key"
client_ca = "/etc/xenctl/tls/clients.pem"
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tls.cert, "/etc/xenctl/tls/xenctld.pem");
  EXPECT_EQ(c->tls.key, "/etc/xenctl/tls/xenctld.key");
  EXPECT_EQ(c->tls.client_ca, "/etc/xenctl/tls/clients.pem");
  EXPECT_TRUE(c->insecure_listen.empty());
  EXPECT_TRUE(validateConfig(*c).ok()) << validateConfig(*c);
}

// A tcp: listener without [daemon.tls] is refused, naming the settings and the way out.
TEST(Config, TcpNeedsTlsOrInsecure) {
  Config c;
  c.listen = {"unix:/run/x.sock", "tcp:0.0.0.0:7443"};
  Status st = validateConfig(c);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              testing::HasSubstr("listen address 'tcp:0.0.0.0:7443' needs mutual TLS: set [daemon.tls] cert, key "
                                 "and client_ca; or write { address = \"tcp:0.0.0.0:7443\", insecure = true }"));
  EXPECT_THAT(std::string(st.message()), testing::HasSubstr("insecure = true"));
  c.insecure_listen = {"tcp:0.0.0.0:7443"};
  EXPECT_TRUE(validateConfig(c).ok());
  // Half a [daemon.tls] is an error even where nothing listens on tcp:.
  c = Config{};
  c.tls.cert = "/c.pem";
  c.tls.key = "/k.pem";
  st = validateConfig(c);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), testing::HasSubstr("[daemon.tls] needs cert, key and client_ca together; "
                                                            "missing: client_ca"));
}

// Mistakes in [daemon.tls] and in listener tables name the file and line.
TEST(Config, TlsErrors) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& k : {
           Case{"[daemon.tls]\ncert = \"/c\"\ncrl = \"/x\"\n", ":3: unknown key 'crl' in [daemon.tls]"},
           Case{"[daemon.tls]\nkey = 7\n", ":2: 'key' must be a file name"},
           Case{"[daemon.tls]\nkey = \"\"\n", ":2: 'key' must be a file name"},
           Case{"[daemon]\nlisten = [{ address = \"unix:/x\", insecure = true }]\n",
                ":2: listen address 'unix:/x': insecure = true applies to tcp: listeners only"},
           Case{"[daemon]\nlisten = [{ insecure = true }]\n", ":2: 'listen' must be an array of addresses"},
           Case{"[daemon]\nlisten = [{ address = \"tcp:h:1\", insecure = \"yes\" }]\n", ":2: 'listen' must be"},
           Case{"[daemon]\ntls = 1\n", ":2: 'tls' must be a table"},
       }) {
    const std::string path = write(k.text);
    auto c = loadConfig(path);
    ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << k.text;
    EXPECT_THAT(std::string(c.status().message()), testing::HasSubstr(path + k.needle)) << c.status();
  }
}

// A [daemon.tls] file without PEM of its kind is named by its setting before any handshake.
TEST(TlsMaterial, FilesAreChecked) {
  TlsConfig tls{write("not a certificate\n"), write("not a key\n"), write("not a CA\n")};
  auto m = loadTlsMaterial(tls);
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  EXPECT_EQ(m.status().message(),
            "[daemon.tls] cert " + tls.cert + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  tls.key = "/nonexistent/xenctld.key";
  m = loadTlsMaterial(tls);
  ASSERT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
  EXPECT_THAT(std::string(m.status().message()),
              testing::HasSubstr("[daemon.tls] key /nonexistent/xenctld.key: No such file or directory"));
}

}  // namespace
}  // namespace xenctl::daemon

namespace xenctl::daemon {
namespace {

// [access] binds roles to users, groups and certificates, names resolved;
// a bad entry or key is an error naming the line.
TEST(Config, Access) {
  auto c = loadConfig(write(R"(
[access]
admin = ["user:root", "gid:10"]
operator = ["uid:1001", "cert:CN=ci,O=example", "group:root"]
viewer = []
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  using Kind = core::RoleBinding::Kind;
  ASSERT_EQ(c->access.size(), 5u);
  EXPECT_EQ(c->access[0].kind, Kind::kUid);
  EXPECT_EQ(c->access[0].id, 0);
  EXPECT_EQ(c->access[0].role, core::Role::kAdmin);
  EXPECT_EQ(c->access[1].kind, Kind::kGid);
  EXPECT_EQ(c->access[1].id, 10);
  EXPECT_EQ(c->access[2].id, 1001);
  EXPECT_EQ(c->access[2].role, core::Role::kOperator);
  EXPECT_EQ(c->access[3].kind, Kind::kSubject);
  EXPECT_EQ(c->access[3].subject, "CN=ci,O=example");
  EXPECT_EQ(c->access[4].kind, Kind::kGid);
  EXPECT_EQ(c->access[4].id, 0);
  for (const char* bad : {"[access]\nadmin = [\"user:no-such-user-xenctl\"]\n",
                          "[access]\nadmin = [\"group:no-such-group-xenctl\"]\n", "[access]\nadmin = [\"uid:-1\"]\n",
                          "[access]\nadmin = [\"alice\"]\n", "[access]\nadmin = [\"cert:\"]\n",
                          "[access]\nroot = [\"uid:1\"]\n", "[access]\nnone = [\"uid:1\"]\n",
                          "[access]\nadmin = \"uid:1\"\n"}) {
    auto r = loadConfig(write(bad));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), ::testing::HasSubstr(":2")) << bad;
  }
  EXPECT_TRUE(loadConfig(write("[daemon]\n"))->access.empty());  // deny by default
}

}  // namespace
}  // namespace xenctl::daemon
