#include "lib/customize/customizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "lib/sys/posix_process_runner.h"
#include "tests/fakes/fake_file_tree.h"
#include "tests/fakes/fake_process_runner.h"

namespace xenctl::customize {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kMac[] = "00:16:3E:12:34:56";
constexpr char kEdKey[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij a@b";
constexpr char kRsaKey[] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0xyz c@d";

/// A Debian 12 root as debootstrap leaves it, reduced to what customizing reads.
void seedDebian(fakes::FakeFileTree& t) {
  t.addDir("/usr/bin");
  t.addDir("/usr/lib/systemd/system");
  t.addSymlink("/bin", "usr/bin");
  t.addSymlink("/lib", "usr/lib");
  t.addFile("/usr/bin/bash", "ELF", 0755);
  t.addFile("/usr/lib/systemd/system/systemd-networkd.service", "[Unit]\n");  // shipped, not enabled
  t.addFile("/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n"
            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  t.addFile("/etc/shadow", "root:*:19700:0:99999:7:::\nalice:$y$j9T$abc$def:19700:0:99999:7:::\n", 0640, 0, 42);
  t.addFile("/etc/group", "root:x:0:\nsudo:x:27:\nshadow:x:42:\nusers:x:100:\nalice:x:1000:\nnogroup:x:65534:\n");
  t.addFile("/etc/gshadow", "root:*::\nsudo:*::\nshadow:*::\nusers:*::\nalice:!::\nnogroup:*::\n", 0640, 0, 42);
  t.addDir("/root", 0700);
  t.addDir("/home/alice", 0755, 1000, 1000);
  t.addFile("/etc/hostname", "golden\n");
  t.addFile("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  t.addFile("/etc/network/interfaces",
            "# The loopback network interface\nauto lo\niface lo inet loopback\n\n"
            "allow-hotplug eth0\niface eth0 inet dhcp\n");
  t.addFile("/etc/machine-id", "4f1e9a3bd0c84e2f9a6b7c8d9e0f1a2b\n", 0444);
  t.addFile("/var/lib/dbus/machine-id", "4f1e9a3bd0c84e2f9a6b7c8d9e0f1a2b\n");
  t.addFile("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
  t.addFile("/etc/ssh/ssh_host_ed25519_key", "golden ed25519 private\n", 0600);
  t.addFile("/etc/ssh/ssh_host_ed25519_key.pub", "golden ed25519 public\n");
  t.addFile("/etc/ssh/ssh_host_ecdsa_key", "golden ecdsa private\n", 0600);
  t.addFile("/etc/ssh/ssh_host_ecdsa_key.pub", "golden ecdsa public\n");
  t.addFile("/var/lib/systemd/random-seed", std::string(512, 'g'), 0600);
  t.addFile("/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==\"net\"\n");
}

class CustomizerTest : public ::testing::Test {
 protected:
  void SetUp() override { seedDebian(tree_); }

  /// Customizations with nothing but `reset_identity = false`, for tests of one part.
  static core::Customizations only() {
    core::Customizations c;
    c.domain_name = "web1";
    c.reset_identity = false;
    return c;
  }
  Status apply(const core::Customizations& c) { return customizer_.apply(tree_, c); }
  std::string read(const std::string& path) {
    auto r = tree_.readFile(path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    return r.value_or("");
  }
  core::FileStat stat(const std::string& path) {
    auto r = tree_.stat(path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    return r.value_or(core::FileStat{});
  }
  bool exists(const std::string& path) { return tree_.stat(path).ok(); }
  /// Applies `c`, expects `code` and a message containing `text`, and no change at all.
  void expectRefusedUnchanged(const core::Customizations& c, absl::StatusCode code, const std::string& text) {
    auto before = tree_.dump();
    int mutations = tree_.mutations();
    Status s = apply(c);
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
    EXPECT_EQ(tree_.mutations(), mutations);
    EXPECT_EQ(tree_.dump(), before);
  }

  /// Applying `c` a second time changes nothing.
  void expectIdempotent(const core::Customizations& c) {
    auto once = tree_.dump();
    ASSERT_TRUE(apply(c).ok());
    EXPECT_EQ(tree_.dump(), once);
  }

  fakes::FakeFileTree tree_;
  sys::PosixProcessRunner runner_;
  Customizer customizer_{runner_, tree_.opener()};
};

// The hostname goes into /etc/hostname and replaces the 127.0.1.1 line, keeping the rest of /etc/hosts.
TEST_F(CustomizerTest, HostnameReplacesHostsLine) {
  auto c = only();
  c.hostname = "web1";
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/hostname"), "web1\n");
  EXPECT_EQ(read("/etc/hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\tweb1\n\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  expectIdempotent(c);
}

// Without a 127.0.1.1 line one is added after 127.0.0.1; a dotted name also gets its short form.
TEST_F(CustomizerTest, HostnameAddsHostsLine) {
  tree_.addFile("/etc/hosts", "# static\n127.0.0.1 localhost\n::1 localhost\n");
  auto c = only();
  c.hostname = "web1.example.org";
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/hosts"), "# static\n127.0.0.1 localhost\n127.0.1.1\tweb1.example.org web1\n::1 localhost\n");
  EXPECT_EQ(read("/etc/hostname"), "web1.example.org\n");
}

// Names that are not RFC 1123 host names are refused before anything is written.
TEST_F(CustomizerTest, BadHostnamesChangeNothing) {
  for (const std::string& bad : std::vector<std::string>{"", "-web", "web-", "web_1", "a..b", std::string(64, 'a'), "web 1", "web1."}) {
    auto c = only();
    c.hostname = bad;
    expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "customizing 'web1': hostname: ");
  }
}

// A /etc/hostname that is a symlink out of place is replaced, its target untouched.
TEST_F(CustomizerTest, HostnameReplacesASymlinkRatherThanFollowingIt) {
  tree_.addSymlink("/etc/hostname", "/etc/passwd");
  auto c = only();
  c.hostname = "web1";
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(stat("/etc/hostname").type, core::FileType::kRegular);
  EXPECT_THAT(read("/etc/passwd"), StartsWith("root:x:0:0"));
}

// Files get their mode and the owner named in the image's own databases; missing parents are made 0755 root.
TEST_F(CustomizerTest, FilesWithModeOwnerAndParents) {
  auto c = only();
  c.files = {{"/etc/motd", "hello\n", 0644, ""},
             {"/srv/app/conf/app.toml", "x = 1\n", 0640, "alice:sudo"},
             {"/srv/app/id", "1", 0600, "alice"},
             {"/srv/app/num", "2", 0400, "4242:77"}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/motd"), "hello\n");
  auto st = stat("/srv/app/conf/app.toml");
  EXPECT_EQ(st.mode, 0640u);
  EXPECT_EQ(st.uid, 1000u);
  EXPECT_EQ(st.gid, 27u);
  EXPECT_EQ(stat("/srv/app/id").gid, 1000u);  // the user's primary group
  EXPECT_EQ(stat("/srv/app/num").uid, 4242u);
  EXPECT_EQ(stat("/srv/app/num").gid, 77u);
  auto dir = stat("/srv/app/conf");
  EXPECT_EQ(dir.mode, 0755u);
  EXPECT_EQ(dir.uid, 0u);
}

// Files with an unknown owner, a bad path or a directory in the way are refused by name.
TEST_F(CustomizerTest, FileErrorsNameTheFile) {
  auto c = only();
  c.files = {{"/etc/motd", "x", 0644, "bob"}};
  expectRefusedUnchanged(c, absl::StatusCode::kNotFound,
                         "customizing 'web1': file /etc/motd: owner 'bob': no user 'bob' in the image's /etc/passwd");
  c.files = {{"/etc/motd", "x", 0644, "alice:wheel"}};
  expectRefusedUnchanged(c, absl::StatusCode::kNotFound, "no group 'wheel' in the image's /etc/group");
  c.files = {{"etc/motd", "x", 0644, ""}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "file etc/motd: the path must be absolute");
  c.files = {{"/etc/ssh", "x", 0644, ""}};
  expectRefusedUnchanged(c, absl::StatusCode::kFailedPrecondition, "file /etc/ssh: /etc/ssh is a directory");
  c.files = {{"/etc/hostname/x", "x", 0644, ""}};
  expectRefusedUnchanged(c, absl::StatusCode::kFailedPrecondition, "file /etc/hostname/x: ");
  c.files = {{"/etc/motd", "x", 010000, ""}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "mode 10000 has bits beyond 07777");
}

// Keys land in ~/.ssh/authorized_keys with the user's uid/gid and modes, each once, existing ones kept.
TEST_F(CustomizerTest, SshKeysOncePerKeyWithOwnerAndModes) {
  tree_.addDir("/home/alice/.ssh", 0775, 0, 0);
  tree_.addFile("/home/alice/.ssh/authorized_keys", std::string(kRsaKey) + "\n", 0644, 1000, 1000);
  auto c = only();
  c.ssh_keys = {{"alice", {kEdKey, kRsaKey, kEdKey}}};
  ASSERT_TRUE(apply(c).ok());
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/home/alice/.ssh/authorized_keys"), absl::StrCat(kRsaKey, "\n", kEdKey, "\n"));
  auto dir = stat("/home/alice/.ssh");
  EXPECT_EQ(dir.mode, 0700u);
  EXPECT_EQ(dir.uid, 1000u);
  EXPECT_EQ(dir.gid, 1000u);
  auto f = stat("/home/alice/.ssh/authorized_keys");
  EXPECT_EQ(f.mode, 0600u);
  EXPECT_EQ(f.uid, 1000u);
}

// Root's keys go under /root (from /etc/passwd), and a missing home is made for the user.
TEST_F(CustomizerTest, SshKeysForRootAndMissingHome) {
  tree_.addFile("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ncarol:x:1005:100::/srv/carol:/bin/sh\n");
  auto c = only();
  c.ssh_keys = {{"root", {kEdKey}}, {"carol", {kEdKey}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/root/.ssh/authorized_keys"), absl::StrCat(kEdKey, "\n"));
  EXPECT_EQ(stat("/root/.ssh").mode, 0700u);
  EXPECT_EQ(stat("/srv/carol").uid, 1005u);
  EXPECT_EQ(stat("/srv/carol/.ssh/authorized_keys").gid, 100u);
  EXPECT_EQ(stat("/srv").uid, 0u);
}

// Links planted in a home (a root forked from a used domain) are never followed for keys.
TEST_F(CustomizerTest, SshKeysRefuseLinkedSshDirAndReplaceLinkedFile) {
  tree_.addSymlink("/home/alice/.ssh", "/root");
  auto c = only();
  c.ssh_keys = {{"alice", {kEdKey}}};
  expectRefusedUnchanged(c, absl::StatusCode::kFailedPrecondition,
                         "ssh key for user 'alice': /home/alice/.ssh is a symbolic link; refusing to follow it");
  ASSERT_TRUE(tree_.remove("/home/alice/.ssh", false).ok());
  tree_.addSymlink("/home/alice/.ssh/authorized_keys", "/etc/shadow");
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/home/alice/.ssh/authorized_keys"), absl::StrCat(kEdKey, "\n"));
  EXPECT_THAT(read("/etc/shadow"), StartsWith("root:*:"));
}

// A key for a user the image does not have is refused with the brief's message; a key must be one line.
TEST_F(CustomizerTest, SshKeyErrors) {
  auto c = only();
  c.ssh_keys = {{"bob", {kEdKey}}};
  expectRefusedUnchanged(c, absl::StatusCode::kNotFound,
                         "customizing 'web1': ssh key for user 'bob': no such user in the image's /etc/passwd");
  c.ssh_keys = {{"alice", {absl::StrCat(kEdKey, "\n", kRsaKey)}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "ssh key for user 'alice': each key must be one");
  c.ssh_keys = {{"alice", {"  "}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "each key must be one non-empty line");
}

// A new user gets the next uid >= 1000, its own group, the hash, group memberships and a home.
TEST_F(CustomizerTest, UserAccountCreated) {
  auto c = only();
  c.users = {{"bob", "$6$salt$hash", {"sudo", "users"}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_THAT(read("/etc/passwd"), AllOf(StartsWith("root:x:0:0:root:/root:/bin/bash\n"),
                                         EndsWith("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                                                  "bob:x:1001:1001::/home/bob:/bin/bash\n")));
  EXPECT_THAT(read("/etc/shadow"), EndsWith("bob:$6$salt$hash::0:99999:7:::\n"));
  EXPECT_THAT(read("/etc/group"), AllOf(HasSubstr("\nsudo:x:27:bob\n"), HasSubstr("\nusers:x:100:bob\n"),
                                        EndsWith("bob:x:1001:\n")));
  EXPECT_THAT(read("/etc/gshadow"), AllOf(HasSubstr("\nsudo:*::bob\n"), EndsWith("bob:!::\n")));
  auto sh = stat("/etc/shadow");
  EXPECT_EQ(sh.mode, 0640u);
  EXPECT_EQ(sh.gid, 42u);
  auto home = stat("/home/bob");
  EXPECT_EQ(home.type, core::FileType::kDirectory);
  EXPECT_EQ(home.mode, 0755u);
  EXPECT_EQ(home.uid, 1001u);
  EXPECT_EQ(home.gid, 1001u);
  expectIdempotent(c);  // no second entry or membership
}

// Without a hash the account is locked; the uid and gid skip ids taken by others.
TEST_F(CustomizerTest, UserWithoutHashIsLockedAndIdsAreFree) {
  tree_.addFile("/etc/group", "root:x:0:\nshadow:x:42:\nalice:x:1000:\nother:x:1001:\n");
  auto c = only();
  c.users = {{"bob", "", {}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_THAT(read("/etc/shadow"), EndsWith("bob:!::0:99999:7:::\n"));
  EXPECT_THAT(read("/etc/passwd"), HasSubstr("bob:x:1001:1002::/home/bob:/bin/bash\n"));
  EXPECT_THAT(read("/etc/group"), EndsWith("bob:x:1002:\n"));
}

// A new user's home that is already there is left as it is (as useradd -m does).
TEST_F(CustomizerTest, NewUserKeepsAnExistingHome) {
  tree_.addDir("/home/bob", 0700, 0, 0);
  auto c = only();
  c.users = {{"bob", "", {}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(stat("/home/bob").mode, 0700u);
  EXPECT_EQ(stat("/home/bob").uid, 0u);
}

// An existing user keeps its uid; its hash and groups are updated.
TEST_F(CustomizerTest, ExistingUserUpdated) {
  auto c = only();
  c.users = {{"alice", "$y$new$hash", {"sudo"}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_THAT(read("/etc/shadow"), HasSubstr("\nalice:$y$new$hash:19700:0:99999:7:::\n"));
  EXPECT_THAT(read("/etc/passwd"), HasSubstr("alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"));
  EXPECT_THAT(read("/etc/group"), HasSubstr("\nsudo:x:27:alice\n"));
}

// A user created in the same request can own files and receive keys.
TEST_F(CustomizerTest, NewUserUsableByOtherCustomizations) {
  auto c = only();
  c.users = {{"bob", "", {}}};
  c.ssh_keys = {{"bob", {kEdKey}}};
  c.files = {{"/home/bob/notes", "n", 0600, "bob"}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(stat("/home/bob/.ssh/authorized_keys").uid, 1001u);
  EXPECT_EQ(stat("/home/bob/.ssh").mode, 0700u);
  EXPECT_EQ(stat("/home/bob/notes").gid, 1001u);
}

// Unknown groups, bad names and anything that is not a crypt hash are refused, naming the user.
TEST_F(CustomizerTest, UserErrors) {
  auto c = only();
  c.users = {{"bob", "", {"sudo", "wheel"}}};
  expectRefusedUnchanged(c, absl::StatusCode::kNotFound,
                         "customizing 'web1': user 'bob': group 'wheel' does not exist in the image's /etc/group");
  c.users = {{"bob", "hunter2", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "user 'bob': password_hash is not a crypt(3) hash");
  c.users = {{"bob", "$6$a:b$c", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "password_hash is not a crypt(3) hash");
  c.users = {{"Bob", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "user 'Bob': not a valid user name");
  c.users = {{"users", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kFailedPrecondition, "the image has a group 'users' but no such user");
}

// ifupdown (networkd shipped but not enabled): an interfaces.d file for both names of the vif, the
// image's own stanza for them disabled, interfaces.d sourced.
TEST_F(CustomizerTest, NetworkIfupdown) {
  auto c = only();
  c.networks = {{kMac, "10.0.0.5/24", "10.0.0.1", {"10.0.0.2", "9.9.9.9"}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/network/interfaces.d/xenctl-00163e123456"),
            "# Written by xenctl for the vif with MAC 00:16:3e:12:34:56 (vif 0).\n"
            "# ifupdown matches interfaces by name: systemd-udev names Xen vif N \"enXN\", the kernel\n"
            "# (net.ifnames=0) \"ethN\"; only the one that appears is brought up.\n"
            "\nallow-hotplug enX0\niface enX0 inet static\n    address 10.0.0.5/24\n    gateway 10.0.0.1\n"
            "    dns-nameservers 10.0.0.2 9.9.9.9\n"
            "\nallow-hotplug eth0\niface eth0 inet static\n    address 10.0.0.5/24\n    gateway 10.0.0.1\n"
            "    dns-nameservers 10.0.0.2 9.9.9.9\n");
  EXPECT_EQ(read("/etc/network/interfaces"),
            "# The loopback network interface\nauto lo\niface lo inet loopback\n\n"
            "# disabled by xenctl: allow-hotplug eth0\n# disabled by xenctl: iface eth0 inet dhcp\n"
            "source /etc/network/interfaces.d/*\n");
  EXPECT_FALSE(exists("/etc/systemd/network"));
  expectIdempotent(c);
}

// Stanzas for the vif's names in other interfaces.d files are disabled too; ours and others stay.
TEST_F(CustomizerTest, NetworkIfupdownDisablesStanzasInInterfacesD) {
  tree_.addFile("/etc/network/interfaces", "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n");
  tree_.addFile("/etc/network/interfaces.d/50-cloud-init", "auto lo enX0\niface enX0 inet dhcp\n  mtu 1500\n");
  tree_.addFile("/etc/network/interfaces.d/60-other", "allow-hotplug eth1\niface eth1 inet dhcp\n");
  auto c = only();
  c.networks = {{kMac, "10.0.0.5/24", "", {}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/network/interfaces"), "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n");
  EXPECT_EQ(read("/etc/network/interfaces.d/50-cloud-init"),
            "auto lo\n# disabled by xenctl: iface enX0 inet dhcp\n# disabled by xenctl:   mtu 1500\n");
  EXPECT_EQ(read("/etc/network/interfaces.d/60-other"), "allow-hotplug eth1\niface eth1 inet dhcp\n");
}

// ifupdown names come from vif_index when given, else the position; IPv6 is inet6.
TEST_F(CustomizerTest, NetworkIfupdownNamesAndIpv6) {
  auto c = only();
  c.networks = {{"00:16:3e:00:00:01", "2001:db8::5/64", "2001:db8::1", {}, 2},
                {"00:16:3e:00:00:02", "10.1.0.5/16", "", {}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_THAT(read("/etc/network/interfaces.d/xenctl-00163e000001"),
              AllOf(HasSubstr("allow-hotplug enX2\niface enX2 inet6 static\n    address 2001:db8::5/64\n"
                              "    gateway 2001:db8::1\n"),
                    HasSubstr("iface eth2 inet6 static")));
  EXPECT_THAT(read("/etc/network/interfaces.d/xenctl-00163e000002"),
              AllOf(HasSubstr("iface enX1 inet static\n    address 10.1.0.5/16\n\n"), Not(HasSubstr("gateway"))));
  // The eth0 stanza stays: neither interface is vif 0.
  EXPECT_THAT(read("/etc/network/interfaces"), HasSubstr("\nallow-hotplug eth0\niface eth0 inet dhcp\n"));
}

// systemd-networkd, when enabled: a .network file matched by MAC.
TEST_F(CustomizerTest, NetworkNetworkdWhenEnabled) {
  tree_.addSymlink("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
                   "/lib/systemd/system/systemd-networkd.service");
  auto c = only();
  c.networks = {{kMac, "10.0.0.5/24", "10.0.0.1", {"10.0.0.2", "9.9.9.9"}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/systemd/network/10-xenctl-00163e123456.network"),
            "# Written by xenctl for the vif with MAC 00:16:3e:12:34:56.\n"
            "[Match]\nMACAddress=00:16:3e:12:34:56\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\n"
            "DNS=10.0.0.2\nDNS=9.9.9.9\n");
  EXPECT_FALSE(exists("/etc/network/interfaces.d"));
}

// Without ifupdown, an /etc/systemd/network directory or the networkd unit means networkd.
TEST_F(CustomizerTest, NetworkNetworkdWithoutIfupdown) {
  ASSERT_TRUE(tree_.remove("/etc/network", true).ok());
  auto c = only();
  c.networks = {{kMac, "10.0.0.5/24", "", {}}};
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(stat("/etc/systemd/network/10-xenctl-00163e123456.network").mode, 0644u);
}

// An image with neither network system, or a bad address, is refused and unchanged.
TEST_F(CustomizerTest, NetworkErrors) {
  auto c = only();
  c.networks = {{kMac, "10.0.0.5", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument,
                         "network for 00:16:3E:12:34:56: address '10.0.0.5' is not an IP address with a prefix");
  c.networks = {{"00:16:3e:12:34", "10.0.0.5/24", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "is not a MAC address");
  c.networks = {{kMac, "10.0.0.5/24", "2001:db8::1", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "gateway '2001:db8::1' is not an IP address of the same");
  c.networks = {{kMac, "10.0.0.5/33", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "prefix length");
  c.networks = {{kMac, "10.0.0.5/24", "", {}}, {"00:16:3e:12:34:56", "10.0.0.6/24", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "the MAC address is given twice");
  ASSERT_TRUE(tree_.remove("/etc/network", true).ok());
  ASSERT_TRUE(tree_.remove("/usr/lib/systemd/system/systemd-networkd.service", false).ok());
  c.networks = {{kMac, "10.0.0.5/24", "", {}}};
  expectRefusedUnchanged(c, absl::StatusCode::kFailedPrecondition, "the image has neither systemd-networkd");
}

// User-data writes a NoCloud seed: meta-data with the instance id and hostname, network-config v2 by MAC.
TEST_F(CustomizerTest, CloudInitSeed) {
  auto c = only();
  c.hostname = "web1";
  c.instance_id = "6f1c0b5e-2a51-4c1e-9d33-0e1f2a3b4c5d";
  c.cloud_init_user_data = "#cloud-config\npackages: [nginx]\n";
  c.networks = {{kMac, "10.0.0.5/24", "10.0.0.1", {"9.9.9.9"}}};
  ASSERT_TRUE(apply(c).ok());
  const std::string dir = "/var/lib/cloud/seed/nocloud/";
  EXPECT_EQ(read(dir + "meta-data"), "instance-id: 6f1c0b5e-2a51-4c1e-9d33-0e1f2a3b4c5d\nlocal-hostname: web1\n");
  EXPECT_EQ(read(dir + "user-data"), "#cloud-config\npackages: [nginx]\n");
  EXPECT_EQ(stat(dir + "user-data").mode, 0600u);
  EXPECT_EQ(read(dir + "network-config"),
            "version: 2\nethernets:\n  xenctl0:\n    match:\n      macaddress: \"00:16:3e:12:34:56\"\n"
            "    addresses:\n      - \"10.0.0.5/24\"\n    gateway4: \"10.0.0.1\"\n"
            "    nameservers:\n      addresses:\n        - \"9.9.9.9\"\n");
}

// Without networks there is no network-config (a stale one from the image goes); no instance id is refused.
TEST_F(CustomizerTest, CloudInitWithoutNetworksAndErrors) {
  tree_.addFile("/var/lib/cloud/seed/nocloud/network-config", "version: 2\n");
  auto c = only();
  c.instance_id = "iid-1";
  c.cloud_init_user_data = "#cloud-config\n";
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/var/lib/cloud/seed/nocloud/meta-data"), "instance-id: iid-1\n");
  EXPECT_FALSE(exists("/var/lib/cloud/seed/nocloud/network-config"));
  c.instance_id = "";
  expectRefusedUnchanged(c, absl::StatusCode::kInvalidArgument, "customizing 'web1': cloud-init seed: instance id ''");
}

// Identity reset: empty machine-id, no dbus copy, fresh host keys of the image's types only, a new
// random seed, no persistent-net rules.
TEST_F(CustomizerTest, IdentityReset) {
  core::Customizations c;
  c.hostname = "web1";
  ASSERT_TRUE(apply(c).ok());
  EXPECT_EQ(read("/etc/machine-id"), "");
  EXPECT_EQ(stat("/etc/machine-id").mode, 0444u);
  EXPECT_FALSE(exists("/var/lib/dbus/machine-id"));
  EXPECT_FALSE(exists("/etc/udev/rules.d/70-persistent-net.rules"));
  for (std::string type : {"ed25519", "ecdsa"}) {
    std::string key = "/etc/ssh/ssh_host_" + type + "_key";
    EXPECT_THAT(read(key), StartsWith("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    EXPECT_THAT(read(key + ".pub"), AllOf(StartsWith(type == "ed25519" ? "ssh-ed25519 " : "ecdsa-sha2-nistp256 "),
                                          EndsWith(" root@web1\n")));
    auto priv = stat(key);
    EXPECT_EQ(priv.mode, 0600u);
    EXPECT_EQ(priv.uid, 0u);
    EXPECT_EQ(priv.gid, 0u);
    EXPECT_EQ(stat(key + ".pub").mode, 0644u);
  }
  EXPECT_THAT(tree_.list("/etc/ssh").value(),
              ElementsAre("ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key",
                          "ssh_host_ed25519_key.pub", "sshd_config"));
  std::string seed = read("/var/lib/systemd/random-seed");
  EXPECT_EQ(seed.size(), 512u);
  EXPECT_NE(seed, std::string(512, 'g'));
  EXPECT_EQ(stat("/var/lib/systemd/random-seed").mode, 0600u);
}

// An image without host keys gets none, one without /var/lib/systemd no seed; a dbus link stays.
TEST_F(CustomizerTest, IdentityResetOnlyWhatTheImageHas) {
  ASSERT_TRUE(tree_.remove("/etc/ssh", true).ok());
  ASSERT_TRUE(tree_.remove("/var/lib/systemd", true).ok());
  tree_.addSymlink("/var/lib/dbus/machine-id", "/etc/machine-id");
  fakes::FakeProcessRunner runner;
  Customizer customizer(runner, tree_.opener());
  ASSERT_TRUE(customizer.apply(tree_, core::Customizations{}).ok());
  EXPECT_THAT(runner.commands(), IsEmpty());
  EXPECT_FALSE(exists("/etc/ssh"));
  EXPECT_FALSE(exists("/var/lib/systemd"));
  EXPECT_EQ(stat("/var/lib/dbus/machine-id").type, core::FileType::kSymlink);
}

// Two clones of one golden image share no machine-id, host key or random seed.
TEST_F(CustomizerTest, TwoClonesDiffer) {
  auto a = tree_.clone();
  auto b = tree_.clone();
  core::Customizations c;
  c.hostname = "web1";
  ASSERT_TRUE(customizer_.apply(*a, c).ok());
  c.hostname = "web2";
  ASSERT_TRUE(customizer_.apply(*b, c).ok());
  // machine-id: neither keeps the golden id; each is empty so systemd makes its own at first boot.
  EXPECT_EQ(a->readFile("/etc/machine-id").value(), "");
  EXPECT_EQ(b->readFile("/etc/machine-id").value(), "");
  for (std::string path : {"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
                           "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub",
                           "/var/lib/systemd/random-seed"}) {
    EXPECT_NE(a->readFile(path).value(), b->readFile(path).value()) << path;
    EXPECT_NE(a->readFile(path).value(), read(path)) << path;
  }
}

// reset_identity = false leaves the image's identity alone.
TEST_F(CustomizerTest, IdentityResetOptOut) {
  auto before = tree_.dump();
  ASSERT_TRUE(apply(only()).ok());
  EXPECT_EQ(tree_.dump(), before);
}

// A failing ssh-keygen is an error naming the key type, and nothing is written.
TEST_F(CustomizerTest, KeygenFailureChangesNothing) {
  fakes::FakeProcessRunner runner;
  runner.setDefault("ssh-keygen", "unknown key type", 1);
  Customizer customizer(runner, tree_.opener());
  core::Customizations c;
  c.domain_name = "web1";
  c.hostname = "web1";
  auto before = tree_.dump();
  Status s = customizer.apply(tree_, c);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("customizing 'web1': ssh host keys: ssh-keygen -t "));
  EXPECT_EQ(tree_.dump(), before);
  ASSERT_FALSE(runner.commands().empty());
  EXPECT_THAT(runner.commands()[0], AllOf(StartsWith("ssh-keygen -q -t "), HasSubstr(" -N  -C root@web1 -f /")));
}

// One bad part (the last file's owner) refuses the whole request before the first write.
TEST_F(CustomizerTest, BadRequestChangesNothing) {
  core::Customizations c;
  c.domain_name = "web1";
  c.hostname = "web1";
  c.users = {{"bob", "", {"sudo"}}};
  c.ssh_keys = {{"alice", {kEdKey}}};
  c.networks = {{kMac, "10.0.0.5/24", "", {}}};
  c.instance_id = "iid";
  c.cloud_init_user_data = "#cloud-config\n";
  c.files = {{"/etc/motd", "hi", 0644, ""}, {"/etc/app", "x", 0644, "nobody:nosuchgroup"}};
  expectRefusedUnchanged(c, absl::StatusCode::kNotFound, "customizing 'web1': file /etc/app: owner");
}

// A full file system stops with RESOURCE_EXHAUSTED naming the customization and the path.
TEST_F(CustomizerTest, FullFileSystemNamesThePath) {
  tree_.setCapacity(4096);
  auto c = only();
  c.files = {{"/srv/big", std::string(8192, 'x'), 0644, ""}};
  Status s = apply(c);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("customizing 'web1': file /srv/big: writing /srv/big"));
}

// applyToDevice opens the device writable, applies and closes; it closes on failure too.
TEST_F(CustomizerTest, ApplyToDeviceOpensAppliesCloses) {
  std::vector<std::string> opened;
  Customizer customizer(runner_, tree_.opener(&opened));
  auto c = only();
  c.hostname = "web1";
  ASSERT_TRUE(customizer.applyToDevice("/dev/vg0/web1", c).ok());
  EXPECT_THAT(opened, ElementsAre("/dev/vg0/web1 rw"));
  EXPECT_EQ(tree_.closes(), 1);
  EXPECT_EQ(read("/etc/hostname"), "web1\n");
  c.hostname = "bad_name";
  c.domain_name = "";
  Status s = customizer.applyToDevice("/dev/vg0/web1", c);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), StartsWith("customizing 'bad_name': hostname: "));
  EXPECT_EQ(tree_.closes(), 2);
}

// An opener error is returned with the device path; nothing is applied.
TEST_F(CustomizerTest, ApplyToDeviceOpenError) {
  Customizer customizer(runner_, [](const std::string&, bool) -> Result<std::unique_ptr<core::FileTree>> {
    return absl::FailedPreconditionError("file system type xfs is not supported");
  });
  Status s = customizer.applyToDevice("/dev/vg0/web1", core::Customizations{});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(std::string(s.message()),
            "customizing '/dev/vg0/web1': opening /dev/vg0/web1: file system type xfs is not supported");
}

}  // namespace
}  // namespace xenctl::customize
