// The VG model read from a PV (lib/storage/lvm_metadata.h) against metadata
// areas captured in the lab (tests/lab/scenarios/clone-bench.sh with
// CLONE_FIXTURES=1: the first MiB of a loop PV after each change made by the
// lvm2 tools, with `lvs -a` and dmsetup's view of the same moment; kept here
// as the label, the mda_header and the committed text, the rest zeroed), and
// against PVs built here to reach what the lab cannot show at will (a text
// wrapped around the ring, a torn read).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/storage/lvm_metadata.h"
#include "lib/storage/lvm_volumes.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_process_runner.h"
#include "tests/support/temp_dir.h"

namespace xenctl::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The states captured, in the order they were made.
const char* const kStates[] = {"s1-made", "s2-lvcreate", "s3-lvrename", "s4-lvchange", "s5-deactivate", "s6-lvremove"};

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(XENCTL_FIXTURES) + "/mda/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReadAt readString(const std::string& bytes) {
  return [&bytes](uint64_t offset, size_t size, char* out) -> Status {
    if (offset + size > bytes.size()) return absl::OutOfRangeError("past the end");
    std::memcpy(out, bytes.data() + offset, size);
    return absl::OkStatus();
  };
}

// Device-mapper as `dmsetup info -c` and `dmsetup status` showed it.
class RecordedDm final : public DeviceMapperState {
 public:
  RecordedDm(const std::string& info, const std::string& status) {
    for (absl::string_view line : absl::StrSplit(info, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
      int open = 0;  // Name Maj Min Stat Open Targ Event UUID
      if (w.size() >= 5 && absl::SimpleAtoi(w[4], &open)) devices_[std::string(w[0])].open_count = open;
    }
    for (absl::string_view line : absl::StrSplit(status, '\n', absl::SkipEmpty())) {
      // "NAME: START LENGTH TARGET STATUS..."
      const size_t colon = line.find(": ");
      if (colon == absl::string_view::npos) continue;
      std::vector<absl::string_view> w = absl::StrSplit(line.substr(colon + 2), absl::MaxSplits(' ', 3));
      DmDevice& d = devices_[std::string(line.substr(0, colon))];
      if (w.size() >= 3 && d.target.empty()) {
        d.target = std::string(w[2]);
        d.status = w.size() > 3 ? std::string(w[3]) : "";
      }
    }
  }
  RecordedDm() = default;
  Result<std::optional<DmDevice>> device(const std::string& name) override {
    auto it = devices_.find(name);
    if (it == devices_.end()) return std::optional<DmDevice>();
    return std::optional<DmDevice>(it->second);
  }

 private:
  std::map<std::string, DmDevice> devices_;
};

std::shared_ptr<RecordedDm> dmOf(const std::string& state) {
  return std::make_shared<RecordedDm>(fixture(state + ".dminfo"), fixture(state + ".dmstatus"));
}

Result<VgMetadata> metadataOf(const std::string& state) {
  const std::string pv = fixture(state + ".pv");
  XENCTL_ASSIGN_OR_RETURN(MdaCommit c, readMdaCommit(readString(pv), state));
  XENCTL_ASSIGN_OR_RETURN(std::string text, readMetadataText(readString(pv), c, state));
  return parseVgMetadata(text);
}

// --------------------------------------------------------------- the layout

// LVM's CRC is the standard CRC-32 without its final inversion.
TEST(LvmCrc, IsCrc32WithoutTheFinalInversion) {
  EXPECT_EQ(~lvmCrc(0xffffffffu, "123456789"), 0xcbf43926u);
  EXPECT_EQ(lvmCrc(kLvmInitialCrc, ""), kLvmInitialCrc);
}

// A real PV's label, mda_header and committed text are found and check out.
TEST(LvmMetadataArea, ReadsARealPv) {
  const std::string pv = fixture("s1-made.pv");
  ASSERT_FALSE(pv.empty()) << "fixture missing";
  auto c = readMdaCommit(readString(pv), "s1");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mda_start, 4096u);
  EXPECT_GT(c->size, 0u);
  auto text = readMetadataText(readString(pv), *c, "s1");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("cbfx {"));
  auto head = parseVgHead(*text);
  ASSERT_TRUE(head.ok()) << head.status();
  auto md = parseVgMetadata(*text);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(head->name, "cbfx");
  EXPECT_EQ(head->id, md->id);
  EXPECT_EQ(head->seqno, md->seqno);
}

