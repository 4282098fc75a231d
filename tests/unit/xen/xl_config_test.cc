// The xl config reader: real-world xl.cfg(5) files through libxlutil into a
// DomainSpec, and every key or option it cannot carry refused by name.
#include "lib/xen/xl_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "lib/xen/libxl_c.h"
#include "lib/xen/xl_reader.h"

namespace xenctl::xen {
namespace {

using core::DomainType;
using core::LifecycleAction;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

core::DomainSpec read(const std::string& text, const std::string& file = "guest.cfg") {
  Result<core::DomainSpec> s = readXlConfig(text, file);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : core::DomainSpec{};
}

// The refusal's message (std::string, so gmock prints it as text).
struct Refusal {
  absl::StatusCode code;
  std::string message;
};

Refusal readError(const std::string& text, const std::string& file = "guest.cfg") {
  Result<core::DomainSpec> s = readXlConfig(text, file);
  EXPECT_FALSE(s.ok()) << "accepted:\n" << text;
  return {s.status().code(), std::string(s.status().message())};
}

// A Debian-style PV guest (xen-tools' layout): kernel + ramdisk, root and
// extra joined as xl joins them, legacy phy: disks, a vif with blanks.
TEST(ReadXlConfig, PvGuestWithKernelAndRamdisk) {
  core::DomainSpec s = read(R"(#
# Configuration file for the Xen instance web1, created by xen-tools
#
name        = 'web1'
uuid        = "6F1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8"
type        = "pv"
kernel      = '/boot/vmlinuz-6.1.0-13-amd64'
ramdisk     = '/boot/initrd.img-6.1.0-13-amd64'
root        = '/dev/xvda2 ro'
extra       = 'console=hvc0 elevator=noop'
vcpus       = '2'
maxvcpus    = 4
memory      = '512'
maxmem      = 1024
disk        = [
                  'phy:/dev/vg0/web1-disk,xvda2,w',
                  'phy:/dev/vg0/web1-swap,xvda1,w',
                  '/srv/iso/tools.img,raw,xvdb,ro',
              ]
vif         = [ 'ip=192.168.1.10 ,mac=00:16:3E:4A:1B:2C,bridge=xenbr0' ]
on_poweroff = 'destroy'
on_reboot   = 'restart'
on_crash    = 'restart'
)");
  EXPECT_EQ(s.name, "web1");
  EXPECT_EQ(s.uuid, "6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8");
  EXPECT_EQ(s.type, DomainType::kPv);
  EXPECT_EQ(s.kernel, "/boot/vmlinuz-6.1.0-13-amd64");
  EXPECT_EQ(s.ramdisk, "/boot/initrd.img-6.1.0-13-amd64");
  EXPECT_EQ(s.cmdline, "root=/dev/xvda2 ro console=hvc0 elevator=noop");
  EXPECT_EQ(s.vcpus, 2u);
  EXPECT_EQ(s.maxvcpus, 4u);
  EXPECT_EQ(s.memory_mib, 512u);
  EXPECT_EQ(s.maxmem_mib, 1024u);
  ASSERT_EQ(s.disks.size(), 3u);
  EXPECT_EQ(s.disks[0], (core::DiskSpec{"/dev/vg0/web1-disk", "xvda2", "w", ""}));
  EXPECT_EQ(s.disks[1], (core::DiskSpec{"/dev/vg0/web1-swap", "xvda1", "w", ""}));
  EXPECT_EQ(s.disks[2], (core::DiskSpec{"/srv/iso/tools.img", "xvdb", "r", ""}));
  ASSERT_EQ(s.vifs.size(), 1u);
  EXPECT_EQ(s.vifs[0], (core::VifSpec{"xenbr0", "00:16:3e:4a:1b:2c", "192.168.1.10"}));
  EXPECT_EQ(s.on_poweroff, LifecycleAction::kDestroy);
  EXPECT_EQ(s.on_reboot, LifecycleAction::kRestart);
  EXPECT_EQ(s.on_crash, LifecycleAction::kRestart);
  // What the reader gives is a spec the daemon accepts.
  Result<core::DomainSpec> n = core::normalizeSpec(s);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->vifs[0].mac, "00:16:3e:4a:1b:2c");
}

// pygrub with its arguments as a list, key=value disks, a default vif.
TEST(ReadXlConfig, PygrubGuest) {
  core::DomainSpec s = read(R"(name = "db1"
bootloader = "pygrub"
bootloader_args = [ "--kernel=/vmlinuz", "--ramdisk=/initrd.img" ]
memory = 1024; vcpus = 2
disk = [ 'format=raw, vdev=xvda, access=rw, target=/srv/xen/db1.img',
         'vdev=xvdb,access=ro,backendtype=phy,target=/dev/vg0/db1-data' ]
vif = [ '' ]
)");
  EXPECT_EQ(s.type, DomainType::kPv);
  EXPECT_EQ(s.bootloader, "pygrub");
  EXPECT_EQ(s.bootloader_args, (std::vector<std::string>{"--kernel=/vmlinuz", "--ramdisk=/initrd.img"}));
  EXPECT_TRUE(s.kernel.empty());
  EXPECT_TRUE(s.uuid.empty());
  ASSERT_EQ(s.disks.size(), 2u);
  EXPECT_EQ(s.disks[0], (core::DiskSpec{"/srv/xen/db1.img", "xvda", "w", ""}));
  EXPECT_EQ(s.disks[1], (core::DiskSpec{"/dev/vg0/db1-data", "xvdb", "r", "phy"}));
  ASSERT_EQ(s.vifs.size(), 1u);
  EXPECT_EQ(s.vifs[0], core::VifSpec{});
}

// bootloader_args as one string (deprecated in xl, still read) is split at blanks.
TEST(ReadXlConfig, BootloaderArgsAsStringAreSplit) {
  core::DomainSpec s = read("name='a'\nbootloader='pygrub'\nbootloader_args='-q  --entry=1'\n");
  EXPECT_EQ(s.bootloader_args, (std::vector<std::string>{"-q", "--entry=1"}));
}

// An HVM guest with a qcow2 disk; type and the legacy builder agree.
TEST(ReadXlConfig, HvmGuest) {
  core::DomainSpec s = read(R"(type = "hvm"
builder = "hvm"
name = "win10"
memory = 4096
vcpus = 4
disk = [ '/srv/xen/win10.qcow2,qcow2,hda,w', 'format=qcow2,vdev=hdb,target=/srv/xen/data.qcow2' ]
vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
on_crash = "preserve"
)");
  EXPECT_EQ(s.type, DomainType::kHvm);
  ASSERT_EQ(s.disks.size(), 2u);
  EXPECT_EQ(s.disks[0], (core::DiskSpec{"/srv/xen/win10.qcow2", "hda", "w", "qcow2"}));
  EXPECT_EQ(s.disks[1], (core::DiskSpec{"/srv/xen/data.qcow2", "hdb", "w", "qcow2"}));
  EXPECT_EQ(s.on_crash, LifecycleAction::kPreserve);
}

// builder alone sets the type (generic is pv); type wins over nothing; pvh works.
TEST(ReadXlConfig, LegacyBuilderAndPvh) {
  EXPECT_EQ(read("name='a'\nbuilder='hvm'\n").type, DomainType::kHvm);
  EXPECT_EQ(read("name='a'\nbuilder='generic'\nkernel='/k'\n").type, DomainType::kPv);
  EXPECT_EQ(read("name='a'\ntype='pvh'\nkernel='/k'\n").type, DomainType::kPvh);
  Refusal bad = readError("name='a'\ntype='pv'\nbuilder='hvm'\n");
  EXPECT_EQ(bad.code, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message, AllOf(HasSubstr("guest.cfg:3"), HasSubstr("contradicts type 'pv'")));
  EXPECT_THAT(readError("name='a'\ntype='xen'\n").message, AllOf(HasSubstr("guest.cfg:2"), HasSubstr("'xen'")));
}

// Absent keys take xl's defaults: pv, 32 MiB, one vcpu, destroy/restart/destroy.
TEST(ReadXlConfig, XlDefaults) {
  core::DomainSpec s = read("name = 'tiny'\nkernel = '/boot/vmlinuz'\n");
  EXPECT_EQ(s.type, DomainType::kPv);
  EXPECT_EQ(s.memory_mib, 32u);
  EXPECT_EQ(s.maxmem_mib, 0u);
  EXPECT_EQ(s.vcpus, 1u);
  EXPECT_EQ(s.maxvcpus, 0u);
  EXPECT_EQ(s.on_poweroff, LifecycleAction::kDestroy);
  EXPECT_EQ(s.on_reboot, LifecycleAction::kRestart);
  EXPECT_EQ(s.on_crash, LifecycleAction::kDestroy);
  EXPECT_EQ(s.on_watchdog, LifecycleAction::kDestroy);
  EXPECT_TRUE(s.disks.empty());
  EXPECT_TRUE(s.vifs.empty());
}

// Only the maxima given: memory and vcpus follow them, as libxl fills them.
TEST(ReadXlConfig, MaximaAloneSetTheCurrentValues) {
  core::DomainSpec s = read("name='a'\nkernel='/k'\nmaxmem=256\nmaxvcpus=3\n");
  EXPECT_EQ(s.memory_mib, 256u);
  EXPECT_EQ(s.maxmem_mib, 256u);
  EXPECT_EQ(s.vcpus, 3u);
  EXPECT_EQ(s.maxvcpus, 3u);
}

// extra alone is the cmdline; root alone becomes root=...; cmdline as is; += appends.
TEST(ReadXlConfig, CmdlineForms) {
  EXPECT_EQ(read("name='a'\nkernel='/k'\nextra='console=hvc0'\n").cmdline, "console=hvc0");
  EXPECT_EQ(read("name='a'\nkernel='/k'\nroot='/dev/xvda1'\n").cmdline, "root=/dev/xvda1");
  EXPECT_EQ(read("name='a'\nkernel='/k'\ncmdline='quiet'\ncmdline += ' console=hvc0'\n").cmdline, "quiet console=hvc0");
}

// A key given twice: the last one counts, as in xl.
TEST(ReadXlConfig, LastAssignmentWins) { EXPECT_EQ(read("name='a'\nkernel='/k'\nmemory=64\nmemory=128\n").memory_mib, 128u); }

// Key names inside strings and comments are not settings; ';' separates
// settings; numbers may be hex.
TEST(ReadXlConfig, NamesInStringsAndCommentsAreNotKeys) {
  core::DomainSpec s = read(R"(# vnc = 1, serial = 'pty' -- only a comment
name = "it's" # trailing comment with 'quotes'
extra = 'vnc=1 serial=pty "x"'; kernel = "/boot/k\"x"
memory = 0x100
)");
  EXPECT_EQ(s.name, "it's");
  EXPECT_EQ(s.cmdline, "vnc=1 serial=pty \"x\"");
  EXPECT_EQ(s.kernel, "/boot/k\"x");
  EXPECT_EQ(s.memory_mib, 256u);
}

// Every key that is not a key of xl.cfg(5) (xl would ignore it silently) is
// named with its line, all at once, and nothing else is said to be wrong.
TEST(ReadXlConfig, UnknownKeysAreAllNamedWithTheirLines) {
  Refusal st = readError(R"(type = "hvm"
name = "win10"
memory = 2048
vnc_listen = "0.0.0.0"
serail = 'pty'
boot = "dc"
serail = 'vc'
usb_device = [ 'tablet' ]
)",
                         "/etc/xen/win10.cfg");
  EXPECT_EQ(st.code, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message,
              AllOf(HasSubstr("/etc/xen/win10.cfg"), HasSubstr("vnc_listen (line 4)"), HasSubstr("serail (line 5)"),
                    HasSubstr("usb_device (line 8)"), Not(HasSubstr("line 7")), Not(HasSubstr("boot (line")),
                    HasSubstr("not keys of xl.cfg(5)")));
}

