#include "lib/customize/container_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace xenctl::customize {
namespace {

using ::testing::HasSubstr;

ContainerFile parseOk(std::string_view text) {
  auto r = parseContainer(text, "web1.cfg");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ContainerFile{};
}

// The one statement of `f`, by value (callers pass temporaries).
template <class T>
T only(const ContainerFile& f) {
  EXPECT_EQ(f.statements.size(), 1u);
  if (f.statements.size() != 1 || !std::holds_alternative<T>(f.statements[0].body)) {
    ADD_FAILURE() << "not the statement kind expected";
    return T{};
  }
  return std::get<T>(f.statements[0].body);
}

std::string errorOf(std::string_view text) {
  auto r = parseContainer(text, "web1.cfg");
  EXPECT_FALSE(r.ok()) << "parsed: " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

// The paper's Figure 1, verbatim: replace with inline text over an http archive.
TEST(ContainerParser, PaperFigure1Replace) {
  ContainerFile f = parseOk(
      "[replace /etc/HOSTNAME\n"
      "archive http://foo.org/images/etc.cpio.gz\n"
      "\n"
      "FCDOBBS\n"
      "\n"
      "] [end]\n");
  const auto& r = only<ReplaceStmt>(f);
  EXPECT_EQ(r.path, "/etc/HOSTNAME");
  EXPECT_EQ(r.archive.kind, Location::Kind::kUri);
  EXPECT_EQ(r.archive.text, "http://foo.org/images/etc.cpio.gz");
  EXPECT_EQ(r.text, "FCDOBBS\n");
  EXPECT_FALSE(r.outputs.diff);
  EXPECT_FALSE(r.outputs.fork);
  EXPECT_EQ(f.statements[0].keyword, "replace");
  EXPECT_EQ(f.statements[0].pos.line, 1);
  EXPECT_EQ(f.statements[0].pos.column, 1);
  EXPECT_EQ(f.xl_config, "\n\n\n\n\n\n");
}

// The paper's §4.5 [create], wrapped over lines as printed.
TEST(ContainerParser, PaperCreateWrapped) {
  auto c = only<CreateStmt>(parseOk("[create\n /etc/\n ftp://foo.org/images/etc.cpio.gz\n ][end]\n"));
  EXPECT_EQ(c.dir, "/etc/");
  EXPECT_EQ(c.uri.text, "ftp://foo.org/images/etc.cpio.gz");
}

// The paper's §4.6 [image]: size with a unit, label.
TEST(ContainerParser, PaperImage) {
  auto i = only<ImageStmt>(parseOk("[image /var/images/fido-etc\n 50MB\n fido_etc] [end]\n"));
  EXPECT_EQ(i.target.kind, Location::Kind::kPath);
  EXPECT_EQ(i.target.text, "/var/images/fido-etc");
  EXPECT_EQ(i.size_bytes, 50u << 20);
  EXPECT_EQ(i.label, "fido_etc");
}

// The paper's §4.7 [populate image ...].
TEST(ContainerParser, PaperPopulate) {
  auto p = only<PopulateStmt>(
      parseOk("[populate image\n /var/images/fido-etc\n /mnt/\n ftp://foo.org/images/etc.cpio.gz\n ][end]\n"));
  EXPECT_EQ(p.target.text, "/var/images/fido-etc");
  EXPECT_EQ(p.mountpoint, "/mnt/");
  EXPECT_EQ(p.archive.text, "ftp://foo.org/images/etc.cpio.gz");
}

// The paper's §4.9 [patch] (its URIs rejoined: the printed text splits them
// at line ends), with the strip level and the fork URI.
TEST(ContainerParser, PaperPatch) {
  auto p = only<PatchStmt>(parseOk(
      "[patch\nfile:///var/images/fido-etc\nftp://foo.org/images/fido-etc.patch 1\n"
      "file:///var/images/fido-etc-patched\n][end]\n"));
  EXPECT_EQ(p.target.text, "file:///var/images/fido-etc");
  EXPECT_EQ(p.patch.text, "ftp://foo.org/images/fido-etc.patch");
  EXPECT_EQ(p.strip, 1);
  ASSERT_TRUE(p.out);
  EXPECT_EQ(p.out->text, "file:///var/images/fido-etc-patched");
}

// [patch] without STRIP or OUT-URI: strip 1, no fork.
TEST(ContainerParser, PatchDefaults) {
  auto p = only<PatchStmt>(parseOk("[patch vol:thin/web1 /srv/motd.patch][end]"));
  EXPECT_EQ(p.target.kind, Location::Kind::kVolume);
  EXPECT_EQ(p.target.volume.pool, "thin");
  EXPECT_EQ(p.target.volume.name, "web1");
  EXPECT_EQ(p.strip, 1);
  EXPECT_FALSE(p.out);
  auto q = only<PatchStmt>(parseOk("[patch vol:thin/web1 /srv/motd.patch 0][end]"));
  EXPECT_EQ(q.strip, 0);
}

// [copy] with its source and both options, in any order.
TEST(ContainerParser, CopyWithDiffAndFork) {
  auto c = only<CopyStmt>(parseOk(
      "[copy /etc/motd fork file:///srv/etc2.cpio.gz\n archive vol:thin/web1\n source http://h/motd\n"
      " diff /srv/motd.patch ] [end]"));
  EXPECT_EQ(c.path, "/etc/motd");
  EXPECT_EQ(c.archive.kind, Location::Kind::kVolume);
  EXPECT_EQ(c.source.text, "http://h/motd");
  ASSERT_TRUE(c.outputs.diff && c.outputs.fork);
  EXPECT_EQ(c.outputs.diff->kind, Location::Kind::kPath);
  EXPECT_EQ(c.outputs.fork->text, "file:///srv/etc2.cpio.gz");
}

// Inline text keeps its indentation and inner blank lines, drops the blank
// lines around it, and ends with exactly one newline.
TEST(ContainerParser, InlineTextRules) {
  auto r = only<ReplaceStmt>(parseOk(
      "[replace /etc/app.yaml archive vol:thin/web1\n\n\n  key: value\n\n  list:\n    - a\n\n\n   ] [end]"));
  EXPECT_EQ(r.text, "  key: value\n\n  list:\n    - a\n");
  // Text on the same line as the words, closed on the same line.
  auto s = only<ReplaceStmt>(parseOk("[replace /etc/hostname archive vol:thin/web1 web1 ][end]"));
  EXPECT_EQ(s.text, "web1\n");
  // No text: an empty file.
  auto e = only<ReplaceStmt>(parseOk("[replace /etc/empty archive vol:thin/web1 ] [end]"));
  EXPECT_EQ(e.text, "");
  // A ']' inside the text does not close the expression.
  auto b = only<ReplaceStmt>(parseOk("[replace /etc/x archive /img\n a[1] = b]\n] [end]"));
  EXPECT_EQ(b.text, " a[1] = b]\n");
}

// Expressions mix with xl statements; the xl config keeps its text and line numbers.
TEST(ContainerParser, StrippedConfigKeepsXlAndLines) {
  std::string text =
      "name = \"web1\"   # the name\n"
      "disk = [ 'vol:thin/web1,xvda,w',\n"
      "         'vol:thin/data,xvdb,w' ]\n"
      "[hostname web1 archive vol:thin/web1][end]\n"
      "memory = 512; [replace /etc/motd archive vol:thin/web1\n"
      "hello\n"
      "] [end] vcpus = 2\n"
      "# [replace /not/an/expression] [end]\n";
  ContainerFile f = parseOk(text);
  ASSERT_EQ(f.statements.size(), 2u);
  EXPECT_EQ(f.statements[0].keyword, "hostname");
  EXPECT_EQ(f.statements[0].pos.line, 4);
  EXPECT_EQ(f.statements[1].keyword, "replace");
  EXPECT_EQ(f.statements[1].pos.line, 5);
  EXPECT_EQ(f.statements[1].pos.column, 15);
  EXPECT_EQ(f.xl_config,
            "name = \"web1\"   # the name\n"
            "disk = [ 'vol:thin/web1,xvda,w',\n"
            "         'vol:thin/data,xvdb,w' ]\n"
            "\n"
            "memory = 512; \n"
            "\n"
            " vcpus = 2\n"
            "# [replace /not/an/expression] [end]\n");
}

// A plain xl config passes through byte for byte and has no statements.
TEST(ContainerParser, PlainXlConfigUnchanged) {
  std::string xl = "name='a'\nmemory=256\ndisk=['x,xvda,w']\nvif=[ 'bridge=br0' ]\nextra=\"[not] [end]\"\n";
  ContainerFile f = parseOk(xl);
  EXPECT_TRUE(f.statements.empty());
  EXPECT_EQ(f.xl_config, xl);
}

// The typed customizations parse into lib/core's Customization structs.
TEST(ContainerParser, TypedExpressions) {
  ContainerFile f = parseOk(
      "[hostname web1.example.org archive vol:thin/web1][end]\n"
      "[file /etc/motd 0640 root:adm archive vol:thin/web1\n  Welcome\n] [end]\n"
      "[ssh-key admin archive vol:thin/web1\n"
      "  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI me@host\n"
      "  ssh-rsa AAAAB3Nza other\n] [end]\n"
      "[user admin $6$salt$hash sudo,adm archive vol:thin/web1][end]\n"
      "[user guest ! - archive vol:thin/web1][end]\n"
      "[network 00:16:3E:00:00:01 10.0.0.5/24 archive vol:thin/web1 gateway 10.0.0.1 dns 1.1.1.1,9.9.9.9 vif 1][end]\n"
      "[user-data archive vol:thin/web1\n#cloud-config\npackages: [nginx]\n] [end]\n"
      "[reset-identity archive vol:thin/web1][end]\n");
  ASSERT_EQ(f.statements.size(), 8u);
  EXPECT_EQ(std::get<HostnameStmt>(f.statements[0].body).hostname, "web1.example.org");
  const auto& file = std::get<FileStmt>(f.statements[1].body).file;
  EXPECT_EQ(file.path, "/etc/motd");
  EXPECT_EQ(file.mode, 0640u);
  EXPECT_EQ(file.owner, "root:adm");
  EXPECT_EQ(file.content, "  Welcome\n");
  const auto& keys = std::get<SshKeyStmt>(f.statements[2].body).keys;
  EXPECT_EQ(keys.user, "admin");
  EXPECT_THAT(keys.keys, ::testing::ElementsAre("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI me@host",
                                                "ssh-rsa AAAAB3Nza other"));
  const auto& user = std::get<UserStmt>(f.statements[3].body).user;
  EXPECT_EQ(user.name, "admin");
  EXPECT_EQ(user.password_hash, "$6$salt$hash");
  EXPECT_THAT(user.groups, ::testing::ElementsAre("sudo", "adm"));
  const auto& guest = std::get<UserStmt>(f.statements[4].body).user;
  EXPECT_EQ(guest.password_hash, "");
  EXPECT_TRUE(guest.groups.empty());
  const auto& nic = std::get<NetworkStmt>(f.statements[5].body).nic;
  EXPECT_EQ(nic.mac, "00:16:3e:00:00:01");
  EXPECT_EQ(nic.address, "10.0.0.5/24");
  EXPECT_EQ(nic.gateway, "10.0.0.1");
  EXPECT_THAT(nic.dns, ::testing::ElementsAre("1.1.1.1", "9.9.9.9"));
  EXPECT_EQ(nic.vif_index, 1);
  EXPECT_EQ(std::get<UserDataStmt>(f.statements[6].body).user_data, "#cloud-config\npackages: [nginx]\n");
  EXPECT_TRUE(std::holds_alternative<ResetIdentityStmt>(f.statements[7].body));
  EXPECT_EQ(statementTarget(f.statements[7])->text, "vol:thin/web1");
}

// Each error kind: its message names the file, line and column of the fault.
TEST(ContainerParserErrors, ReplaceWithoutArchiveBeforeText) {
  EXPECT_EQ(errorOf("name='w'\n\n\n\n\n\n\n\n\n\n\n[replace /etc/hostname\n  web1\n] [end]\n"),
            "web1.cfg:13:3: [replace] needs 'archive URI' before its text");
}

// A statement that changes a tree but names none.
TEST(ContainerParserErrors, HostnameWithoutArchive) {
  EXPECT_EQ(errorOf("\n  [hostname web1][end]"),
            "web1.cfg:2:3: [hostname] needs 'archive URI' (the tree it changes)");
}

// An expression with no "] [end]" after it.
TEST(ContainerParserErrors, Unclosed) {
  EXPECT_EQ(errorOf("memory=1\n[replace /etc/x archive /img\nhello\n]\n"),
            "web1.cfg:2:1: [replace] is not closed: expected '] [end]' after it");
}

// An unknown keyword.
TEST(ContainerParserErrors, UnknownKeyword) {
  EXPECT_THAT(errorOf("[ frobnicate /x ][end]"), HasSubstr("web1.cfg:1:3: unknown expression '[frobnicate]'"));
}

// '[' with nothing after it, and a stray [end].
TEST(ContainerParserErrors, EmptyAndStrayEnd) {
  EXPECT_THAT(errorOf("a=1\n[ ] [end]"), HasSubstr("web1.cfg:2:1: '[' starts an expression but no keyword"));
  EXPECT_EQ(errorOf("a=1\n\n  [end]\n"),
            "web1.cfg:3:3: '[end]' closes no expression: an expression is '[KEYWORD ...] [end]'");
}

// A missing positional word is reported at the ']' where it was expected.
TEST(ContainerParserErrors, MissingWord) {
  EXPECT_EQ(errorOf("[image /var/images/x\n 50M ] [end]"), "web1.cfg:2:6: [image] needs LABEL before its ']'");
}

// A word too many.
TEST(ContainerParserErrors, ExtraWord) {
  EXPECT_EQ(errorOf("[create /etc ftp://h/etc.cpio.gz\n  extra][end]"),
            "web1.cfg:2:3: [create] takes DIR URI; unexpected 'extra'");
}

// An option at the end with no value, and one given twice.
TEST(ContainerParserErrors, OptionValue) {
  EXPECT_EQ(errorOf("[copy /etc/motd source http://h/m archive] [end]"),
            "web1.cfg:1:35: [copy] option 'archive' needs a value after it");
  EXPECT_EQ(errorOf("[copy /etc/motd archive /a\narchive /b source /m] [end]"),
            "web1.cfg:2:1: [copy] option 'archive' is given twice");
}

// [copy] without its source.
TEST(ContainerParserErrors, CopyWithoutSource) {
  EXPECT_EQ(errorOf("[copy /etc/motd archive /img\n] [end]"),
            "web1.cfg:2:1: [copy] needs 'source URI' (the file copied over PATH) before its ']'");
}

// Bad locations: a relative path, an unknown scheme, a bad volume name, a
// remote URI where a local target is needed.
TEST(ContainerParserErrors, BadLocations) {
  EXPECT_THAT(errorOf("[replace /x archive images/etc\nx] [end]"),
              HasSubstr("web1.cfg:1:21: 'archive' 'images/etc' is neither an absolute path"));
  EXPECT_THAT(errorOf("[replace /x archive gopher://h/etc\nx] [end]"), HasSubstr("web1.cfg:1:21: 'archive': "));
  EXPECT_THAT(errorOf("[replace /x archive vol:Thin/Web1\nx] [end]"), HasSubstr("web1.cfg:1:21: 'archive': "));
  EXPECT_THAT(errorOf("[image http://h/img 1G lbl][end]"),
              HasSubstr("web1.cfg:1:8: [image] TARGET 'http://h/img' must be on this host"));
  EXPECT_THAT(errorOf("[copy /x archive /img source vol:p/v][end]"),
              HasSubstr("web1.cfg:1:30: 'source' 'vol:p/v' must be a path or a URI"));
  EXPECT_EQ(errorOf("[replace etc/x archive /img\nx] [end]"),
            "web1.cfg:1:10: [replace] PATH 'etc/x' must be an absolute path");
}

// Bad values of typed words: size, label, mode, host name, user, MAC, address, key, strip.
TEST(ContainerParserErrors, BadValues) {
  EXPECT_THAT(errorOf("[image /i 50XB l][end]"), HasSubstr("web1.cfg:1:11: [image] SIZE '50XB' is not a size"));
  EXPECT_THAT(errorOf("[image /i 50 l][end]"), HasSubstr("web1.cfg:1:11: [image] SIZE '50' is not a size"));
  EXPECT_THAT(errorOf("[image /i 5K l][end]"), HasSubstr("web1.cfg:1:11: [image] SIZE '5K': "));
  EXPECT_THAT(errorOf("[image /i 5M a-label-far-too-long][end]"), HasSubstr("web1.cfg:1:14: [image] LABEL"));
  EXPECT_THAT(errorOf("[file /f 0999 root archive /i\nx] [end]"), HasSubstr("web1.cfg:1:10: [file] MODE '0999'"));
  EXPECT_THAT(errorOf("[hostname -web archive /i][end]"), HasSubstr("web1.cfg:1:11: [hostname] '-web'"));
  EXPECT_THAT(errorOf("[user Root ! - archive /i][end]"), HasSubstr("web1.cfg:1:7: [user] NAME 'Root'"));
  EXPECT_THAT(errorOf("[network 00:16:3e archive /i 10.0.0.1/8][end]"), HasSubstr("web1.cfg:1:10: [network] MAC"));
  EXPECT_THAT(errorOf("[network 00:16:3e:00:00:01 10.0.0.1 archive /i][end]"),
              HasSubstr("web1.cfg:1:28: [network] ADDRESS"));
  EXPECT_THAT(errorOf("[network 00:16:3e:00:00:01 10.0.0.1/8 archive /i vif x][end]"),
              HasSubstr("web1.cfg:1:54: [network] vif 'x' is not a vif number"));
  EXPECT_THAT(errorOf("[ssh-key root archive /i\n  not-a-key\n] [end]"),
              HasSubstr("web1.cfg:2:3: [ssh-key] 'not-a-key' is not an OpenSSH public key line"));
  EXPECT_THAT(errorOf("[patch /i /p 99][end]"), HasSubstr("web1.cfg:1:14: [patch] STRIP '99'"));
  EXPECT_THAT(errorOf("[populate disk /i /mnt /a.cpio.gz][end]"), HasSubstr("web1.cfg:1:11: [populate] is written"));
}

// "root" names a new domain's root where a tree is edited, and nowhere a file is read or a volume made.
TEST(ContainerParser, RootTarget) {
  Location l = only<ReplaceStmt>(parseOk("[replace /etc/motd archive root\nhi\n] [end]")).archive;
  EXPECT_EQ(l.kind, Location::Kind::kRoot);
  EXPECT_EQ(l.text, "root");
  EXPECT_EQ(only<PatchStmt>(parseOk("[patch root /srv/p.diff][end]")).target.kind, Location::Kind::kRoot);
  EXPECT_THAT(errorOf("[image root 8M x][end]"), HasSubstr("web1.cfg:1:8: [image] TARGET 'root' is neither"));
  EXPECT_THAT(errorOf("[copy /x archive root source root][end]"),
              HasSubstr("web1.cfg:1:30: 'source' 'root' is neither an absolute path"));
}

// checkForNewRoot: a CreateDomain's container text changes its root alone; each refusal has its place.
TEST(ContainerParserErrors, ForNewRoot) {
  const core::VolumeRef root{"thin", "web1-root"};
  auto check = [&](std::string_view text) {
    return checkForNewRoot(parseOk(text), "web1.container", root);
  };
  EXPECT_TRUE(check("memory = 512\n[hostname web1 archive root][end]\n"
                    "[replace /etc/motd archive vol:thin/web1-root\nhi\n] [end]\n"
                    "[patch root file:///p.diff 1][end]\n").ok());
  Status st = check("\n\n   [copy /x archive vol:thin/other source /s][end]");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("web1.container:3:4: [copy] changes 'vol:thin/other'; a CreateDomain's container text "
                        "changes only the new root: write 'root' (or vol:thin/web1-root) there"));
  EXPECT_THAT(std::string(check("[create /etc file:///e.cpio.gz][end]").message()),
              HasSubstr("web1.container:1:1: [create] makes an archive or a volume"));
  EXPECT_THAT(std::string(check("[populate image /i /mnt /a.cpio.gz][end]").message()),
              HasSubstr("web1.container:1:1: [populate] makes an archive or a volume"));
  EXPECT_THAT(std::string(check("[copy /x archive root source /s fork file:///f.cpio.gz][end]").message()),
              HasSubstr("web1.container:1:1: [copy] stores a diff or a fork"));
  EXPECT_THAT(std::string(check("[hostname a archive /srv/img][end]").message()),
              HasSubstr("web1.container:1:1: [hostname] changes '/srv/img'"));
}

// checkNoNewRoot: a file run on its own may not name "root".
TEST(ContainerParserErrors, NoNewRoot) {
  EXPECT_TRUE(checkNoNewRoot(parseOk("[hostname a archive /i][end]"), "web1.cfg").ok());
  Status st = checkNoNewRoot(parseOk("[hostname a archive /i][end]\n [user-data archive root\nx\n] [end]"),
                             "web1.cfg");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("web1.cfg:2:2: [user-data] names 'root'"));
}

// A file with an error yields no statements, even after good ones.
TEST(ContainerParserErrors, ErrorYieldsNothing) {
  auto r = parseContainer("[hostname a archive /i][end]\n[hostname b][end]\n", "f");
  EXPECT_FALSE(r.ok());
}

// Any byte string parses or fails cleanly (a fuzz smoke run, seeded).
TEST(ContainerParser, ArbitraryInputNeverCrashes) {
  const std::string pieces[] = {"[", "]", "[end]", " ", "\n", "replace", "copy", "patch", "image", "archive",
                                "/x", "vol:p/v", "http://h/a", "'", "\"", "#", ";", "=", "50M", "1", "\r", "diff"};
  std::mt19937 rng(12);
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) {
      if (rng() % 5 == 0) s += static_cast<char>(rng() % 256);
      else s += pieces[rng() % std::size(pieces)];
    }
    auto r = parseContainer(s, "fuzz");
    if (r.ok()) {
      EXPECT_LE(r->xl_config.size(), s.size());
    }
  }
}

}  // namespace
}  // namespace xenctl::customize