// Every change made by the lvm2 tools moves the commit: its slot and its seqno.
TEST(LvmMetadataArea, EveryOutsideChangeMovesTheCommit) {
  std::optional<MdaCommit> prev;
  uint64_t prev_seqno = 0;
  for (const char* s : kStates) {
    const std::string pv = fixture(std::string(s) + ".pv");
    auto c = readMdaCommit(readString(pv), s);
    ASSERT_TRUE(c.ok()) << s << ": " << c.status();
    auto md = metadataOf(s);
    ASSERT_TRUE(md.ok()) << s << ": " << md.status();
    if (std::string_view(s) == "s5-deactivate") {
      // Deactivating changes device-mapper, not the metadata.
      EXPECT_EQ(*c, *prev) << s;
      EXPECT_EQ(md->seqno, prev_seqno) << s;
    } else if (prev) {
      EXPECT_FALSE(*c == *prev) << s;
      EXPECT_GT(md->seqno, prev_seqno) << s;
    }
    prev = *c;
    prev_seqno = md->seqno;
  }
}

// A label or a header that does not check out is refused, never half-read.
TEST(LvmMetadataArea, RefusesDamage) {
  std::string pv = fixture("s1-made.pv");
  ASSERT_FALSE(pv.empty());
  std::string bad_header = pv;
  bad_header[4096 + 100] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(readMdaCommit(readString(bad_header), "x").status()));
  std::string no_label = pv;
  for (size_t i = 0; i < 2048; ++i) no_label[i] = 0;
  EXPECT_TRUE(absl::IsNotFound(readMdaCommit(readString(no_label), "x").status()));
  auto c = readMdaCommit(readString(pv), "x");
  ASSERT_TRUE(c.ok());
  std::string bad_text = pv;
  bad_text[c->mda_start + c->offset + 10] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(readMetadataText(readString(bad_text), *c, "x").status()));
}

// A PV built here: label in sector 1, one metadata area at 4096 of
// `mda_size`, the text at `offset` in it (wrapping past the area's end).
std::string buildPv(const std::string& text, uint64_t mda_size, uint64_t offset, uint32_t checksum_delta = 0) {
  auto put32 = [](std::string& b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
  };
  auto put64 = [&](std::string& b, size_t at, uint64_t v) {
    put32(b, at, static_cast<uint32_t>(v));
    put32(b, at + 4, static_cast<uint32_t>(v >> 32));
  };
  std::string pv(4096 + mda_size, '\0');
  const size_t l = 512;
  std::memcpy(pv.data() + l, "LABELONE", 8);
  put64(pv, l + 8, 1);
  put32(pv, l + 20, 32);
  std::memcpy(pv.data() + l + 24, "LVM2 001", 8);
  const size_t ph = l + 32;
  put64(pv, ph + 40, 1 << 20);  // a data area, then the list's end
  put64(pv, ph + 72, 4096);      // the metadata area
  put64(pv, ph + 80, mda_size);
  put32(pv, l + 16, lvmCrc(kLvmInitialCrc, std::string_view(pv.data() + l + 20, 512 - 20)));
  const size_t h = 4096;
  std::memcpy(pv.data() + h + 4, " LVM2 x[5A%r0N*>", 16);
  put32(pv, h + 20, 1);
  put64(pv, h + 24, 4096);
  put64(pv, h + 32, mda_size);
  put64(pv, h + 40, offset);
  put64(pv, h + 48, text.size());
  put32(pv, h + 56, lvmCrc(kLvmInitialCrc, text) + checksum_delta);
  put32(pv, h, lvmCrc(kLvmInitialCrc, std::string_view(pv.data() + h + 4, 512 - 4)));
  for (size_t i = 0; i < text.size(); ++i) {
    uint64_t at = offset + i;
    if (at >= mda_size) at = at - mda_size + 512;
    pv[h + at] = text[i];
  }
  return pv;
}

