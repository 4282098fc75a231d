// The LVM pools against recorded lvm2 reports: JSON parsing (fixtures
// captured in the lab by tests/lab/scenarios/storage.sh), the command lines
// run, the guard-rail arithmetic and refusals. No LVM is run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "lib/storage/lvm.h"
#include "lib/storage/lvm_volumes.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_process_runner.h"

namespace xenctl::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(XENCTL_FIXTURES) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One lvs row in lvm2 2.03's JSON (every value a string).
struct Lv {
  std::string name, attr, segtype = "thin", pool = "xcthin", origin;
  uint64_t size = 64 * kMiB, origin_size = 0;
  std::string data = "0.00", meta = "", tags = "";
};
std::string lvsJson(const std::vector<Lv>& lvs) {
  std::vector<std::string> rows;
  for (const auto& l : lvs)
    rows.push_back(absl::StrCat(
        R"({"lv_name":")", l.name, R"(", "vg_name":"vg0", "lv_attr":")", l.attr, R"(", "lv_size":")", l.size,
        R"(", "segtype":")", l.segtype, R"(", "origin":")", l.origin, R"(", "origin_size":")",
        l.origin_size ? absl::StrCat(l.origin_size) : "", R"(", "pool_lv":")", l.pool, R"(", "data_percent":")", l.data,
        R"(", "metadata_percent":")", l.meta, R"(", "lv_tags":")", l.tags, R"(", "lv_time":"1795000000"})"));
  return absl::StrCat("  {\n      \"report\": [\n          {\n              \"lv\": [\n                  ",
                      absl::StrJoin(rows, ",\n                  "), "\n              ]\n          }\n      ]\n  }\n");
}
Lv thinPool(uint64_t size, const std::string& data, const std::string& meta) {
  return Lv{"xcthin", "twi-aotz--", "thin-pool", "", "", size, 0, data, meta, ""};
}
Lv thin(const std::string& name, uint64_t size, const std::string& tags = "", const std::string& attr = "Vwi-a-tz--") {
  return Lv{name, attr, "thin", "xcthin", "", size, 0, "1.00", "", tags};
}

// Every report is taken afresh (no reuse, see VolumeGroups) unless `reuse`,
// so that the tests can script each one.
LvmCommon common(std::shared_ptr<core::ProcessRunner> runner, WarnFn warn = nullptr,
                 absl::Duration timeout = absl::Minutes(5), absl::Duration reuse = absl::ZeroDuration()) {
  static const fakes::FakeClock clock;
  LvmCommon c;
  c.clock = &clock;
  c.runner = std::move(runner);
  c.groups = std::make_shared<VolumeGroups>(reuse);
  c.warn = std::move(warn);
  c.lvm_timeout = timeout;
  return c;
}
LvmThinOptions thinOptions(double overcommit = 10, double data = 80, double meta = 80) {
  LvmThinOptions o;
  o.vg = "vg0";
  o.thinpool = "xcthin";
  o.max_overcommit = overcommit;
  o.data_watermark = data;
  o.metadata_watermark = meta;
  return o;
}
LvmSnapshotOptions snapOptions(uint64_t bytes = 0, double percent = 20, double watermark = 80) {
  LvmSnapshotOptions o;
  o.vg = "vg0";
  o.snapshot_bytes = bytes;
  o.snapshot_percent = percent;
  o.snapshot_watermark = watermark;
  return o;
}

// ------------------------------------------------------------ parsing

