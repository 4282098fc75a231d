#include "lib/storage/lvm_metadata.h"

#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::storage {
namespace {

constexpr size_t kSector = 512;
constexpr size_t kLabelScan = 4 * kSector;  // LABEL_SCAN_SECTORS
constexpr size_t kMdaHeader = 512;          // MDA_HEADER_SIZE
constexpr std::string_view kMdaMagic = " LVM2 x[5A%r0N*>";
constexpr size_t kHeadBytes = 4096;         // the text's first bytes: the VG's name, id and seqno

uint32_t le32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t le64(const char* p) { return (static_cast<uint64_t>(le32(p + 4)) << 32) | le32(p); }

std::array<uint32_t, 256> crcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

// Reads `len` bytes of the text from `from` (relative to the text's start),
// following the ring: past the area's end it goes on 512 bytes past its start.
Status readText(const ReadAt& read, const MdaCommit& c, uint64_t from, size_t len, char* out) {
  const uint64_t pos = c.offset + from;
  if (pos >= c.mda_size) return read(c.mda_start + kMdaHeader + (pos - c.mda_size), len, out);
  const size_t first = static_cast<size_t>(std::min<uint64_t>(len, c.mda_size - pos));
  XENCTL_RETURN_IF_ERROR(read(c.mda_start + pos, first, out));
  if (first < len) return read(c.mda_start + kMdaHeader, len - first, out + first);
  return absl::OkStatus();
}

// ---------------------------------------------------------- the config syntax

struct Member;

struct Value {
  enum Kind { kString, kNumber, kList, kSection } kind = kString;
  std::string text;  // a string's value or a number's digits
  std::vector<Value> items;
  std::vector<Member> members;  // a section's, in the text's order