const char* const kSmallVg =
    "vg9 {\nid = \"AAAA-1\"\nseqno = 7\nformat = \"lvm2\" # a comment\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n"
    "extent_size = 8192\nlogical_volumes {\n"
    "web-1 {\nid = \"x\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\ntags = [\"xenctl.pool=p\", \"a\\\"b\"]\n"
    "creation_time = 1700000000 # 2023\nsegment_count = 2\n"
    "segment1 {\nstart_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripe_count = 1\nstripes = [\n\"pv0\", 0\n]\n}\n"
    "segment2 {\nstart_extent = 2\nextent_count = 1\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 9]\n}\n"
    "}\n}\n}\n# Generated by LVM2\ncontents = \"Text Format Volume Group\"\nversion = 1\n";

// A text that wraps around the end of the ring is read whole, in order.
TEST(LvmMetadataArea, ReadsATextWrappedAroundTheRing) {
  const std::string text = kSmallVg;
  const uint64_t mda_size = 8192;
  const std::string pv = buildPv(text, mda_size, mda_size - 100, 0);
  auto c = readMdaCommit(readString(pv), "built");
  ASSERT_TRUE(c.ok()) << c.status();
  auto got = readMetadataText(readString(pv), *c, "built");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, text);
}

// The config syntax: comments, escapes, multi-line lists, several segments.
TEST(LvmMetadataText, ParsesTheConfigSyntax) {
  auto md = parseVgMetadata(kSmallVg);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->name, "vg9");
  EXPECT_EQ(md->id, "AAAA-1");
  EXPECT_EQ(md->seqno, 7u);
  ASSERT_EQ(md->lvs.size(), 1u);
  const LvMetadata& lv = md->lvs[0];
  EXPECT_EQ(lv.name, "web-1");
  EXPECT_THAT(lv.tags, ElementsAre("xenctl.pool=p", "a\"b"));
  EXPECT_EQ(lv.creation_time, 1700000000);
  ASSERT_EQ(lv.segments.size(), 2u);
  EXPECT_EQ(lv.segments[1].extent_count, 1u);
  RecordedDm dm;
  auto rows = lvRowsOf(*md, dm);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].size, 3u * 8192 * 512);
  EXPECT_EQ((*rows)[0].segtype, "linear");
  EXPECT_EQ((*rows)[0].attr, "-wi-------");
  EXPECT_EQ(dmName("vg-0", "web-1"), "vg--0-web--1");
  EXPECT_EQ(dmName("vg0", "pool", "tpool"), "vg0-pool-tpool");
}

// A syntax error names its line.
TEST(LvmMetadataText, ASyntaxErrorNamesItsLine) {
  auto md = parseVgMetadata("vg9 {\nid = \"a\"\nseqno = 1\nextent_size = 8\nlogical_volumes {\nx ? 1\n}\n}\n");
  ASSERT_FALSE(md.ok());
  EXPECT_THAT(md.status().message(), HasSubstr("line 6"));
  EXPECT_FALSE(parseVgMetadata("vg9 {\nid = \"a\"\n").ok());
}

// What the reader does not model is UNIMPLEMENTED (the caller runs lvs), never guessed.
TEST(LvmMetadataText, WhatItDoesNotModelIsUnimplemented) {
  RecordedDm dm;
  for (const char* change : {"type = \"raid1\"", "type = \"cache\""}) {
    std::string text = kSmallVg;
    text.replace(text.find("type = \"striped\""), std::strlen("type = \"striped\""), change);
    auto md = parseVgMetadata(text);
    ASSERT_TRUE(md.ok());
    EXPECT_TRUE(absl::IsUnimplemented(lvRowsOf(*md, dm).status())) << change;
  }
  std::string locked = kSmallVg;
  locked.replace(locked.find("\"VISIBLE\""), 9, "\"VISIBLE\", \"LOCKED\"");
  auto md = parseVgMetadata(locked);
  ASSERT_TRUE(md.ok());
  EXPECT_TRUE(absl::IsUnimplemented(lvRowsOf(*md, dm).status()));
}

// --------------------------------------------- rows against lvs, each state

struct Expected {
  std::string name, attr, segtype, origin, pool_lv, tags;
  uint64_t size = 0, origin_size = 0;
  double data = -1, meta = -1;
  int64_t time = 0;
};