// A real `lvs --reportformat json` of the lab's VG: the thin pool, a thin
// volume and its golden snapshot, with sizes in bytes and tags.
TEST(LvmReport, ParsesRealThinReport) {
  auto rows = parseLvsReport(fixture("lvs-thin.json"));
  ASSERT_TRUE(rows.ok()) << rows.status();
  const LvRow *pool = nullptr, *base = nullptr, *golden = nullptr;
  for (const auto& r : *rows) {
    EXPECT_EQ(r.vg, "vg0");
    if (r.name == "xcthin") pool = &r;
    if (r.name == "base") base = &r;
    if (r.name == "base+golden") golden = &r;
  }
  ASSERT_NE(pool, nullptr);
  ASSERT_NE(base, nullptr);
  ASSERT_NE(golden, nullptr);
  EXPECT_TRUE(pool->thinPool());
  EXPECT_EQ(pool->segtype, "thin-pool");
  EXPECT_EQ(pool->size, kGiB);
  EXPECT_GE(pool->data_percent, 0.0);
  EXPECT_GT(pool->metadata_percent, 0.0);
  EXPECT_TRUE(base->thinVolume());
  EXPECT_EQ(base->pool_lv, "xcthin");
  EXPECT_EQ(base->size, 64 * kMiB);
  EXPECT_FALSE(base->readOnly());
  EXPECT_TRUE(base->active());
  EXPECT_GT(base->data_percent, 0.0);  // mkfs.ext4 and the marker wrote something
  EXPECT_GT(base->time, absl::FromUnixSeconds(1'600'000'000));
  EXPECT_TRUE(golden->readOnly());
  EXPECT_FALSE(golden->active());
  EXPECT_TRUE(golden->skipActivation());
  EXPECT_EQ(golden->origin, "base");
  EXPECT_EQ(golden->tag("xenctl.origin"), "base");
}

// A real report with classic snapshots: a clone's lv_size is its COW store,
// origin_size the origin's, data_percent the COW store's use.
TEST(LvmReport, ParsesRealClassicReport) {
  auto rows = parseLvsReport(fixture("lvs-classic.json"));
  ASSERT_TRUE(rows.ok()) << rows.status();
  const LvRow* clone = nullptr;
  const LvRow* snap = nullptr;
  for (const auto& r : *rows) {
    if (r.name == "sroot1") clone = &r;
    if (r.name == "svol+v1") snap = &r;
  }
  ASSERT_NE(clone, nullptr);
  ASSERT_NE(snap, nullptr);
  EXPECT_TRUE(clone->classicSnapshot());
  EXPECT_EQ(clone->origin, "sbase");
  EXPECT_EQ(clone->origin_size, 32 * kMiB);
  EXPECT_EQ(clone->size, 16 * kMiB);
  EXPECT_EQ(clone->tag("xenctl.pool"), "snap");
  EXPECT_FALSE(clone->readOnly());
  EXPECT_TRUE(snap->readOnly());
  EXPECT_GT(snap->data_percent, 60.0);  // the scenario filled it past its watermark
}

// vgs gives the VG's size, free space and extent size in bytes.
TEST(LvmReport, ParsesRealVgsReport) {
  auto vg = parseVgsReport(fixture("vgs.json"), "vg0");
  ASSERT_TRUE(vg.ok()) << vg.status();
  EXPECT_GT(vg->size, 4 * kGiB);
  EXPECT_GT(vg->free, 0u);
  EXPECT_LT(vg->free, vg->size);
  EXPECT_EQ(vg->extent_size, 4 * kMiB);
  EXPECT_EQ(parseVgsReport(fixture("vgs.json"), "vg9").status().code(), absl::StatusCode::kNotFound);
}

// Human output, truncated JSON, a wrong shape or a non-numeric size are refused, saying what.
TEST(LvmReport, RejectsWhatIsNotAReport) {
  EXPECT_EQ(parseLvsReport("  LV   VG  Attr\n  base vg0 Vwi-a-tz--\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string real = fixture("lvs-thin.json");
  EXPECT_EQ(parseLvsReport(real.substr(0, real.size() / 2)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parseLvsReport(R"({"lv": []})").status().message(), HasSubstr("report"));
  Lv bad = thin("x", 0);
  auto st = parseLvsReport(absl::StrReplaceAll(lvsJson({bad}), {{R"("lv_size":"0")", R"("lv_size":"64.00m")"}}));
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.status().message(), HasSubstr("lv_size"));
}

// lvm2 2.03.17+ (json_std) prints numbers as numbers: they are read too.
TEST(LvmReport, TakesNumbers) {
  auto rows = parseLvsReport(
      R"({"report":[{"lv":[{"lv_name":"a","vg_name":"vg0","lv_attr":"Vwi-a-tz--","lv_size":1048576,"data_percent":12.5,"lv_tags":"","lv_time":1795000000}]}]})");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].size, kMiB);
  EXPECT_DOUBLE_EQ((*rows)[0].data_percent, 12.5);
}

// The report command asks JSON, bytes without suffix and epoch times, for one VG.
TEST(LvmCommands, ReportCommandLines) {
  EXPECT_EQ(absl::StrJoin(lvsCommand("vg0"), " "),
            "lvs --reportformat json --units b --nosuffix --config report {time_format=\"%s\"} -o "
            "lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,lv_tags,"
            "lv_time vg0");
  EXPECT_EQ(absl::StrJoin(vgsCommand("vg0"), " "),
            "vgs --reportformat json --units b --nosuffix --config report {time_format=\"%s\"} -o "
            "vg_name,vg_size,vg_free,vg_extent_size vg0");
}

// lvm2's messages map to codes a caller can act on.
TEST(LvmCommands, StatusFromLvmMessages) {
  const std::vector<std::string> argv = {"lvcreate", "x"};
  EXPECT_EQ(statusFromLvm(argv, 5, "  Logical Volume \"a\" already exists in volume group \"vg0\"").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(statusFromLvm(argv, 5, "  Volume group \"vg0\" has insufficient free space (3 extents): 4 required.").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(statusFromLvm(argv, 5, "  Logical volume vg0/a in use.").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(statusFromLvm(argv, 5, "  Failed to find logical volume \"vg0/a\"").code(), absl::StatusCode::kNotFound);
  Status other = statusFromLvm(argv, 3, "  something odd");
  EXPECT_EQ(other.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(other.message(), HasSubstr("`lvcreate x` exited with 3: something odd"));
}

// ------------------------------------------------------------ names

// Volume names are LV names; a snapshot VOL@SNAP is the LV VOL+SNAP; work names are nobody's.
TEST(LvmNames, MapToLvNames) {
  EXPECT_EQ(LvmVolumes::lvName("web1"), "web1");
  EXPECT_EQ(LvmVolumes::lvName("web1@before"), "web1+before");
  EXPECT_EQ(LvmVolumes::refOf("web1+before"), "web1@before");
  EXPECT_EQ(LvmVolumes::refOf("web1"), "web1");
  EXPECT_EQ(LvmVolumes::refOf("web1++new"), "");
  EXPECT_EQ(LvmVolumes::refOf("Dom0-Root"), "");  // not a volume name: someone else's
  EXPECT_EQ(LvmVolumes::validateRef("snapshot1", false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(LvmVolumes::validateRef("a_tmeta", false).message(), HasSubstr("_tmeta"));
  EXPECT_EQ(LvmVolumes::validateRef("a@b", false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(LvmVolumes::validateRef("a@b", true).ok());
}

// ------------------------------------------------------------ lvm-thin

class LvmThinTest : public ::testing::Test {
 protected:
  std::unique_ptr<LvmThinVolumes> open(const std::string& lvs, LvmThinOptions o = thinOptions()) {
    runner_->queue("lvs", lvs);  // the pool check
    runner_->queue("lvs", lvs);  // recovery
    auto p = LvmThinVolumes::open("thin", o, common(runner_, nullptr, absl::Seconds(42)));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  std::shared_ptr<fakes::FakeProcessRunner> runner_ = std::make_shared<fakes::FakeProcessRunner>();
};

// A pool whose thin pool LV is missing or not a thin pool is refused, saying how to make one.
TEST_F(LvmThinTest, OpenNeedsAThinPool) {
  runner_->queue("lvs", lvsJson({thin("xcthin", kGiB)}));
  auto p = LvmThinVolumes::open("thin", thinOptions(), common(runner_));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("lvcreate --type thin-pool"));
}

// Opening the pool undoes a rollback a crash cut between its renames, and drops half-made volumes.
TEST_F(LvmThinTest, OpenRecoversWorkLeftByACrash) {
  const std::string lvs = lvsJson({thinPool(kGiB, "1.00", "2.00"), thin("web1++old", 64 * kMiB),
                                   thin("web2++new", 64 * kMiB), thin("web3", 64 * kMiB), thin("web3++old", 64 * kMiB)});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(runner_->commandsOf("lvrename"), ElementsAre("lvrename vg0 web1++old web1"));
  EXPECT_THAT(runner_->commandsOf("lvremove"), ElementsAre("lvremove -y vg0/web2++new", "lvremove -y vg0/web3++old"));
}

// A clone is a writable, active thin snapshot without the skip flag, tagged with its origin;
// the base (a golden snapshot here) is not activated; every command has the configured timeout.
TEST_F(LvmThinTest, CloneCommandLine) {
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB),
                                      thin("base+golden", 64 * kMiB, "xenctl.origin=base", "Vri---tz-k")});
  auto p = open(before);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", before);
  auto v = p->clone("base@golden", "web1", 0, {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y -s -kn -ay -p rw -n web1 --addtag xenctl.origin=base+golden vg0/base+golden"));
  EXPECT_THAT(runner_->commandsOf("lvchange"), IsEmpty());
  EXPECT_EQ(v->origin, "base@golden");
  EXPECT_EQ(v->path, "/dev/vg0/web1");
  EXPECT_FALSE(v->read_only);
  EXPECT_EQ(runner_->commandsOf("lvs").size(), 3u);  // open's two and the clone's one: none after the lvcreate
  for (absl::Duration t : runner_->timeouts()) EXPECT_EQ(t, absl::Seconds(42));
}

// Marking a golden base read-only is its LV's permission (lvchange -p r),
// skipped when the LV has it already; a clone of a read-only base is still
// made writable (-p rw); a snapshot is refused.
TEST_F(LvmThinTest, SetReadOnlyIsTheLvPermission) {
  const std::string rw = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  const std::string ro = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB, "", "Vri-a-tz--")});
  auto p = open(rw);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", rw);
  ASSERT_TRUE(p->setReadOnly("base", true).ok());
  EXPECT_THAT(runner_->commandsOf("lvchange"), ElementsAre("lvchange -p r vg0/base"));
  runner_->queue("lvs", ro);
  ASSERT_TRUE(p->setReadOnly("base", true).ok());
  EXPECT_EQ(runner_->commandsOf("lvchange").size(), 1u) << "already read-only: no command";
  runner_->queue("lvs", ro);
  EXPECT_TRUE(p->get("base")->read_only);
  runner_->queue("lvs", ro);
  ASSERT_TRUE(p->clone("base", "web1", 0, {}).ok());
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y -s -kn -ay -p rw -n web1 --addtag xenctl.origin=base vg0/base"));
  EXPECT_EQ(p->setReadOnly("base@s1", true).code(), absl::StatusCode::kFailedPrecondition);
}

// A report is reused by the calls that follow it: the pool's open reads the
// VG once for its two checks; two API checks and a clone read it once, and
// the clone and a delete write their outcome back instead of reading it
// again; a change whose outcome is not written back (a snapshot) makes the
// next call read the VG.
TEST(LvmReuse, ReportsAreReusedAndAmended) {
  auto runner = std::make_shared<fakes::FakeProcessRunner>();
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  runner->queue("lvs", before);
  auto p = LvmThinVolumes::open("thin", thinOptions(), common(runner, nullptr, absl::Minutes(5), absl::Hours(1)));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->get("base").ok());
  EXPECT_EQ((*p)->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(runner->commandsOf("lvs").size(), 1u);

  auto v = (*p)->clone("base", "web1", 0, {});
  ASSERT_TRUE(v.ok()) << v.status();
  auto again = (*p)->get("web1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->origin, "base");
  EXPECT_FALSE(again->read_only);
  EXPECT_EQ(again->size_bytes, 64 * kMiB);
  EXPECT_EQ(again->used_bytes, v->used_bytes);
  ASSERT_TRUE((*p)->remove("web1").ok());
  EXPECT_EQ((*p)->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(runner->commandsOf("lvs").size(), 1u);
  EXPECT_THAT(runner->commandsOf("lvcreate"), ElementsAre(HasSubstr("-n web1")));
  EXPECT_THAT(runner->commandsOf("lvremove"), ElementsAre("lvremove -y vg0/web1"));

  runner->queue("lvs", lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB),
                                thin("base+s1", 64 * kMiB, "xenctl.origin=base", "Vri---tz-k")}));
  ASSERT_TRUE((*p)->snapshot("base", "s1", {}).ok());
  EXPECT_EQ(runner->commandsOf("lvs").size(), 2u);  // after the lvcreate; the snapshot's check reused the model
  EXPECT_TRUE((*p)->get("base@s1").ok());
  EXPECT_EQ(runner->commandsOf("lvs").size(), 2u);
}

TEST(LvmReuse, ReportsExpire) {
  VolumeGroups groups(absl::Seconds(1), absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  LvRow a;
  a.name = "a";
  groups.remember("vg0", {a}, t0);
  ASSERT_TRUE(groups.recentReport("vg0", t0 + absl::Milliseconds(999)).has_value());
  EXPECT_EQ(groups.recentReport("vg0", t0 + absl::Milliseconds(999))->at(0).name, "a");
  EXPECT_FALSE(groups.recentReport("vg0", t0 + absl::Seconds(1)).has_value());
  EXPECT_FALSE(groups.recentReport("vg0", t0 - absl::Seconds(1)).has_value());  // the clock went back
  EXPECT_FALSE(groups.recentReport("vg1", t0).has_value());
  groups.changing("vg0");
  EXPECT_FALSE(groups.recentReport("vg0", t0).has_value());

  // Amended after each change of a burst, a report lasts another second each
  // time, but not past max_age from when LVM was read.
  groups.remember("vg0", {a}, t0);
  for (int s = 1; s < 10; ++s) {
    groups.changing("vg0");
    groups.amend("vg0", {a}, t0 + absl::Seconds(s) - absl::Milliseconds(500));
    EXPECT_TRUE(groups.recentReport("vg0", t0 + absl::Seconds(s)).has_value()) << s;
  }
  EXPECT_FALSE(groups.recentReport("vg0", t0 + absl::Seconds(10)).has_value());
}

// With a device waiter, a thin clone runs lvcreate without udev sync and
// waits for its /dev/VG/LV node only after releasing the VG lock (another
// clone's lvcreate may run meanwhile), with the lvm timeout, and returns
// the volume at that path.
TEST_F(LvmThinTest, CloneAwaitsItsNodeOutsideTheVgLock) {
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  runner_->queue("lvs", before);
  runner_->queue("lvs", before);
  LvmCommon c = common(runner_, nullptr, absl::Seconds(42));
  std::vector<std::string> awaited;
  bool vg_lock_free = false;
  std::shared_ptr<VolumeGroups> groups = c.groups;
  c.await_device = [&](const std::string& path, absl::Duration timeout) {
    awaited.push_back(absl::StrCat(path, " ", absl::FormatDuration(timeout)));
    std::shared_mutex& vg = groups->lockOf("vg0");
    vg_lock_free = vg.try_lock();
    if (vg_lock_free) vg.unlock();
    return absl::OkStatus();
  };
  auto p = LvmThinVolumes::open("thin", thinOptions(), c);
  ASSERT_TRUE(p.ok()) << p.status();
  runner_->queue("lvs", before);
  auto v = (*p)->clone("base", "web1", 0, {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y --noudevsync -s -kn -ay -p rw -n web1 --addtag xenctl.origin=base vg0/base"));
  EXPECT_THAT(awaited, ElementsAre("/dev/vg0/web1 42s"));
  EXPECT_TRUE(vg_lock_free) << "the VG lock was held while waiting for udev";
  EXPECT_EQ(v->path, "/dev/vg0/web1");
  EXPECT_EQ(v->host_device, "/dev/vg0/web1");
}

// A clone whose node never appears fails saying so, and its LV is removed:
// no volume is left that its caller was told does not exist.
TEST_F(LvmThinTest, CloneWithoutItsNodeIsRemoved) {
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  runner_->queue("lvs", before);
  runner_->queue("lvs", before);
  LvmCommon c = common(runner_);
  c.await_device = [](const std::string& path, absl::Duration) {
    return absl::DeadlineExceededError(absl::StrCat(path, " is not a block device"));
  };
  auto p = LvmThinVolumes::open("thin", thinOptions(), c);
  ASSERT_TRUE(p.ok()) << p.status();
  runner_->queue("lvs", before);
  auto v = (*p)->clone("base", "web1", 0, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("cloning volume 'thin/base' to 'web1'"));
  EXPECT_THAT(v.status().message(), HasSubstr("/dev/vg0/web1 is not a block device"));
  EXPECT_THAT(runner_->commandsOf("lvremove"), ElementsAre("lvremove -y vg0/web1"));
}

// A larger clone is extended after the snapshot; a smaller one is refused.
TEST_F(LvmThinTest, CloneGrows) {
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  auto p = open(before);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", before);
  auto v = p->clone("base", "web1", 128 * kMiB, {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->size_bytes, 128 * kMiB);
  EXPECT_THAT(runner_->commandsOf("lvextend"), ElementsAre("lvextend -L 134217728b vg0/web1"));
  runner_->queue("lvs", before);
  EXPECT_EQ(p->clone("base", "web2", 32 * kMiB, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

// The guard rails: over-commit past the ratio, data or metadata past the
// watermark are refused with the numbers; just under them passes.
TEST_F(LvmThinTest, GuardRailArithmetic) {
  auto p = open(lvsJson({thinPool(kGiB, "10.00", "5.00")}), thinOptions(2.0, 80, 70));
  ASSERT_NE(p, nullptr);
  // 1 GiB pool, 1.5 GiB of thin volumes: +0.5 GiB reaches exactly 2.0x (allowed), +0.5 GiB + 1 MiB does not.
  const auto rows = *parseLvsReport(
      lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("a", kGiB), thin("b", kGiB / 2)}));
  EXPECT_TRUE(p->checkGuardRails(rows, kGiB / 2, "cloning x").ok());
  Status over = p->checkGuardRails(rows, kGiB / 2 + kMiB, "cloning x");
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.message(), HasSubstr("cloning x: thin pool vg0/xcthin would be over-committed 2.00x"));
  EXPECT_THAT(over.message(), HasSubstr("2.00 GiB of thin volumes"));
  EXPECT_THAT(over.message(), HasSubstr("on 1.00 GiB of data space"));
  EXPECT_THAT(over.message(), HasSubstr("past max_overcommit 2.00x"));

  const auto full = *parseLvsReport(lvsJson({thinPool(kGiB, "80.00", "5.00")}));
  Status data = p->checkGuardRails(full, kMiB, "creating y");
  EXPECT_EQ(data.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(data.message(), HasSubstr("data is 80.0% full (0.80 GiB of 1.00 GiB), at or past data_watermark 80.0%"));
  EXPECT_TRUE(p->checkGuardRails(*parseLvsReport(lvsJson({thinPool(kGiB, "79.99", "69.99")})), kMiB, "y").ok());

  Status meta = p->checkGuardRails(*parseLvsReport(lvsJson({thinPool(kGiB, "1.00", "70.00")})), kMiB, "creating y");
  EXPECT_EQ(meta.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(meta.message(), HasSubstr("metadata is 70.0% full, at or past metadata_watermark 70.0%"));
}

// A refused clone runs no lvcreate.
TEST_F(LvmThinTest, RefusedCloneChangesNothing) {
  const std::string lvs = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB)});
  auto p = open(lvs, thinOptions(1.0, 80, 80));
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  auto v = p->clone("base", "big", 2 * kGiB, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(runner_->commandsOf("lvcreate"), IsEmpty());
}

// A snapshot is read-only and skipped at activation (a golden copy, left inactive).
TEST_F(LvmThinTest, SnapshotCommandLine) {
  const std::string before = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("web1", 64 * kMiB)});
  auto p = open(before);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", before);
  runner_->queue("lvs", lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("web1", 64 * kMiB),
                                 thin("web1+s1", 64 * kMiB, "xenctl.origin=web1", "Vri---tz-k")}));
  auto v = p->snapshot("web1", "s1", {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y -s -ky -p r -n web1+s1 --addtag xenctl.origin=web1 vg0/web1"));
  EXPECT_TRUE(v->read_only);
  EXPECT_EQ(v->name, "web1@s1");
}

// Rollback: a writable snapshot of the snapshot under a work name, then the rename swap, then the old one goes.
TEST_F(LvmThinTest, RollbackSwapsByRename) {
  const std::string lvs = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("web1", 64 * kMiB, "xenctl.origin=base"),
                                   thin("web1+s1", 64 * kMiB, "xenctl.origin=web1", "Vri---tz-k")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  runner_->queue("lvs", lvs);
  auto v = p->rollback("web1", "s1", {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commands(),
              testing::IsSupersetOf({"lvcreate -y -s -kn -ay -p rw -n web1++new --addtag xenctl.origin=base vg0/web1+s1",
                                     "lvrename vg0 web1 web1++old", "lvrename vg0 web1++new web1",
                                     "lvremove -y vg0/web1++old"}));
  const auto cmds = runner_->commands();
  auto at = [&](const std::string& c) { return std::find(cmds.begin(), cmds.end(), c) - cmds.begin(); };
  EXPECT_LT(at("lvrename vg0 web1 web1++old"), at("lvrename vg0 web1++new web1"));
  EXPECT_LT(at("lvrename vg0 web1++new web1"), at("lvremove -y vg0/web1++old"));
}

// A failed second rename puts the old volume back: the caller never sees the name empty.
TEST_F(LvmThinTest, RollbackUndoesAFailedSwap) {
  const std::string lvs = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("web1", 64 * kMiB),
                                   thin("web1+s1", 64 * kMiB, "xenctl.origin=web1", "Vri---tz-k")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  runner_->queue("lvrename", "");
  runner_->queue("lvrename", "  Device busy", 5);
  EXPECT_FALSE(p->rollback("web1", "s1", {}).ok());
  EXPECT_THAT(runner_->commandsOf("lvrename"), ElementsAre("lvrename vg0 web1 web1++old", "lvrename vg0 web1++new web1",
                                                           "lvrename vg0 web1++old web1"));
  EXPECT_THAT(runner_->commandsOf("lvremove"), ElementsAre("lvremove -y vg0/web1++new"));
}

// Deleting a volume with clones or snapshots is refused, naming them.
TEST_F(LvmThinTest, RemoveRefusedWithChildren) {
  const std::string lvs = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB),
                                   thin("base+golden", 64 * kMiB, "xenctl.origin=base", "Vri---tz-k"),
                                   thin("web1", 64 * kMiB, "xenctl.origin=base+golden")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  Status st = p->remove("base");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("snapshots (golden)"));
  runner_->queue("lvs", lvs);
  st = p->remove("base@golden");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("cloned from it (web1)"));
  runner_->queue("lvs", lvs);
  EXPECT_TRUE(p->remove("web1").ok());
  EXPECT_THAT(runner_->commandsOf("lvremove"), ElementsAre("lvremove -y vg0/web1"));
}

// dependents() reads the same report as remove(): snapshots by name, clones by origin tag.
TEST_F(LvmThinTest, DependentsFromTheReport) {
  const std::string lvs = lvsJson({thinPool(kGiB, "10.00", "5.00"), thin("base", 64 * kMiB),
                                   thin("base+golden", 64 * kMiB, "xenctl.origin=base", "Vri---tz-k"),
                                   thin("web1", 64 * kMiB, "xenctl.origin=base+golden"),
                                   thin("web0", 64 * kMiB, "xenctl.origin=base")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  auto d = p->dependents("base");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->snapshots, ElementsAre("golden"));
  EXPECT_THAT(d->clones, ElementsAre("web0"));
  runner_->queue("lvs", lvs);
  d = p->dependents("base@golden");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->clones, ElementsAre("web1"));
  runner_->queue("lvs", lvs);
  EXPECT_EQ(p->dependents("nope").status().code(), absl::StatusCode::kNotFound);
}

// Listing shows this thin pool's volumes only, with use from data_percent and snapshots by name.
TEST_F(LvmThinTest, ListAndPoolInfo) {
  Lv other = thin("elsewhere", kGiB);
  other.pool = "pool";
  const std::string lvs =
      lvsJson({thinPool(kGiB, "25.00", "7.50"), thin("base", 64 * kMiB),
               thin("base+golden", 64 * kMiB, "xenctl.origin=base", "Vri---tz-k"), other,
               Lv{"root", "-wi-ao----", "linear", "", "", 8 * kGiB}, thin("web1", 128 * kMiB, "xenctl.origin=base+golden")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->setDefault("lvs", lvs);
  auto vs = p->list();
  ASSERT_TRUE(vs.ok()) << vs.status();
  std::vector<std::string> names;
  for (const auto& v : *vs) names.push_back(v.name);
  EXPECT_THAT(names, ElementsAre("base", "base@golden", "web1"));
  EXPECT_THAT((*vs)[0].snapshots, ElementsAre("golden"));
  EXPECT_EQ((*vs)[2].used_bytes, 128 * kMiB / 100);
  auto info = p->poolInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->driver, "lvm-thin");
  EXPECT_EQ(info->path, "vg0/xcthin");
  EXPECT_EQ(info->size_bytes, kGiB);
  EXPECT_EQ(info->used_bytes, kGiB / 4);
  EXPECT_EQ(info->free_bytes, 3 * kGiB / 4);
  EXPECT_EQ(info->allocated_bytes, 256 * kMiB);
  EXPECT_DOUBLE_EQ(info->metadata_percent, 7.5);
  EXPECT_EQ(info->volumes, 3u);
}

// ------------------------------------------------------------ lvm-snapshot

Lv plain(const std::string& name, uint64_t size) {
  return Lv{name, "owi-a-----", "linear", "", "", size, 0, "", "", "xenctl.pool=snap"};
}
Lv cow(const std::string& name, const std::string& origin, uint64_t cow, uint64_t origin_size, const std::string& data,
       const std::string& attr = "swi-a-s---") {
  return Lv{name, attr, "linear", "", origin, cow, origin_size, data, "",
            absl::StrCat("xenctl.origin=", origin, ",xenctl.pool=snap")};
}
const char* kVgs =
    R"({"report":[{"vg":[{"vg_name":"vg0", "vg_size":"8585740288", "vg_free":"1073741824", "vg_extent_size":"4194304"}]}]})";

class LvmSnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<LvmSnapshotVolumes> open(const std::string& lvs, LvmSnapshotOptions o = snapOptions()) {
    runner_->setDefault("vgs", kVgs);
    runner_->queue("lvs", lvs);
    auto p = LvmSnapshotVolumes::open("snap", o,
                                      common(runner_, [this](const std::string& m) { warnings_.push_back(m); }));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  std::shared_ptr<fakes::FakeProcessRunner> runner_ = std::make_shared<fakes::FakeProcessRunner>();
  std::vector<std::string> warnings_;
};

// The COW store: a fixed size or a percent of the origin, rounded up to whole extents.
TEST_F(LvmSnapshotTest, CowSizeArithmetic) {
  auto pct = open(lvsJson({}), snapOptions(0, 20, 80));
  ASSERT_NE(pct, nullptr);
  EXPECT_EQ(pct->cowBytes(100 * kMiB, 4 * kMiB), 20 * kMiB);
  EXPECT_EQ(pct->cowBytes(101 * kMiB, 4 * kMiB), 24 * kMiB);  // 20.2 MiB -> 6 extents
  EXPECT_EQ(pct->cowBytes(kMiB, 4 * kMiB), 4 * kMiB);         // at least one extent
  auto fixed = open(lvsJson({}), snapOptions(10 * kMiB, 20, 80));
  ASSERT_NE(fixed, nullptr);
  EXPECT_EQ(fixed->cowBytes(kGiB, 4 * kMiB), 12 * kMiB);
}

// A clone is a classic snapshot with its COW store, tagged with pool and origin; only this pool's LVs count.
TEST_F(LvmSnapshotTest, CloneCommandLine) {
  Lv foreign = plain("dom0root", 8 * kGiB);
  foreign.tags = "";
  const std::string before = lvsJson({plain("sbase", 32 * kMiB), foreign});
  auto p = open(before, snapOptions(16 * kMiB, 20, 80));
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", before);
  runner_->queue("lvs", lvsJson({plain("sbase", 32 * kMiB), foreign, cow("sroot1", "sbase", 16 * kMiB, 32 * kMiB, "0.01")}));
  auto v = p->clone("sbase", "sroot1", 0, {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y -s -L 16777216b -p rw -n sroot1 --addtag xenctl.pool=snap --addtag "
                          "xenctl.origin=sbase vg0/sbase"));
  EXPECT_EQ(v->size_bytes, 32 * kMiB);
  EXPECT_EQ(v->origin, "sbase");
  runner_->queue("lvs", before);
  EXPECT_EQ(p->get("dom0root").status().code(), absl::StatusCode::kNotFound);
}

// On lvm-snapshot the read-only mark is the tag xenctl.readonly=1 (the LV's
// permission stays rw, which classic clones of it need until the lab proves
// otherwise), honoured as read-only: no resize, no rollback onto it.
TEST_F(LvmSnapshotTest, ReadOnlyMarkIsATag) {
  const std::string rw = lvsJson({plain("sbase", 32 * kMiB)});
  Lv marked = plain("sbase", 32 * kMiB);
  marked.tags = "xenctl.pool=snap,xenctl.readonly=1";
  const std::string ro = lvsJson({marked});
  auto p = open(rw);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", rw);
  ASSERT_TRUE(p->setReadOnly("sbase", true).ok());
  EXPECT_THAT(runner_->commandsOf("lvchange"), ElementsAre("lvchange --addtag xenctl.readonly=1 vg0/sbase"));
  runner_->queue("lvs", ro);
  EXPECT_TRUE(p->get("sbase")->read_only);
  runner_->queue("lvs", ro);
  EXPECT_EQ(p->resize("sbase", 64 * kMiB).status().code(), absl::StatusCode::kFailedPrecondition);
  runner_->queue("lvs", ro);
  ASSERT_TRUE(p->setReadOnly("sbase", false).ok());
  EXPECT_THAT(runner_->commandsOf("lvchange"), ElementsAre("lvchange --addtag xenctl.readonly=1 vg0/sbase",
                                                           "lvchange --deltag xenctl.readonly=1 vg0/sbase"));
}

// Classic snapshots cannot be snapshotted: a clone of a clone, or a larger clone, is refused saying why.
TEST_F(LvmSnapshotTest, CloneOfCloneRefused) {
  const std::string lvs = lvsJson({plain("sbase", 32 * kMiB), cow("sroot1", "sbase", 16 * kMiB, 32 * kMiB, "1.00")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  auto v = p->clone("sroot1", "child", 0, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(v.status().message(), HasSubstr("lvm-thin"));
  runner_->queue("lvs", lvs);
  EXPECT_EQ(p->clone("sbase", "big", 64 * kMiB, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(runner_->commandsOf("lvcreate"), IsEmpty());
}

// A clone needs its COW store free in the VG: refused with both numbers otherwise.
TEST_F(LvmSnapshotTest, CloneNeedsFreeSpace) {
  const std::string lvs = lvsJson({plain("sbase", 32 * kGiB)});
  auto p = open(lvs, snapOptions(0, 20, 80));  // 20% of 32 GiB = 6.4 GiB > 1 GiB free
  ASSERT_NE(p, nullptr);
  runner_->queue("lvs", lvs);
  auto v = p->clone("sbase", "web1", 0, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(v.status().message(), HasSubstr("6.40 GiB"));
  EXPECT_THAT(v.status().message(), HasSubstr("has 1073741824 bytes (1.00 GiB) free"));
}

// A COW store past the watermark is warned about once, and rolling back onto it is refused.
TEST_F(LvmSnapshotTest, NearFullSnapshot) {
  const std::string lvs = lvsJson({plain("svol", 32 * kMiB), cow("svol+v1", "svol", 16 * kMiB, 32 * kMiB, "85.00", "sri-a-s---")});
  auto p = open(lvs, snapOptions(16 * kMiB, 20, 80));
  ASSERT_NE(p, nullptr);
  runner_->setDefault("lvs", lvs);
  ASSERT_TRUE(p->list().ok());
  ASSERT_TRUE(p->list().ok());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_THAT(warnings_[0], HasSubstr("snapshot 'snap/svol@v1' (vg0/svol+v1) has used 85.0% of its copy-on-write"));
  auto r = p->rollback("svol", "v1", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("85.0%"));
  EXPECT_THAT(r.status().message(), HasSubstr("snapshot_watermark 80.0%"));
  EXPECT_THAT(runner_->commandsOf("lvconvert"), IsEmpty());
}

// Rollback merges the snapshot (waiting for it) and takes it again under its name.
TEST_F(LvmSnapshotTest, RollbackMergesAndKeepsTheSnapshot) {
  const std::string lvs = lvsJson({plain("svol", 32 * kMiB), cow("svol+v1", "svol", 16 * kMiB, 32 * kMiB, "10.00", "sri-a-s---")});
  auto p = open(lvs);
  ASSERT_NE(p, nullptr);
  runner_->setDefault("lvs", lvs);
  auto v = p->rollback("svol", "v1", {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(runner_->commandsOf("lvconvert"),
              ElementsAre("lvconvert -y --merge -i 1 --config global {use_lvmpolld=0} vg0/svol+v1"));
  EXPECT_THAT(runner_->commandsOf("lvcreate"),
              ElementsAre("lvcreate -y -s -L 16777216b -p r -n svol+v1 --addtag xenctl.pool=snap --addtag "
                          "xenctl.origin=svol vg0/svol"));
}

}  // namespace
}  // namespace xenctl::storage