// One unknown key among known ones is enough to refuse the file.
TEST(ReadXlConfig, OneUnknownKeyRefusesTheFile) {
  Refusal st = readError("name='a'\nkernel='/k'\ncpu='0-1'\n");
  EXPECT_THAT(st.message, AllOf(HasSubstr("the key cpu (line 3)"), HasSubstr("remove it")));
}

// The keys that cannot apply to a daemon-owned domain are refused with why.
TEST(ReadXlConfig, RefusedKeysSayWhy) {
  EXPECT_THAT(readError("name='a'\ntype='hvm'\nvncviewer=1\n").message,
              AllOf(HasSubstr("vncviewer (line 3)"), HasSubstr("VNC client")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\ndevice_model='/usr/bin/qemu'\n").message,
              AllOf(HasSubstr("device_model (line 3)"), HasSubstr("device_model_override")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\nvif2=[ 'bridge=xenbr0' ]\n").message,
              AllOf(HasSubstr("vif2 (line 3)"), HasSubstr("netchannel2")));
  int refused = 0;
  for (const XlKey& k : xlKeys()) refused += k.refusal.empty() ? 0 : 1;
  EXPECT_EQ(refused, 3);
}

// A key xl reads only for another type of guest is refused, naming the type.
TEST(ReadXlConfig, KeysOfAnotherGuestTypeAreRefused) {
  EXPECT_THAT(readError("name='a'\nkernel='/k'\npae=1\n").message,
              AllOf(HasSubstr("guest.cfg:3"), HasSubstr("pae applies to hvm guests only"), HasSubstr("pv guest")));
  EXPECT_THAT(readError("name='a'\ntype='hvm'\npvshim=1\n").message, HasSubstr("pvshim applies to pvh"));
  EXPECT_THAT(readError("name='a'\ntype='pvh'\nkernel='/k'\ne820_host=1\n").message,
              HasSubstr("e820_host applies to pv guests only"));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\ntimer_mode='delay_for_missed_ticks'\n").message,
              HasSubstr("timer_mode is not supported for pv"));
  EXPECT_THAT(readError("name='a'\ntype='pvh'\nkernel='/k'\nvnc=1\n").message, HasSubstr("vfb="));
}

// Syntax errors carry the file name, the line and libxlutil's own words.
TEST(ReadXlConfig, SyntaxErrorsNameFileLineAndCause) {
  Refusal st = readError("name = 'a'\n\nmemory = 512M\n", "web1.cfg");
  EXPECT_EQ(st.code, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message, AllOf(HasSubstr("web1.cfg:3"), HasSubstr("lexical error"), HasSubstr("xl.cfg(5)")));

  st = readError("name = 'a'\nkernel = \"/boot/vmlinuz\n", "web1.cfg");
  EXPECT_THAT(st.message, HasSubstr("web1.cfg:2"));

  st = readError("name = 'a'\nmemory = int(512)\n", "py.cfg");
  EXPECT_THAT(st.message, AllOf(HasSubstr("py.cfg:2"), HasSubstr("Python")));

  st = readError("name = 'a' memory = 5\n");
  EXPECT_THAT(st.message, AllOf(HasSubstr("guest.cfg:1"), HasSubstr("syntax error")));
}

// A config the mutation tests edit at random.
constexpr char kGuestToEdit[] = R"(# guest
name = 'web1' # the name
type = "pv"; memory = 0x200
extra = 'a "b" #c \'d\''
disk = [ 'phy:/dev/vg0/a,xvda,w',
         "format=raw,vdev=xvdb,target=/srv/b.img", ]
vif = [ 'bridge=xenbr0' ]
cmdline += ""
)";