std::vector<Expected> lvsOf(const std::string& state) {
  auto doc = nlohmann::json::parse(fixture(state + ".lvs.json"));
  std::vector<Expected> out;
  for (const auto& r : doc["report"][0]["lv"]) {
    const std::string name = r["lv_name"];
    if (name.front() == '[') continue;  // hidden: lvs shows them with -a only
    auto num = [&](const char* k) -> double {
      const std::string s = r[k];
      return s.empty() ? -1 : std::stod(s);
    };
    out.push_back({name, r["lv_attr"], r["segtype"], r["origin"], r["pool_lv"], r["lv_tags"],
                   static_cast<uint64_t>(num("lv_size")), static_cast<uint64_t>(std::max(0.0, num("origin_size"))),
                   num("data_percent"), num("metadata_percent"), static_cast<int64_t>(num("lv_time"))});
  }
  return out;
}

// In every captured state, the rows made from the PV and device-mapper are
// the ones `lvs` printed at that moment: every field xenctld reads.
TEST(LvmMetadataRows, MatchLvsInEveryCapturedState) {
  for (const char* s : kStates) {
    SCOPED_TRACE(s);
    auto md = metadataOf(s);
    ASSERT_TRUE(md.ok()) << md.status();
    auto dm = dmOf(s);
    auto rows = lvRowsOf(*md, *dm);
    ASSERT_TRUE(rows.ok()) << rows.status();
    const auto want = lvsOf(s);  // lvs sorts by name; the metadata keeps LVs in its own order
    ASSERT_EQ(rows->size(), want.size());
    for (const Expected& w : want) {
      SCOPED_TRACE(w.name);
      auto it = std::find_if(rows->begin(), rows->end(), [&](const LvRow& r) { return r.name == w.name; });
      ASSERT_NE(it, rows->end());
      const LvRow& r = *it;
      EXPECT_EQ(r.vg, "cbfx");
      // The positions xenctld reads (LvRow): type, permissions, state, open, skip.
      for (size_t k : {0, 1, 4, 5, 9}) EXPECT_EQ(r.attrAt(k), w.attr[k]) << "attr " << k << " of " << w.attr;
      EXPECT_EQ(r.size, w.size);
      EXPECT_EQ(r.segtype, w.segtype);
      EXPECT_EQ(r.origin, w.origin);
      EXPECT_EQ(r.pool_lv, w.pool_lv);
      if (r.classicSnapshot()) {
        EXPECT_EQ(r.origin_size, w.origin_size);
      }
      EXPECT_EQ(absl::StrJoin(r.tags, ","), w.tags);
      EXPECT_EQ(absl::ToUnixSeconds(r.time), w.time);
      EXPECT_NEAR(r.data_percent, w.data, 0.011);
      EXPECT_NEAR(r.metadata_percent, w.meta, 0.011);
    }
  }
}

// ------------------------------------------------------------ VgModels

