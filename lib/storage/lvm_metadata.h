// A volume group read the way LVM reads it, without running LVM: its
// metadata as committed in a PV's metadata area (label, mda_header, text),
// and each LV's state from device-mapper. LvmVolumes uses it instead of an
// `lvs` (0.5 s in a warm lvm shell with 200 LVs under TCG, most of a clone),
// keeping the parsed metadata as long as the commit it was read from is
// still the VG's last one.
//
// The on-disk layout (lvm2 2.03, lib/label/label.h, lib/format_text/layout.h;
// every integer little-endian):
//   - one of the PV's first four 512-byte sectors holds the label:
//     "LABELONE", its sector, a CRC, the offset of the pv_header, "LVM2 001";
//   - the pv_header: the PV's uuid (32 bytes), its size, then two lists of
//     {offset, size} (data areas, metadata areas), each ended by a zero entry;
//   - a metadata area starts with the 512-byte mda_header: a CRC of the rest,
//     the magic " LVM2 x[5A%r0N*>", version 1, its own start and size, then
//     raw_locn slots; slot 0 ({offset, size, checksum, flags}, the offset
//     from the area's start) locates the committed metadata text, a ring
//     buffer that wraps to 512 bytes past the area's start;
//   - the text is LVM's config syntax, the VG's section first ("NAME {",
//     id, seqno ...), its CRC the slot's checksum.
// LVM commits by writing the new text elsewhere in the ring, then the header
// (one sector): whoever commits — an lvm tool, xenctld's own shells, another
// host on shared storage — changes slot 0 and the seqno, which LVM raises by
// one at every commit.
//
// Why this cannot go stale: a model is reused only when the VG's id, seqno
// and slot 0 (offset, size, checksum) read from the PV at the call are the
// ones it was parsed from; reads bypass the page cache (O_DIRECT) so a
// commit from another host is seen; a text whose CRC does not match its slot
// (being overwritten by a commit racing the read) is read again. A model is
// thus as fresh as an `lvs` run at the same moment, which reads the same
// area. What the reader does not model (a segment type or an LV flag beyond
// linear/striped, thin, thin-pool and classic snapshots, pending thin pool
// messages, a VG whose PVs cannot be read) is UNIMPLEMENTED: the caller
// runs `lvs` instead.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/storage/lvm.h"

