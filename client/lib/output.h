// What the commands print: the API's messages as JSON (--json), or as
// tables and "key: value" lines for people.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/time/time.h"
#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/host.pb.h"
#include "xenctl/v1/image.pb.h"
#include "xenctl/v1/operation.pb.h"
#include "xenctl/v1/volume.pb.h"

namespace xenctl::client {

template <class T>
using Repeated = google::protobuf::RepeatedPtrField<T>;

/// The --json form of a message, and the stable interface for scripts
/// (README "JSON output"): protobuf's JSON mapping of the message as the
/// daemon sent it, with the .proto's field names (snake_case), every field
/// of a scalar, enum or repeated type present even at its default, unset
/// message fields (a timestamp not yet set) left out, enums by their .proto
/// names and 64-bit integers as strings, as the mapping says. Keys come in
/// the printer's order (nlohmann::ordered_json keeps it).
nlohmann::ordered_json toJson(const google::protobuf::Message& m);
/// A JSON array of the messages (what the list commands print).
template <class T>
nlohmann::ordered_json toJson(const Repeated<T>& ms) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const T& m : ms) out.push_back(toJson(m));
  return out;
}

/// A one-element list, for the one-row form of a table.
template <class T>
Repeated<T> one(const T& m) {
  Repeated<T> out;
  *out.Add() = m;
  return out;
}

/// `vm-list`: Name, ID, Mem, VCPUs, State, Time(s), UUID.
std::string domainTable(const Repeated<v1::Domain>& ds);
/// `vm-info`: one "key: value" line per field, disks and vifs in xl syntax.
std::string domainDetails(const v1::Domain& d);
/// `vmm ops`: ID, Kind, Target, State, Phase, %, Started, Result.
std::string operationTable(const Repeated<v1::Operation>& ops);
/// One line about an operation's progress: "op-… create-domain web1: running, define 40% — message".
std::string operationLine(const v1::Operation& op);
/// `vmm host`.
std::string hostDetails(const v1::HostInfo& h);

/// `vm-volume list`: Pool, Name, Size, Used, Origin, RO, Snapshots, Domain.
std::string volumeTable(const Repeated<v1::Volume>& vs);
/// `vm-image list`: Name, Volume, Size, Clones, Signed by, SHA-256 (first 12), URI.
std::string imageTable(const Repeated<v1::Image>& is);
/// `vm-volume pools`: Pool, Driver, Size, Used, Free%.
std::string poolTable(const Repeated<v1::PoolCapacity>& ps);
/// 1536 -> "1.5K", 16 MiB -> "16M", 10 GiB -> "10G" (binary units, as ls -sh).
std::string humanBytes(uint64_t bytes);

/// RFC 3339 in UTC, seconds precision.
std::string formatTime(absl::Time t);

}  // namespace xenctl::client