  const Value* get(std::string_view key) const;
  std::string str(std::string_view key) const {
    const Value* v = get(key);
    return v && v->kind != kSection && v->kind != kList ? v->text : "";
  }
  int64_t num(std::string_view key) const {
    const Value* v = get(key);
    int64_t n = 0;
    if (v && v->kind == kNumber) (void)absl::SimpleAtoi(v->text, &n);
    return n;
  }
  std::vector<std::string> strings(std::string_view key) const {
    std::vector<std::string> out;
    if (const Value* v = get(key); v && v->kind == kList)
      for (const auto& i : v->items) out.push_back(i.text);
    return out;
  }
};

// Not a std::pair: pair<string, Value> inside Value needs Value complete,
// which clang with libstdc++ 12 checks where g++ does not.
struct Member {
  std::string key;
  Value value;
};

const Value* Value::get(std::string_view key) const {
  for (const auto& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : t_(text) {}

  // The members of a section up to `}` (or the end, at the top level).
  Status members(Value& section, bool top) {
    section.kind = Value::kSection;
    for (;;) {
      skip();
      if (at_ == t_.size()) return top ? absl::OkStatus() : error("a section is not closed");
      if (t_[at_] == '}') {
        if (top) return error("'}' without a section");
        ++at_;
        return absl::OkStatus();
      }
      std::string key = word();
      if (key.empty()) return error(absl::StrCat("unexpected '", std::string(1, t_[at_]), "'"));
      skip();
      if (at_ < t_.size() && t_[at_] == '{') {
        ++at_;
        Value v;
        XENCTL_RETURN_IF_ERROR(members(v, false));
        section.members.push_back({std::move(key), std::move(v)});
      } else if (at_ < t_.size() && t_[at_] == '=') {
        ++at_;
        Value v;
        XENCTL_RETURN_IF_ERROR(value(v));
        section.members.push_back({std::move(key), std::move(v)});
      } else {
        return error(absl::StrCat("'", key, "' is followed by neither '=' nor '{'"));
      }
    }
  }

 private:
  Status error(std::string_view what) const {
    const size_t line = 1 + static_cast<size_t>(std::count(t_.begin(), t_.begin() + static_cast<long>(at_), '\n'));
    return absl::InvalidArgumentError(absl::StrCat("LVM metadata, line ", line, ": ", av(what)));
  }
  void skip() {
    while (at_ < t_.size()) {
      if (t_[at_] == '#') {
        while (at_ < t_.size() && t_[at_] != '\n') ++at_;
      } else if (absl::ascii_isspace(static_cast<unsigned char>(t_[at_]))) {
        ++at_;
      } else {
        return;
      }
    }
  }
  static bool wordChar(char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' || c == '-';
  }
  std::string word() {
    const size_t from = at_;
    while (at_ < t_.size() && wordChar(t_[at_])) ++at_;
    return std::string(t_.substr(from, at_ - from));
  }
  Status value(Value& v) {
    skip();
    if (at_ == t_.size()) return error("a value is missing");
    const char c = t_[at_];
    if (c == '"') {
      v.kind = Value::kString;
      ++at_;
      for (;;) {
        if (at_ == t_.size()) return error("a string is not closed");
        char ch = t_[at_++];
        if (ch == '"') return absl::OkStatus();
        if (ch == '\\' && at_ < t_.size()) ch = t_[at_++];
        v.text.push_back(ch);
      }
    }
    if (c == '[') {
      v.kind = Value::kList;
      ++at_;
      for (;;) {
        skip();
        if (at_ < t_.size() && t_[at_] == ']') {
          ++at_;
          return absl::OkStatus();
        }
        Value item;
        XENCTL_RETURN_IF_ERROR(value(item));
        v.items.push_back(std::move(item));
        skip();
        if (at_ < t_.size() && t_[at_] == ',') ++at_;
        else if (at_ < t_.size() && t_[at_] != ']') return error("a list item is followed by neither ',' nor ']'");
      }
    }
    v.kind = Value::kNumber;
    v.text = word();
    if (v.text.empty()) return error(absl::StrCat("unexpected '", std::string(1, c), "'"));
    return absl::OkStatus();
  }

  std::string_view t_;
  size_t at_ = 0;
};

LvSegment segmentOf(const Value& s) {
  LvSegment seg;
  seg.type = s.str("type");
  seg.extent_count = static_cast<uint64_t>(s.num("extent_count"));
  seg.stripe_count = static_cast<uint32_t>(s.num("stripe_count"));
  seg.thin_pool = s.str("thin_pool");
  seg.zero_new_blocks = s.num("zero_new_blocks") != 0;
  if (seg.type == "snapshot") {
    seg.origin = s.str("origin");
    seg.cow_store = s.str("cow_store");
    if (seg.cow_store.empty()) {
      seg.cow_store = s.str("merging_store");
      seg.merging = !seg.cow_store.empty();
    }
  } else {
    seg.origin = s.str("origin");
  }
  seg.external_origin = !s.str("external_origin").empty() || !s.str("merge").empty();
  for (const auto& [k, v] : s.members)
    if (v.kind == Value::kSection && absl::StartsWith(k, "message")) seg.pending_messages = true;
  return seg;
}

// ----------------------------------------------------------- device-mapper

// "12/4096 34/16384" style "used/total" pairs of a status line, in order.
std::vector<std::pair<uint64_t, uint64_t>> fractions(std::string_view status) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (absl::string_view w : absl::StrSplit(av(status), ' ', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> f = absl::StrSplit(w, absl::MaxSplits('/', 1));
    uint64_t a = 0, b = 0;
    if (!f.second.empty() && absl::SimpleAtoi(f.first, &a) && absl::SimpleAtoi(f.second, &b)) out.emplace_back(a, b);
  }
  return out;
}

double percentOf(uint64_t used, uint64_t total) {
  return total ? 100.0 * static_cast<double>(used) / static_cast<double>(total) : 0.0;
}

}  // namespace

uint32_t lvmCrc(uint32_t initial, std::string_view bytes) {
  static const std::array<uint32_t, 256> table = crcTable();
  uint32_t crc = initial;
  for (char ch : bytes) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return crc;
}

Result<MdaCommit> readMdaCommit(const ReadAt& read, const std::string& what) {
  char label[kLabelScan];
  XENCTL_RETURN_IF_ERROR(annotate(read(0, sizeof(label), label), absl::StrCat("reading the LVM label of ", what)));
  const char* lh = nullptr;
  for (size_t s = 0; s < 4; ++s) {
    const char* p = label + s * kSector;
    if (std::memcmp(p, "LABELONE", 8) == 0 && le64(p + 8) == s) {
      lh = p;
      break;
    }
  }
  if (!lh) return absl::NotFoundError(absl::StrCat(what, " has no LVM label in its first 4 sectors; is it a PV?"));
  // crc_xl covers the label sector from the offset field on.
  if (le32(lh + 16) != lvmCrc(kLvmInitialCrc, std::string_view(lh + 20, kSector - 20)))
    return absl::DataLossError(absl::StrCat(what, ": the LVM label's CRC does not match"));
  if (std::memcmp(lh + 24, "LVM2 001", 8) != 0)
    return absl::DataLossError(absl::StrCat(what, ": the LVM label is not of type \"LVM2 001\""));
  const uint32_t ph = le32(lh + 20);
  // pv_header: uuid[32], device_size, then {offset, size} lists (data areas, metadata areas).
  const char* end = lh + kSector;
  const char* p = lh + ph + 32 + 8;
  for (int list = 0; list < 2; ++list) {
    for (;; p += 16) {
      if (p + 16 > end) return absl::DataLossError(absl::StrCat(what, ": the pv_header's area lists overrun its sector"));
      const uint64_t off = le64(p), size = le64(p + 8);
      if (off == 0) break;
      if (list == 1) {
        MdaCommit c;
        c.mda_start = off;
        c.mda_size = size;
        char h[kMdaHeader];
        XENCTL_RETURN_IF_ERROR(annotate(read(off, sizeof(h), h), absl::StrCat("reading the metadata area header of ", what)));
        if (le32(h) != lvmCrc(kLvmInitialCrc, std::string_view(h + 4, kMdaHeader - 4)))
          return absl::DataLossError(absl::StrCat(what, ": the metadata area header's CRC does not match"));
        if (std::string_view(h + 4, 16) != kMdaMagic || le32(h + 20) != 1 || le64(h + 24) != off)
          return absl::DataLossError(absl::StrCat(what, ": the metadata area at ", off, " has a bad magic, version or start"));
        c.mda_size = le64(h + 32);
        const char* slot = h + 40;  // raw_locns[0]
        c.offset = le64(slot);
        c.size = le64(slot + 8);
        c.checksum = le32(slot + 16);
        if (c.offset == 0 || c.size == 0)
          return absl::NotFoundError(absl::StrCat(what, ": its metadata area holds no committed metadata"));
        if (c.mda_size <= kMdaHeader || c.offset < kMdaHeader || c.offset >= c.mda_size ||
            c.size > c.mda_size - kMdaHeader)
          return absl::DataLossError(absl::StrCat(what, ": the committed metadata's location is out of its area"));
        return c;
      }
    }
    p += 16;
  }
  return absl::NotFoundError(absl::StrCat(what, " has no metadata area (pvcreate --metadatacopies 0)"));
}

Result<std::string> readMetadataText(const ReadAt& read, const MdaCommit& c, const std::string& what) {
  std::string text(c.size, '\0');
  XENCTL_RETURN_IF_ERROR(annotate(readText(read, c, 0, c.size, text.data()), absl::StrCat("reading the metadata of ", what)));
  if (lvmCrc(kLvmInitialCrc, text) != c.checksum)
    return absl::DataLossError(absl::StrCat(what, ": the metadata text's CRC does not match its header"));
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

bool LvMetadata::has(std::string_view flag) const {
  return std::find(status.begin(), status.end(), flag) != status.end() ||
         std::find(flags.begin(), flags.end(), flag) != flags.end();
}

const LvMetadata* VgMetadata::find(std::string_view lv) const {
  for (const auto& l : lvs)
    if (l.name == lv) return &l;
  return nullptr;
}

Result<VgMetadata> parseVgMetadata(std::string_view text) {
  Value top;
  XENCTL_RETURN_IF_ERROR(Parser(text).members(top, true));
  const Member* vg = nullptr;
  for (const auto& m : top.members)
    if (m.value.kind == Value::kSection) {
      vg = &m;
      break;
    }
  if (!vg) return absl::InvalidArgumentError("LVM metadata has no volume group section");
  const Value& v = vg->value;
  VgMetadata md;
  md.name = vg->key;
  md.id = v.str("id");
  md.seqno = static_cast<uint64_t>(v.num("seqno"));
  md.extent_size = static_cast<uint64_t>(v.num("extent_size"));
  if (md.id.empty() || md.seqno == 0 || md.extent_size == 0)
    return absl::InvalidArgumentError(absl::StrCat("LVM metadata of VG ", md.name, " lacks its id, seqno or extent_size"));
  if (const Value* lvs = v.get("logical_volumes"))
    for (const auto& [name, l] : lvs->members) {
      if (l.kind != Value::kSection) continue;
      LvMetadata lv;
      lv.name = name;
      lv.status = l.strings("status");
      lv.flags = l.strings("flags");
      lv.tags = l.strings("tags");
      lv.creation_time = l.num("creation_time");
      for (int64_t i = 1, n = l.num("segment_count"); i <= n; ++i) {
        const Value* s = l.get(absl::StrCat("segment", i));
        if (!s || s->kind != Value::kSection)
          return absl::InvalidArgumentError(absl::StrCat("LVM metadata: LV ", name, " lacks segment", i));
        lv.segments.push_back(segmentOf(*s));
      }
      md.lvs.push_back(std::move(lv));
    }
  return md;
}

Result<VgMetadata> parseVgHead(std::string_view text) {
  // "NAME {\nid = \"...\"\nseqno = N\n": LVM writes the VG's section first.
  const size_t brace = text.find('{');
  if (brace == std::string_view::npos) return absl::InvalidArgumentError("LVM metadata does not open a section");
  VgMetadata md;
  md.name = std::string(absl::StripAsciiWhitespace(av(text.substr(0, brace))));
  for (absl::string_view line : absl::StrSplit(av(text.substr(brace + 1)), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "id = \"")) md.id = std::string(line.substr(0, line.find('"')));
    if (absl::ConsumePrefix(&line, "seqno = ")) {
      if (!absl::SimpleAtoi(line, &md.seqno)) md.seqno = 0;
      break;
    }
  }
  if (md.id.empty() || md.seqno == 0)
    return absl::InvalidArgumentError(absl::StrCat("LVM metadata of VG ", md.name, ": no id and seqno at its start"));
  return md;
}

std::string dmName(std::string_view vg, std::string_view lv, std::string_view layer) {
  std::string out = absl::StrCat(absl::StrReplaceAll(av(vg), {{"-", "--"}}), "-", absl::StrReplaceAll(av(lv), {{"-", "--"}}));
  if (!layer.empty()) absl::StrAppend(&out, "-", av(layer));
  return out;
}

Result<std::vector<LvRow>> lvRowsOf(const VgMetadata& md, DeviceMapperState& dm) {
  static const std::set<std::string, std::less<>> kKnownFlags = {"READ", "WRITE", "VISIBLE", "FIXED_MINOR",
                                                                  "ACTIVATION_SKIP", "NOAUTOACTIVATE"};
  static const std::set<std::string, std::less<>> kKnownTypes = {"striped", "thin", "thin-pool", "snapshot"};
  auto unmodelled = [&md](const std::string& lv, const std::string& what) {
    return absl::UnimplementedError(absl::StrCat("VG ", md.name, ": LV ", lv, " has ", what,
                                                 ", which xenctld's metadata reader does not model"));
  };
  auto sizeOf = [&md](const LvMetadata& lv) {
    uint64_t extents = 0;
    for (const auto& s : lv.segments) extents += s.extent_count;
    return extents * md.extent_size * kSector;
  };
  // Classic snapshots: the hidden LV with the "snapshot" segment ties a COW LV to its origin.
  std::map<std::string, const LvSegment*, std::less<>> cow_of;  // COW LV -> its snapshot segment
  std::set<std::string, std::less<>> origins;
  // A classic snapshot is two LVs: the hidden COW LV holding its data, which
  // lvs shows under its own name, and "snapshotN", visible, with the
  // snapshot segment, which lvs never shows.
  std::set<std::string, std::less<>> visible_cows;
  std::map<std::string, bool, std::less<>> pool_zeroes;
  for (const auto& lv : md.lvs) {
    for (const auto& f : lv.status)
      if (!kKnownFlags.count(f)) return unmodelled(lv.name, absl::StrCat("the status ", f));
    for (const auto& f : lv.flags)
      if (!kKnownFlags.count(f)) return unmodelled(lv.name, absl::StrCat("the flag ", f));
    if (lv.segments.empty()) return unmodelled(lv.name, "no segment");
    for (const auto& s : lv.segments) {
      if (!kKnownTypes.count(s.type)) return unmodelled(lv.name, absl::StrCat("a segment of type \"", s.type, "\""));
      if (s.pending_messages) return unmodelled(lv.name, "thin pool messages pending");
      if (s.merging) return unmodelled(lv.name, "a merging snapshot");
      if (s.external_origin) return unmodelled(lv.name, "an external origin or a merge");
    }
    const LvSegment& s = lv.segments.front();
    if (s.type == "snapshot") {
      cow_of[s.cow_store] = &s;
      origins.insert(s.origin);
      if (lv.has("VISIBLE")) visible_cows.insert(s.cow_store);
    }
    if (s.type == "thin-pool") pool_zeroes[lv.name] = s.zero_new_blocks;
  }
  std::vector<LvRow> out;
  for (const auto& lv : md.lvs) {
    const LvSegment& s = lv.segments.front();
    if (s.type == "snapshot" || !(lv.has("VISIBLE") || visible_cows.count(lv.name))) continue;
    LvRow r;
    r.name = lv.name;
    r.vg = md.name;
    r.size = sizeOf(lv);
    r.segtype = s.type == "striped" ? (s.stripe_count > 1 ? "striped" : "linear") : s.type;
    r.tags = lv.tags;
    std::sort(r.tags.begin(), r.tags.end());  // as lvs lists them
    r.time = absl::FromUnixSeconds(lv.creation_time);
    std::string attr = "-" "-" "i" "-" "-" "-" "-" "-" "-" "-";
    attr[1] = lv.has("WRITE") ? 'w' : 'r';
    if (lv.has("FIXED_MINOR")) attr[3] = 'm';
    if (lv.has("ACTIVATION_SKIP")) attr[9] = 'k';
    XENCTL_ASSIGN_OR_RETURN(std::optional<DmDevice> dev, dm.device(dmName(md.name, lv.name, s.type == "thin-pool" ? "tpool" : "")));
    if (dev) {
      attr[4] = 'a';
      if (dev->open_count > 0) attr[5] = 'o';
    }
    const auto cow = cow_of.find(lv.name);
    if (s.type == "thin-pool") {
      attr[0] = 't';
      attr[6] = 't';
      if (s.zero_new_blocks) attr[7] = 'z';
      if (dev && dev->target == "thin-pool") {
        const auto f = fractions(dev->status);  // transaction_id meta used/total data used/total ...
        if (f.size() >= 2) {
          r.metadata_percent = percentOf(f[0].first, f[0].second);
          r.data_percent = percentOf(f[1].first, f[1].second);
        }
      }
    } else if (s.type == "thin") {
      attr[0] = 'V';
      attr[6] = 't';
      if (pool_zeroes[s.thin_pool]) attr[7] = 'z';
      r.pool_lv = s.thin_pool;
      r.origin = s.origin;  // lvs gives a thin snapshot no origin_size
      if (dev && dev->target == "thin") {
        uint64_t mapped = 0;  // "<mapped sectors> <highest mapped sector>"
        const std::vector<absl::string_view> w = absl::StrSplit(dev->status, ' ', absl::SkipEmpty());
        if (!w.empty() && absl::SimpleAtoi(w[0], &mapped)) r.data_percent = percentOf(mapped * kSector, r.size);
      }
    } else if (cow != cow_of.end()) {
      attr[0] = 's';
      attr[6] = 's';
      r.origin = cow->second->origin;
      if (const LvMetadata* o = md.find(r.origin)) r.origin_size = sizeOf(*o);
      if (dev && dev->target == "snapshot") {
        if (absl::StartsWith(dev->status, "Invalid")) {
          attr[4] = 'I';
        } else {
          const auto f = fractions(dev->status);  // "<allocated>/<total> <metadata>"
          if (!f.empty()) r.data_percent = percentOf(f[0].first, f[0].second);
        }
      }
    } else if (origins.count(lv.name)) {
      attr[0] = 'o';
      attr[6] = 's';
      r.origin_size = r.size;  // as lvs shows it
    }
    r.attr = std::move(attr);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<DmDevice>> KernelDeviceMapper::device(const std::string& name) {
  static const int control = ::open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (control < 0) return absl::UnavailableError("device-mapper: cannot open /dev/mapper/control");
  if (name.size() >= DM_NAME_LEN) return absl::InvalidArgumentError(absl::StrCat("device-mapper name ", name, " is too long"));
  for (size_t size = 16 * 1024;; size *= 4) {
    std::vector<char> buf(size);
    auto* io = reinterpret_cast<dm_ioctl*>(buf.data());
    io->version[0] = DM_VERSION_MAJOR;
    io->version[1] = 0;
    io->version[2] = 0;
    io->data_size = static_cast<uint32_t>(size);
    io->data_start = sizeof(dm_ioctl);
    io->flags = DM_NOFLUSH_FLAG;  // a thin pool's status would commit its metadata first
    std::memcpy(io->name, name.data(), name.size());
    if (::ioctl(control, DM_TABLE_STATUS, io) != 0) {
      if (errno == ENXIO) return std::optional<DmDevice>();
      return errnoStatus(errno, absl::StrCat("device-mapper: status of ", name));
    }
    if ((io->flags & DM_BUFFER_FULL_FLAG) && size < 4 * 1024 * 1024) continue;
    if (!(io->flags & DM_ACTIVE_PRESENT_FLAG)) return std::optional<DmDevice>();  // no live table: not active
    DmDevice d;
    d.open_count = io->open_count;
    if (io->target_count > 0) {
      const auto* spec = reinterpret_cast<const dm_target_spec*>(buf.data() + io->data_start);
      d.target = std::string(spec->target_type, strnlen(spec->target_type, DM_MAX_TYPE_NAME));
      const char* params = reinterpret_cast<const char*>(spec + 1);
      d.status = std::string(params, strnlen(params, static_cast<size_t>(buf.data() + size - params)));
    }
    return std::optional<DmDevice>(std::move(d));
  }
}

Result<ReadAt> openForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  const bool direct = fd >= 0;
  if (fd < 0 && errno == EINVAL) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus(errno, absl::StrCat("opening ", path));
  auto owned = std::make_shared<sys::UniqueFd>(fd);
  return ReadAt([owned, direct, path](uint64_t offset, size_t size, char* out) -> Status {
    // O_DIRECT wants offsets, sizes and memory aligned to the logical block (4096 covers them all).
    constexpr uint64_t kAlign = 4096;
    const uint64_t from = direct ? offset / kAlign * kAlign : offset;
    const uint64_t to = direct ? (offset + size + kAlign - 1) / kAlign * kAlign : offset + size;
    const size_t len = static_cast<size_t>(to - from);
    std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(std::aligned_alloc(kAlign, (len + kAlign - 1) / kAlign * kAlign)), &std::free);
    if (!buf) return absl::ResourceExhaustedError("no memory for a metadata read");
    size_t got = 0;
    while (got < len) {
      const ssize_t n = ::pread(owned->get(), buf.get() + got, len - got, static_cast<off_t>(from + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errnoStatus(errno, absl::StrCat("reading ", path, " at ", from + got));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    if (got < offset - from + size)
      return absl::OutOfRangeError(absl::StrCat(path, " ends before byte ", offset + size));
    std::memcpy(out, buf.get() + (offset - from), size);
    return absl::OkStatus();
  });
}

// ------------------------------------------------------------------ VgModels

VgModels::VgModels(FindPvs find_pvs, std::shared_ptr<DeviceMapperState> dm)
    : find_pvs_(std::move(find_pvs)), dm_(std::move(dm)) {}

std::shared_ptr<VgModels> VgModels::onHost(std::shared_ptr<core::ProcessRunner> lvm) {
  if (const char* off = std::getenv("XENCTLD_LVM_METADATA"); off && std::string_view(off) == "0") return nullptr;
  auto tool = std::make_shared<Lvm>(lvm, lvm, absl::Minutes(1));
  return std::make_shared<VgModels>([tool](const std::string& vg) { return tool->pvs(vg); },
                                    std::make_shared<KernelDeviceMapper>());
}

VgModels::Stats VgModels::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<std::shared_ptr<const VgMetadata>> VgModels::current(const std::string& vg, Model& m) {
  Status last = absl::NotFoundError(absl::StrCat("VG ", vg, " has no PV with a metadata area"));
  for (const std::string& pv : m.pvs) {
    const std::string what = absl::StrCat("PV ", pv, " of VG ", vg);
    auto read = openForRead(pv);
    if (!read.ok()) {
      last = read.status();
      continue;
    }
    // A commit racing the reads shows as a text whose CRC does not match: read again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto commit = readMdaCommit(*read, what);
      if (!commit.ok()) {
        last = commit.status();
        break;
      }
      if (m.md && *commit == m.commit) {
        // The same slot: the same commit unless the ring came round to it
        // again; the id and seqno at its start settle it.
        std::string head(static_cast<size_t>(std::min<uint64_t>(commit->size, kHeadBytes)), '\0');
        Status st = readText(*read, *commit, 0, head.size(), head.data());
        auto h = st.ok() ? parseVgHead(head) : Result<VgMetadata>(st);
        if (h.ok() && h->name == m.md->name && h->id == m.md->id && h->seqno == m.md->seqno) {
          ++stats_.reused;
          return m.md;
        }
      }
      auto text = readMetadataText(*read, *commit, what);
      if (absl::IsDataLoss(text.status())) {
        last = text.status();
        continue;
      }
      if (!text.ok()) {
        last = text.status();
        break;
      }
      auto md = parseVgMetadata(*text);
      if (!md.ok()) return annotate(md.status(), what);
      if (md->name != vg)
        return absl::FailedPreconditionError(absl::StrCat(what, " holds the metadata of VG ", md->name));
      m.commit = *commit;
      m.md = std::make_shared<const VgMetadata>(*std::move(md));
      ++stats_.parsed;
      return m.md;
    }
  }
  return last;
}

Result<std::vector<LvRow>> VgModels::rows(const std::string& vg) {
  std::shared_ptr<const VgMetadata> md;
  {
    std::lock_guard lock(mu_);
    Model& m = models_[vg];
    for (int pass = 0; pass < 2 && !md; ++pass) {
      if (m.pvs.empty() || pass == 1) {
        auto pvs = find_pvs_(vg);
        if (!pvs.ok()) return annotate(pvs.status(), absl::StrCat("finding the PVs of VG ", vg));
        m.pvs = *std::move(pvs);
        m.md.reset();
      }
      auto cur = current(vg, m);
      if (cur.ok()) md = *std::move(cur);
      else if (pass == 1) return cur.status();
    }
  }
  return lvRowsOf(*md, *dm_);
}

}  // namespace xenctl::storage
