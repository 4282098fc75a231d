#include "daemon/domain_lister.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/convert.h"
#include "daemon/list_page.h"
#include "proto/convert/convert.h"

namespace xenctl::daemon {

struct DomainLister::Encoded {
  uint64_t version = 0;
  /// A Domain's encoding with only the definition's fields, in field order:
  /// field 1 (spec) up to spec_end, field 8 (created_at) up to created_end,
  /// then fields 10 on (owner_uid, owner, grants, and any later one).
  std::string bytes;
  size_t spec_end = 0;
  size_t created_end = 0;
  /// The same without the spec's lists, for when the whole is too large to
  /// list; made only for a definition over an eighth of a page.
  std::unique_ptr<const Encoded> trimmed;
};

namespace {

using Encoded = DomainLister::Encoded;

// protobuf's wire format: a tag is (field number << 3) | wire type; every
// field written here is below 16, so its tag is one byte.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kFixed64 = 1;
constexpr uint8_t kLengthDelimited = 2;
constexpr char tag(int field, uint8_t type) { return static_cast<char>((field << 3) | type); }

size_t varintSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

char* putVarint(char* p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = static_cast<char>(v | 0x80);
  *p++ = static_cast<char>(v);
  return p;
}

void appendVarint(std::string& out, uint64_t v) {
  char buf[10];
  out.append(buf, putVarint(buf, v) - buf);
}

// The size of a length-delimited field of `n` bytes, tag included.
size_t fieldSize(size_t n) { return 1 + varintSize(n) + n; }

// What stands in a domain's state_reason when it is listed trimmed.
constexpr std::string_view kTooLargeReason =
    "its spec is too large to list; delete the domain and define it again within the limits";

// A Domain's fields 2 to 7, which the hypervisor's report gives, encoded as
// protobuf encodes them: in field order, none at its default value (proto3),
// an enum or a negative int64 as a sign-extended varint.
struct LiveFields {
  char bytes[64];  // at most 2+11+6+11+9+2
  size_t size = 0;
};

LiveFields liveFields(const provision::DomainView& v) {
  LiveFields f;
  char* p = f.bytes;
  if (const int state = protoconv::toProto(v.state); state != 0) {
    *p++ = tag(2, kVarint);
    p = putVarint(p, static_cast<uint64_t>(static_cast<int64_t>(state)));
  }
  if (v.live.domid != 0) {
    *p++ = tag(3, kVarint);
    p = putVarint(p, static_cast<uint64_t>(v.live.domid));
  }
  if (v.live.vcpus_online != 0) {
    *p++ = tag(4, kVarint);
    p = putVarint(p, v.live.vcpus_online);
  }
  if (v.live.memory_mib != 0) {
    *p++ = tag(5, kVarint);
    p = putVarint(p, v.live.memory_mib);
  }
  uint64_t cpu_bits;
  static_assert(sizeof(cpu_bits) == sizeof(v.live.cpu_time_seconds));
  std::memcpy(&cpu_bits, &v.live.cpu_time_seconds, sizeof(cpu_bits));
  if (cpu_bits != 0) {  // as protobuf: -0.0 is written
    *p++ = tag(6, kFixed64);
    for (int i = 0; i < 8; ++i) *p++ = static_cast<char>(cpu_bits >> (8 * i));  // little-endian
  }
  if (v.foreign) {
    *p++ = tag(7, kVarint);
    *p++ = 1;
  }
  f.size = static_cast<size_t>(p - f.bytes);
  return f;
}

// The encoding of `d`'s definition fields: its live ones are cleared here.
// Trimmed too when its bytes are over `trim_above`.
std::unique_ptr<const Encoded> encodeDefinition(v1::Domain d, uint64_t version, size_t trim_above) {
  d.clear_state();
  d.clear_domid();
  d.clear_vcpus_online();
  d.clear_memory_mib();
  d.clear_cpu_time_seconds();
  d.clear_foreign();
  d.clear_state_reason();
  auto e = std::make_unique<Encoded>();
  e->version = version;
  e->bytes = d.SerializeAsString();
  e->spec_end = d.has_spec() ? fieldSize(d.spec().ByteSizeLong()) : 0;
  e->created_end = e->spec_end + (d.has_created_at() ? fieldSize(d.created_at().ByteSizeLong()) : 0);
  if (e->bytes.size() > trim_above) {
    v1::DomainSpec* spec = d.mutable_spec();
    spec->clear_disks();
    spec->clear_vifs();
    spec->clear_bootloader_args();
    spec->clear_cmdline();
    e->trimmed = encodeDefinition(std::move(d), version, SIZE_MAX);
  }
  return e;
}

// The size of the Domain `e` and these live fields and state_reason make.
size_t domainSize(const Encoded& e, const LiveFields& live, std::string_view reason) {
  return e.bytes.size() + live.size + (reason.empty() ? 0 : fieldSize(reason.size()));
}

// Appends that Domain as one element of ListDomainsResponse.domains (field
// 1), its fields in protobuf's order: 1, 2..7, 8, 9, 10 on.
void appendDomain(std::string& out, const Encoded& e, const LiveFields& live, std::string_view reason,
                  size_t size) {
  out.push_back(tag(1, kLengthDelimited));
  appendVarint(out, size);
  out.append(e.bytes, 0, e.spec_end);
  out.append(live.bytes, live.size);
  out.append(e.bytes, e.spec_end, e.created_end - e.spec_end);
  if (!reason.empty()) {
    out.push_back(tag(9, kLengthDelimited));
    appendVarint(out, reason.size());
    out.append(reason);
  }
  out.append(e.bytes, e.created_end);
}

}  // namespace

DomainLister::DomainLister(provision::DomainManager& domains, provision::AccessPolicy& access,
                           size_t max_answer_bytes)
    : domains_(domains), access_(access), max_answer_bytes_(max_answer_bytes) {}

DomainLister::Usage DomainLister::usage() const {
  std::shared_lock lock(mu_);
  Usage u;
  u.domains = encodings_.size();
  u.bytes = encodings_.capacity() * (sizeof(decltype(encodings_)::value_type) + 1);  // slots and control bytes
  for (const auto& [name, e] : encodings_) {
    u.bytes += name.capacity() + sizeof(Encoded) + e->bytes.capacity();
    if (e->trimmed) u.bytes += sizeof(Encoded) + e->trimmed->bytes.capacity();
  }
  return u;
}

Result<std::string> DomainLister::list(const provision::Caller& caller, const v1::ListDomainsRequest& req) {
  // The encodings of ours at their views' versions, in the views' order
  // (ours come first), null where none is kept: that view carries its
  // definition.
  std::vector<std::shared_ptr<const Encoded>> held;
  Result<std::vector<provision::DomainView>> views;
  {
    // Read-held once for the walk (concurrent calls walk at once), taken
    // before the manager's lock and never while holding it.
    std::shared_lock lock(mu_);
    views = domains_.list(req.include_foreign(), [&](const std::string& name, uint64_t version) {
      auto it = encodings_.find(name);
      held.push_back(it != encodings_.end() && it->second->version == version ? it->second : nullptr);
      return held.back() != nullptr;
    });
  }
  if (!views.ok()) return views.status();
  const size_t ours = held.size();
  held.resize(views->size());

  // Pages continue after a key "0:NAME" (ours by name) or "1:NAME" (then the
  // foreign ones by name), compared without building a key per domain.
  auto before = [&](size_t a, size_t b) {
    const provision::DomainView& va = (*views)[a];
    const provision::DomainView& vb = (*views)[b];
    return va.foreign != vb.foreign ? vb.foreign : va.spec.name < vb.spec.name;
  };
  const std::string& token = req.page_token();
  const bool token_foreign = absl::StartsWith(token, "1:");
  const std::string_view token_name = token.size() >= 2 ? std::string_view(token).substr(2) : std::string_view();
  auto afterToken = [&](const provision::DomainView& v) {
    if (token.empty()) return true;
    if (v.foreign != token_foreign) return v.foreign;
    return std::string_view(v.spec.name) > token_name;
  };
  std::vector<size_t> order;
  order.reserve(views->size());
  for (size_t i = 0; i < views->size(); ++i)
    if (afterToken((*views)[i]) && access_.maySeeDomain(caller, (*views)[i].spec.name)) order.push_back(i);
  // list() gives ours by name, then the foreign ones: sorted already but for those.
  if (!std::is_sorted(order.begin(), order.end(), before)) std::sort(order.begin(), order.end(), before);

  // Encoded here: the ones to answer with that have no encoding at their
  // version yet (ours are kept for the next call), and the foreign ones.
  size_t reserve = 0;
  for (size_t i : order) {
    if (!held[i]) {
      const provision::DomainView& v = (*views)[i];
      v1::Domain d;
      toProto(v, &d);
      held[i] = encodeDefinition(std::move(d), v.version, max_answer_bytes_ / 8);
      if (i < ours) {
        std::lock_guard lock(mu_);
        auto& kept = encodings_[v.spec.name];
        if (!kept || kept->version < v.version) kept = held[i];  // a call that read a later one may have been first
      }
    }
    reserve += held[i]->bytes.size() + 96;
  }
  // Drop the encodings of domains that are gone (the views name every one of ours).
  {
    std::lock_guard lock(mu_);
    if (encodings_.size() > ours) {
      auto gone = [&](const std::string& name) {
        auto it = std::lower_bound(views->begin(), views->begin() + static_cast<ptrdiff_t>(ours), name,
                                   [](const provision::DomainView& v, const std::string& n) { return v.spec.name < n; });
        return it == views->begin() + static_cast<ptrdiff_t>(ours) || it->spec.name != name;
      };
      for (auto it = encodings_.begin(); it != encodings_.end();) {
        if (gone(it->first)) encodings_.erase(it++);
        else ++it;
      }
    }
  }

  std::string out;
  out.reserve(std::min(reserve, max_answer_bytes_ + 4096));
  size_t bytes = 0;
  size_t written = 0;
  const provision::DomainView* last = nullptr;
  for (size_t i : order) {
    const provision::DomainView& v = (*views)[i];
    const Encoded* e = held[i].get();
    const LiveFields live = liveFields(v);
    std::string_view reason = v.state_reason;
    size_t size = domainSize(*e, live, reason);
    if (size > max_answer_bytes_ / 4 && e->trimmed) {
      // Stored before the limits on a spec existed: shown without its lists.
      spdlog::warn("domain '{}': its spec is {} bytes, too large to list; shown without disks, vifs, cmdline",
                   v.spec.name, size);
      e = e->trimmed.get();
      reason = kTooLargeReason;
      size = domainSize(*e, live, reason);
    }
    const size_t n = size + kListElementOverhead;
    if (bytes + n > max_answer_bytes_ && written > 0) {
      const std::string next = absl::StrCat(last->foreign ? "1:" : "0:", last->spec.name);
      out.push_back(tag(2, kLengthDelimited));
      appendVarint(out, next.size());
      out.append(next);
      break;
    }
    bytes += n;
    appendDomain(out, *e, live, reason, size);
    ++written;
    last = &v;
  }
  return out;
}

}  // namespace xenctl::daemon