namespace xenctl::storage {

/// LVM's CRC-32 (lib/misc/crc.c): reflected polynomial 0xedb88320, no final
/// inversion; LVM starts it at kLvmInitialCrc.
inline constexpr uint32_t kLvmInitialCrc = 0xf597a6cf;
uint32_t lvmCrc(uint32_t initial, std::string_view bytes);

/// Where a PV's metadata area keeps the committed text (raw_locn slot 0).
struct MdaCommit {
  uint64_t mda_start = 0, mda_size = 0;  ///< the metadata area, bytes from the PV's start
  uint64_t offset = 0, size = 0;         ///< the text, from the area's start
  uint32_t checksum = 0;                 ///< lvmCrc of the text
  bool operator==(const MdaCommit&) const = default;
};

/// Reads `size` bytes at `offset` of the PV; a short read is an error.
using ReadAt = std::function<Status(uint64_t offset, size_t size, char* out)>;

/// The label, pv_header and first metadata area's header of a PV.
/// NOT_FOUND without a label or a metadata area; DATA_LOSS for a bad CRC,
/// magic or slot. `what` names the device in messages.
Result<MdaCommit> readMdaCommit(const ReadAt& read, const std::string& what);
/// The committed text (wrapped around the ring when it is), checked against
/// its CRC: DATA_LOSS when it does not match.
Result<std::string> readMetadataText(const ReadAt& read, const MdaCommit& commit, const std::string& what);

/// One segment of an LV, the keys the reader uses.
struct LvSegment {
  std::string type;  ///< "striped", "thin", "thin-pool", "snapshot" ...
  uint64_t extent_count = 0;
  uint32_t stripe_count = 0;  ///< striped: 1 is what lvs calls linear
  std::string thin_pool, origin, cow_store;  ///< thin: pool and origin; snapshot: origin and COW LV
  bool pending_messages = false;             ///< a thin-pool with message sections
  bool merging = false;                      ///< a snapshot with merging_store
  bool external_origin = false;              ///< a thin LV with an external origin or a merge
  bool zero_new_blocks = false;              ///< a thin-pool that zeroes what it provisions
};

struct LvMetadata {
  std::string name;
  std::vector<std::string> status, flags, tags;
  int64_t creation_time = 0;
  std::vector<LvSegment> segments;
  bool has(std::string_view flag) const;  ///< in status or flags
};

/// The parts of a VG's metadata text the reader uses.
struct VgMetadata {
  std::string name, id;
  uint64_t seqno = 0;
  uint64_t extent_size = 0;  ///< sectors
  std::vector<LvMetadata> lvs;
  const LvMetadata* find(std::string_view lv) const;
};

/// Parses a metadata text (LVM's config syntax: sections, `key = value`,
/// strings, integers, [lists], # comments). INVALID_ARGUMENT naming the line
/// for a syntax error; the VG is the first top-level section.
Result<VgMetadata> parseVgMetadata(std::string_view text);
/// The VG's name, id and seqno from the text's first lines, without parsing
/// the rest; INVALID_ARGUMENT when they are not there.
Result<VgMetadata> parseVgHead(std::string_view text);

/// One device-mapper device as `dmsetup status`/`info` show it.
struct DmDevice {
  int open_count = 0;
  std::string target;  ///< the first target's type ("thin", "thin-pool", "snapshot" ...)
  std::string status;  ///< its status line (after the type)
};

/// Device-mapper state, by device name ("vg0-web1", "vg0-pool-tpool").
class DeviceMapperState {
 public:
  virtual ~DeviceMapperState() = default;
  /// The device, or nullopt when there is none (the LV is not active).
  virtual Result<std::optional<DmDevice>> device(const std::string& name) = 0;
};

/// The real one: DM_TABLE_STATUS ioctls on /dev/mapper/control.
class KernelDeviceMapper final : public DeviceMapperState {
 public:
  Result<std::optional<DmDevice>> device(const std::string& name) override;
};

/// "vg-0" and "web-1" -> "vg--0-web--1": LVM's device-mapper name for an LV.
std::string dmName(std::string_view vg, std::string_view lv, std::string_view layer = "");

/// The rows `lvs` (kLvFields, hidden LVs left out) would print for the VG
/// described by `md` with device-mapper in state `dm`. UNIMPLEMENTED when
/// `md` holds what the reader does not model (see the file comment).
Result<std::vector<LvRow>> lvRowsOf(const VgMetadata& md, DeviceMapperState& dm);

/// The models of VGs, read from their PVs and kept across calls while
/// their commit stands. Thread-safe; LvmVolumes calls it under the VG's lock.
class VgModels {
 public:
  /// `pvs` finds a VG's PVs (devices with a metadata area), called when the
  /// VG is first read and whenever reading its PVs fails.
  using FindPvs = std::function<Result<std::vector<std::string>>(const std::string& vg)>;
  VgModels(FindPvs find_pvs, std::shared_ptr<DeviceMapperState> dm);
  /// The daemon's: PVs found with `pvs` run through `lvm`, the kernel's
  /// device-mapper. Null (every report an lvs) when the environment has
  /// XENCTLD_LVM_METADATA=0: the lab's clone-bench compares both that way.
  static std::shared_ptr<VgModels> onHost(std::shared_ptr<core::ProcessRunner> lvm);

  /// The VG's LVs as lvs would report them now. UNIMPLEMENTED (the caller
  /// runs lvs) when the VG holds what the reader does not model; another
  /// error when its PVs cannot be read.
  Result<std::vector<LvRow>> rows(const std::string& vg);

  struct Stats {
    uint64_t reused = 0, parsed = 0;  ///< calls served by the kept model / by a fresh parse
  };
  Stats stats() const;

 private:
  struct Model {
    std::vector<std::string> pvs;
    MdaCommit commit;
    std::shared_ptr<const VgMetadata> md;
  };
  Result<std::shared_ptr<const VgMetadata>> current(const std::string& vg, Model& m);

  FindPvs find_pvs_;
  std::shared_ptr<DeviceMapperState> dm_;
  mutable std::mutex mu_;
  std::map<std::string, Model> models_;
  Stats stats_;
};

/// A ReadAt on a device or file: O_DIRECT when the file system allows it.
Result<ReadAt> openForRead(const std::string& path);

}  // namespace xenctl::storage