// `text` with 1 to `max_edits` seeded random edits: a character of
// `alphabet` inserted or put in place of one, or one erased.
std::string mutated(std::string text, std::mt19937& rng, std::string_view alphabet, int max_edits) {
  const int edits = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_edits));
  for (int e = 0; e < edits; ++e) {
    const size_t at = rng() % (text.size() + 1);
    switch (rng() % 3) {
      case 0: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      case 1:
        if (at < text.size()) text.erase(at, 1);
        break;
      default:
        if (at < text.size()) text[at] = alphabet[rng() % alphabet.size()];
        break;
    }
  }
  return text;
}

// Each kind of syntax error names the file, the line and the column of the
// token libxlutil stopped at (libxlutil gives no column, and for an error at
// a newline it names the line before), keeps libxlutil's words and says
// what xl expects there.
TEST(ReadXlConfig, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* text;
    const char* where;  // the start of the message
    const char* hint;
  } const cases[] = {
      // An unterminated string.
      {"name = 'a'\nkernel = \"/boot/vmlinuz\nmemory = 64\n",
       "xl config g.cfg:2:10: config parsing error near `\"/boot/vmlinuz': lexical error", "ends on its line"},
      // A missing =.
      {"name = 'a'\nmemory 512\n", "xl config g.cfg:2:8: config parsing error near `512': syntax error",
       "a setting is KEY = VALUE"},
      // No value after = (libxlutil says line 1).
      {"name = 'a'\nmemory =\nvcpus = 1\n", "xl config g.cfg:2:9: config parsing error near <newline>: syntax error",
       "a value is a number"},
      // Lists: a missing comma, a doubled one, one left open.
      {"name = 'a'\ndisk = [ 'a' 'b' ]\n", "xl config g.cfg:2:14: config parsing error near `'b'': syntax error",
       "separated by commas"},
      {"name = 'a'\ndisk = [ 'a',, 'b' ]\n", "xl config g.cfg:2:14: config parsing error near `,': syntax error",
       "separated by commas"},
      {"name = 'a'\ndisk = [ 'a', 'b'\nmemory = 64\n",
       "xl config g.cfg:3:1: config parsing error near `memory': syntax error", "the list ends with ]"},
      {"name = 'a'\ndisk = [ 'a'", "xl config g.cfg:2:13: config parsing error at the end of the file: syntax error",
       "the list ends with ]"},
      // A unit after a number; an upper-case key; two values.
      {"name = 'a'\n  memory = 512M\n", "xl config g.cfg:2:15: config parsing error near `M': lexical error",
       "quote other text"},
      {"name = 'a'\nNAME = 'b'\n", "xl config g.cfg:2:1: config parsing error near `NAME': lexical error",
       "lower-case keys"},
      {"name = 'a'\t memory = 5 6\n", "xl config g.cfg:1:13: config parsing error near `memory': syntax error",
       "separated by ;"},
      // A bad escape; += of a list to a string.
      {"name = 'a'\nextra = 'x\\q'\n", "xl config g.cfg:2:9: config parsing error near `'x\\q'': invalid character",
       ""},
      {"name = 'a'\nextra = 'x'\nextra += [ 'y' ]\n",
       "xl config g.cfg:3:16: config parsing error near `]': can't add [list]", "a list to a list"},
      // Python, which xl no longer reads.
      {"name = 'a'\nmemory = int(512)\n", "xl config g.cfg:2:10: config parsing error near `int': syntax error",
       "looks like Python"},
  };
  for (const Case& c : cases) {
    Refusal st = readError(c.text, "g.cfg");
    EXPECT_EQ(st.code, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message, AllOf(::testing::StartsWith(c.where), HasSubstr(c.hint), HasSubstr("xl.cfg(5)")))
        << c.text;
  }
  // One message for each error libxlutil reports, each with its own place.
  EXPECT_THAT(readError("a = 1\nb 2\nc = 3\nd 4\n", "g.cfg").message,
              AllOf(HasSubstr("g.cfg:2:3: config parsing error near `2'"),
                    HasSubstr("; g.cfg:4:3: config parsing error near `4'")));
}