// A PV file a test rewrites between calls, as lvm2 would the device.
struct ModelRig {
  test_support::TempDir dir;
  std::string pv = dir.sub("pv");
  int finds = 0;
  VgModels models;
  ModelRig() : models([this](const std::string& vg) -> Result<std::vector<std::string>> {
                        ++finds;
                        if (vg != "cbfx") return absl::NotFoundError("no such VG");
                        return std::vector<std::string>{pv};
                      },
                      std::make_shared<RecordedDm>()) {}
  void write(const std::string& bytes) {
    std::ofstream out(pv, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  void state(const std::string& s) { write(fixture(s + ".pv")); }
};

std::vector<std::string> namesOf(const std::vector<LvRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.name);
  return out;
}

// The model is kept while the PV's commit stands and read again as soon as
// anyone commits: each change the lvm2 tools made in the lab is seen by the
// next call, and nothing else causes a re-read.
TEST(VgModels, KeptWhileTheCommitStandsAndReadAgainAfterEveryChange) {
  ModelRig rig;
  rig.state("s1-made");
  auto r1 = rig.models.rows("cbfx");
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_THAT(namesOf(*r1), ::testing::Not(::testing::Contains("outside")));
  ASSERT_TRUE(rig.models.rows("cbfx").ok());
  EXPECT_EQ(rig.models.stats().parsed, 1u);
  EXPECT_EQ(rig.models.stats().reused, 1u);

  rig.state("s2-lvcreate");
  auto r2 = rig.models.rows("cbfx");
  ASSERT_TRUE(r2.ok());
  EXPECT_THAT(namesOf(*r2), ::testing::Contains("outside"));
  rig.state("s3-lvrename");
  auto r3 = rig.models.rows("cbfx");
  ASSERT_TRUE(r3.ok());
  EXPECT_THAT(namesOf(*r3), ::testing::Contains("renamed"));
  EXPECT_THAT(namesOf(*r3), ::testing::Not(::testing::Contains("outside")));
  rig.state("s4-lvchange");
  auto r4 = rig.models.rows("cbfx");
  ASSERT_TRUE(r4.ok());
  for (const auto& r : *r4)
    if (r.name == "renamed") {
      EXPECT_THAT(r.tags, ::testing::Contains("note=x"));
    }
  rig.state("s5-deactivate");  // no commit: the model stands
  ASSERT_TRUE(rig.models.rows("cbfx").ok());
  rig.state("s6-lvremove");
  auto r6 = rig.models.rows("cbfx");
  ASSERT_TRUE(r6.ok());
  EXPECT_THAT(namesOf(*r6), ::testing::Not(::testing::Contains("renamed")));
  EXPECT_EQ(rig.models.stats().parsed, 5u);
  EXPECT_EQ(rig.models.stats().reused, 2u);
  EXPECT_EQ(rig.finds, 1);
}

// The same slot with another VG id or seqno at the text's start (the ring
// came round, or the VG was made again) is not trusted: read again.
TEST(VgModels, TheSameSlotWithAnotherSeqnoIsNotTrusted) {
  ModelRig rig;
  std::string vg = kSmallVg;
  vg.replace(0, 3, "cbfx");
  rig.write(buildPv(vg, 1 << 16, 1024));
  auto a = rig.models.rows("cbfx");
  ASSERT_TRUE(a.ok()) << a.status();
  // The header's slot left as it was, the text under it changed (seqno 8):
  // its CRC no longer matches, so the reader refuses it rather than trust either.
  std::string later = vg;
  later.replace(later.find("seqno = 7"), 9, "seqno = 8");
  std::string pv = buildPv(vg, 1 << 16, 1024);
  pv.replace(4096 + 1024, later.size(), later);
  rig.write(pv);
  auto b = rig.models.rows("cbfx");
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(rig.models.stats().reused, 0u);
}

// A VG name the PV does not hold, or a PV that vanished, is an error (the
// caller runs lvs), after looking for the VG's PVs once more.
TEST(VgModels, APvThatNoLongerHoldsTheVgIsAnError) {
  ModelRig rig;
  rig.state("s1-made");
  ASSERT_TRUE(rig.models.rows("cbfx").ok());
  rig.write(std::string(8192, '\0'));
  EXPECT_FALSE(rig.models.rows("cbfx").ok());
  EXPECT_EQ(rig.finds, 2);
  EXPECT_FALSE(rig.models.rows("vg9").ok());
}

// ----------------------------------------------- LvmVolumes over the model

// With a model, a thin clone runs the one lvcreate and no report at all;
// without one (or when it fails) it reads the VG with lvs as before.
TEST(VgModels, AThinCloneRunsOnlyItsLvcreate) {
  ModelRig rig;
  rig.state("s1-made");
  static const fakes::FakeClock clock;
  auto runner = std::make_shared<fakes::FakeProcessRunner>();
  LvmCommon c;
  c.clock = &clock;
  c.runner = runner;
  c.groups = std::make_shared<VolumeGroups>(absl::ZeroDuration());
  c.models = std::shared_ptr<VgModels>(&rig.models, [](VgModels*) {});
  auto pool = LvmThinVolumes::open("thin", {"cbfx", "tp", 50, 80, 80}, c);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const size_t before = runner->commands().size();
  auto v = (*pool)->clone("base@gold", "web2", 0, nullptr);
  ASSERT_TRUE(v.ok()) << v.status();
  const auto all = runner->commands();
  const std::vector<std::string> ran(all.begin() + static_cast<long>(before), all.end());
  ASSERT_EQ(ran.size(), 1u) << absl::StrJoin(ran, "\n");
  EXPECT_THAT(ran[0], HasSubstr("lvcreate -y -s -kn -ay -p rw -n web2"));
  EXPECT_THAT(runner->commandsOf("lvs"), IsEmpty());
  // A name the PV shows taken is refused without running anything.
  EXPECT_TRUE(absl::IsAlreadyExists((*pool)->clone("base@gold", "web1", 0, nullptr).status()));
}

}  // namespace
}  // namespace xenctl::storage