// libxlutil's messages of a text it refuses: (the line it names, the text near).
std::vector<std::pair<int, std::string>> libxlutilSyntaxErrors(const std::string& text, bool* refused) {
  xlread::ReportStream report;
  XLU_Config* cfg = xlu_cfg_init(report.get(), "f");
  *refused = xlu_cfg_readdata(cfg, text.data(), static_cast<int>(text.size())) != 0;
  xlu_cfg_destroy(cfg);
  std::vector<std::pair<int, std::string>> out;
  for (const std::string& line : report.takeLines()) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    const std::string kNear = " config parsing error near ";
    int n = 0;
    if (parts.size() < 3 || parts[0] != "f" || !absl::SimpleAtoi(parts[1], &n) || !absl::StartsWith(parts[2], kNear))
      continue;
    std::string near = parts[2].substr(kNear.size());
    if (absl::StartsWith(near, "<newline>")) {
      near = "<newline>";
    } else if (absl::StartsWith(near, "`")) {
      near = near.substr(1, near.rfind("': ") - 1);  // no message holds "': "
    }
    out.emplace_back(n, near);
  }
  return out;
}

// The locator that adds the columns finds the errors libxlutil reports, on
// the same (reported) lines and near the same text, for seeded random edits
// of a config: where they agree, every message gets its column.
TEST(ReadXlConfig, SyntaxLocatorAgreesWithLibxlutil) {
  const std::string base = std::string(kGuestToEdit) + "extra += ' \\\\ \\n'\nvnuma = [ [ 'pnode=0' ], [ ] ]\n";
  constexpr std::string_view kAlphabet = "\n\t #'\"\\[],;=+.-_()abcxyzM0189";
  std::mt19937 rng(20261207);
  int refused = 0;
  for (int round = 0; round < 30000; ++round) {
    std::string text = mutated(base, rng, kAlphabet, 4);
    if (rng() % 4 == 0) text.resize(rng() % (text.size() + 1));  // cut short, as at an unfinished line
    bool is_refused = false;
    std::vector<std::pair<int, std::string>> said = libxlutilSyntaxErrors(text, &is_refused);
    std::vector<std::pair<int, std::string>> found;
    for (const xlread::SyntaxError& e : xlread::locateSyntaxErrors(text)) found.emplace_back(e.reported_line, e.near);
    ASSERT_EQ(said, found) << "--- text\n" << text;
    ASSERT_EQ(is_refused, !found.empty()) << "--- text\n" << text;
    refused += is_refused ? 1 : 0;
  }
  EXPECT_GT(refused, 10000);
}

// Values of the wrong kind or out of range are refused with the key and line.
TEST(ReadXlConfig, BadValuesNameKeyAndLine) {
  EXPECT_THAT(readError("name='a'\nmemory='lots'\n").message,
              AllOf(HasSubstr("guest.cfg:2"), HasSubstr("memory"), HasSubstr("not a valid number")));
  EXPECT_THAT(readError("name='a'\n\nmemory=[ '512' ]\n").message,
              AllOf(HasSubstr("guest.cfg:3"), HasSubstr("memory"), HasSubstr("list")));
  EXPECT_THAT(readError("name='a'\nvcpus=0\n").message,
              AllOf(HasSubstr("guest.cfg:2: vcpus: value `0'"), HasSubstr("minimum")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\ndisk='/dev/vg0/a,xvda,w'\n").message,
              AllOf(HasSubstr("guest.cfg:3"), HasSubstr("disk"), HasSubstr("single value")));
  EXPECT_THAT(readError("name='a'\nuuid='not-a-uuid'\n").message,
              AllOf(HasSubstr("guest.cfg:2"), HasSubstr("'not-a-uuid' is not a uuid")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\non_crash='soft-reset'\n").message,
              AllOf(HasSubstr("guest.cfg:3"), HasSubstr("on_crash"), HasSubstr("soft-reset")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\non_watchdog='soft-reset'\n").message,
              AllOf(HasSubstr("guest.cfg:3"), HasSubstr("on_watchdog soft-reset"), HasSubstr("use restart")));
  EXPECT_THAT(readError("memory = 64\n").message, HasSubstr("name is missing"));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\ncmdline='quiet'\nroot='/dev/xvda'\n").message,
              AllOf(HasSubstr("guest.cfg:4"), HasSubstr("not both")));
}

// A wrong value names the file, the line, the key and what the key takes,
// for each kind of key: names (enums), numbers, 0/1 flags, single values,
// lists, and the disk= / vif= / pci= spec strings.
TEST(ReadXlConfig, WrongValuesNameTheKeyAndWhatItTakes) {
  const std::string pv = "name = 'a'\nkernel = '/k'\n";
  const std::string hvm = "name = 'a'\ntype = 'hvm'\n";
  struct Case {
    std::string head;  // two lines
    const char* setting;
    const char* takes;  // what the message must say the key takes
  } const cases[] = {
      // Names.
      {pv, "on_poweroff = 'reboot'", "on_poweroff 'reboot' is not destroy, restart, rename-restart, preserve"},
      {pv, "on_reboot = 'again'", "on_reboot 'again' is not destroy, restart,"},
      {pv, "on_crash = [ 'restart' ]", "on_crash takes destroy, restart, rename-restart,"},
      {pv, "on_watchdog = 'bark'", "on_watchdog 'bark' is not destroy, restart,"},
      {pv, "on_soft_reset = 'x'", "on_soft_reset 'x' is not destroy,"},
      {"name = 'a'\n\n", "type = 'hvmx'", "type 'hvmx' is not pv, pvh or hvm"},
      {"name = 'a'\n\n", "type = [ 'hvm' ]", "type takes pv, pvh or hvm, not a list"},
      {"name = 'a'\n\n", "builder = 'linux'", "builder 'linux' is not hvm or generic"},
      {hvm, "device_model_version = 'qemu'", "device_model_version 'qemu' is not qemu-xen or qemu-xen-traditional"},
      {pv, "tsc_mode = 'fast'", "tsc_mode 'fast' is not one of default, always_emulate, native, native_paravirt"},
      {pv, "tsc_mode = 9", "tsc_mode 9 is out of range; use one of default, always_emulate"},
      {hvm, "timer_mode = 'fast'", "timer_mode 'fast' is not one of delay_for_missed_ticks,"},
      {hvm, "altp2m = 'on'", "altp2m 'on' is not one of disabled, mixed, external, limited"},
      {hvm, "vga = 'vesa'", "vga 'vesa' is not stdvga, cirrus, none or qxl"},
      {hvm, "hdtype = 'scsi'", "hdtype 'scsi' is not ide or ahci"},
      {hvm, "bios = 'uefi'", "bios 'uefi' is not rombios, seabios or ovmf"},
      {pv, "passthrough = 'on'", "passthrough 'on' is not default, disabled, enabled, sync_pt or share_pt"},
      {hvm, "vendor_device = 'qemu'", "vendor_device 'qemu' is not none or xenserver"},
      // Numbers.
      {pv, "memory = 'lots'", "memory takes a whole number from 1 to 16777216, not 'lots'"},
      {pv, "maxmem = 0", "maxmem takes a whole number from 1 to 16777216, not '0'"},
      {pv, "vcpus = [ 2 ]", "vcpus takes a whole number from 1 to 2147483647, not a list"},
      {pv, "max_grant_frames = 'big'", "max_grant_frames takes a whole number from 0 to 2147483647, not 'big'"},
      {pv, "cpu_weight = 'heavy'", "cpu_weight takes a whole number, not 'heavy'"},
      {pv, "memory += 5", "can't use += with numbers"},
      // Flags.
      {hvm, "localtime = 'yes'", "localtime takes 0 or 1, not 'yes'"},
      {hvm, "acpi = 'on'", "acpi takes 0 or 1, not 'on'"},
      {hvm, "hpet = [ 1 ]", "hpet takes 0 or 1, not a list"},
      {hvm, "vnc = 'yes'", "vnc takes 0 or 1, not 'yes'"},
      // Single values and lists.
      {pv, "cmdline = [ 'quiet' ]", "cmdline takes one value ('...' or a number), not a list"},
      {pv, "disk = '/dev/vg0/a,xvda,w'", "disk takes a list: disk = [ '...', ... ]"},
      {pv, "vif = 'bridge=xenbr0'", "vif takes a list: vif = [ '...', ... ]"},
      // Spec strings.
      {pv, "disk = [ '/srv/a.img,raw,xvda,rwx' ]", "unknown value for access: near `rwx'"},
      {pv, "disk = [ 'a,b,c,d,e' ]", "unknown value for format: near `b'"},
      {pv, "vif = [ 'mac=zz' ]", "mac 'zz' is not six hex octets XX:XX:XX:XX:XX:XX"},
      {pv, "vif = [ 'rate=fast' ]", "invalid rate in `fast' (RATE/s[@INTERVAL]"},
      {pv, "pci = [ 'zz' ]", "pci 0 'zz' is not a PCI_SPEC_STRING ([DDDD:]BB:DD.F"},
      {pv, "cpus = 'x-y'", "cpus: 'x-y' is not a cpu range (N, N-M, ^N, nodes:N-M or all"},
  };
  for (const Case& c : cases) {
    Refusal st = readError(c.head + c.setting + "\n", "g.cfg");
    EXPECT_EQ(st.code, absl::StatusCode::kInvalidArgument) << c.setting;
    EXPECT_THAT(st.message, AllOf(::testing::StartsWith("xl config g.cfg:3: "), HasSubstr(c.takes))) << c.setting;
  }
}

// Every disk option is accepted: the typed disk keeps target, vdev, access
// and format, and the text carries the rest. Disk syntax errors are named.
TEST(ReadXlConfig, DiskOptionsAreCarried) {
  core::DomainSpec s = read(
      "name='a'\nkernel='/k'\ndisk=[ 'vdev=xvda,access=rw,script=block-drbd,discard,target=/dev/drbd0', "
      "'/srv/cd.iso,raw,hdc:cdrom,r', '/srv/a.vhd,vhd,xvdc,w' ]\n");
  ASSERT_EQ(s.disks.size(), 3u);
  EXPECT_EQ(s.disks[0], (core::DiskSpec{"/dev/drbd0", "xvda", "w", ""}));
  EXPECT_EQ(s.disks[1], (core::DiskSpec{"/srv/cd.iso", "hdc", "r", ""}));
  EXPECT_EQ(s.disks[2], (core::DiskSpec{"/srv/a.vhd", "xvdc", "w", "vhd"}));
  EXPECT_THAT(s.xl_config_text, HasSubstr("script=block-drbd"));
  Refusal st = readError("name='a'\nkernel='/k'\ndisk=[ 'vdev=xvda,bogus=1,target=/srv/a.img' ]\n");
  EXPECT_THAT(st.message, AllOf(HasSubstr("disk 0"), HasSubstr("unknown parameter"), HasSubstr("bogus=1")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\ndisk=[ '/srv/a.img' ]\n").message, HasSubstr("no vdev"));
}

// Every vif option of xl-network-configuration(5) is accepted; an unknown one
// or an item that is not key=value is named.
TEST(ReadXlConfig, VifOptionsAreCarriedAndUnknownOnesNamed) {
  core::DomainSpec s =
      read("name='a'\nkernel='/k'\nvif=[ 'bridge=xenbr0', 'bridge=xenbr1,model=e1000,rate=10Mb/s,ip=10.0.0.2' ]\n");
  ASSERT_EQ(s.vifs.size(), 2u);
  EXPECT_EQ(s.vifs[1], (core::VifSpec{"xenbr1", "", "10.0.0.2"}));
  Refusal st = readError("name='a'\nkernel='/k'\nvif=[ 'bridge=xenbr0', 'bridge=xenbr1,modle=e1000' ]\n");
  EXPECT_THAT(st.message, AllOf(HasSubstr("guest.cfg:3"), HasSubstr("vif 1"), HasSubstr("'modle' is not an option")));
  EXPECT_THAT(readError("name='a'\nkernel='/k'\nvif=[ 'xenbr0' ]\n").message, HasSubstr("'xenbr0' is not KEY=VALUE"));
}

// A text far larger than any xl config is refused before libxlutil sees it.
TEST(ReadXlConfig, OversizedTextIsRefused) {
  std::string big = "name = 'a'\n" + std::string(kMaxXlConfigBytes, '#');
  EXPECT_THAT(readError(big).message, HasSubstr("at most"));
}

// A NUL byte, even inside a quoted string, is refused before libxlutil's
// lexer sees it (found by xl_config_fuzz: its dequote asserted, aborting
// the daemon; tests/fuzz/corpus/xl_config_fuzz/crash-nul-in-string).
TEST(ReadXlConfig, NulByteIsRefusedNotAborted) {
  using namespace std::string_literals;
  EXPECT_THAT(readError("name = 'a'\ndisk = [ 'fi\0le:/root/cd.iso,hdc:cdrom,r' ]\n"s).message,
              AllOf(HasSubstr(":2: holds a NUL byte"), HasSubstr("offset 23")));
  EXPECT_THAT(readError("\0"s).message, HasSubstr("NUL"));
}

// The key scanner agrees with libxlutil on every text libxlutil accepts:
// seeded random edits of a real config never make the reader report its own
// bug (INTERNAL), whatever libxlutil thinks of the edited text.
TEST(ReadXlConfig, ScannerAgreesWithLibxlutilOnMutatedConfigs) {
  const std::string base = kGuestToEdit;
  constexpr std::string_view kAlphabet = "\n\t #'\"\\[],;=+.-_abcxyz0189";
  std::mt19937 rng(20261123);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = mutated(base, rng, kAlphabet, 3);
    Result<core::DomainSpec> r = readXlConfig(text, "fuzz.cfg");
    ASSERT_NE(r.status().code(), absl::StatusCode::kInternal) << r.status() << "\n--- text\n" << text;
    // Accepted by libxlutil and by the mapping, or refused for a reason; both fine.
    if (r.ok() || !absl::StrContains(r.status().message(), "parsing error")) ++accepted;
  }
  EXPECT_GT(accepted, 1000);  // the edits must reach the scanner, not only libxlutil's syntax check
}

}  // namespace
}  // namespace xenctl::xen
