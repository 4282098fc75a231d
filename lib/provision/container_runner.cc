#include "lib/provision/container_runner.h"

#include <map>
#include <set>

#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/core/limits.h"
#include "lib/customize/container_executor.h"
#include "lib/image/minisign.h"

namespace xenctl::provision {
namespace {

// A Fetcher that lets through only what the URI's image source accepts (see
// the header). A fetch that must be signed is held in memory (the executor
// holds it anyway, bounded by max_bytes) until its signature verifies, so
// the executor never sees unproven bytes.
class SourcePolicyFetcher final : public core::Fetcher {
 public:
  SourcePolicyFetcher(core::Fetcher& inner, const image::ImageSources& sources) : inner_(inner), sources_(sources) {}

  Result<core::FetchResult> fetch(const std::string& uri, const core::ByteSink& sink,
                                  const core::FetchOptions& options) override {
    XENCTL_ASSIGN_OR_RETURN(image::SourceDecision d, sources_.choose(uri, image::SignaturePolicy::kAuto));
    switch (d.policy) {
      case image::SignaturePolicy::kNone:
        return inner_.fetch(uri, sink, options);
      case image::SignaturePolicy::kDigest:
        if (absl::StartsWithIgnoreCase(uri, "file://")) return inner_.fetch(uri, sink, options);
        break;  // a signature when there is one; a container file gives no digest
      case image::SignaturePolicy::kSigned:
      case image::SignaturePolicy::kAuto:
        break;
    }
    std::string body;
    XENCTL_ASSIGN_OR_RETURN(core::FetchResult r, inner_.fetch(
        uri,
        [&](std::string_view chunk) {
          body.append(chunk);
          return absl::OkStatus();
        },
        options));
    std::string sig_text;
    core::FetchOptions sig_options = options;
    sig_options.max_bytes = 64 << 10;
    sig_options.progress = nullptr;
    auto got = inner_.fetch(
        uri + ".minisig",
        [&](std::string_view chunk) {
          sig_text.append(chunk);
          return absl::OkStatus();
        },
        sig_options);
    if (!got.ok()) {
      if (got.status().code() != absl::StatusCode::kNotFound) return got.status();
      return absl::PermissionDeniedError(absl::StrCat(
          uri, ": ", d.source,
          d.policy == image::SignaturePolicy::kDigest
              ? " wants a signature or a digest, a container file gives no digest, and there is no signature at "
              : " wants a minisign signature and there is none at ",
          uri, ".minisig; sign it with a key of the source's trusted keys, or declare an [[images.source]] for it "
          "with policy \"none\" in xenctld's config"));
    }
    auto sig = image::MinisignSignature::parse(sig_text);
    if (!sig.ok()) return Status(sig.status().code(), absl::StrCat(uri, ".minisig: ", sig.status().message()));
    if (Status v = image::verifyMinisign(*sig, d.trusted_keys, body); !v.ok())
      return Status(v.code(), absl::StrCat(uri, ": the signature of ", d.source, " does not verify: ", v.message()));
    XENCTL_RETURN_IF_ERROR(sink(body));
    return r;
  }

  Result<uint64_t> put(const std::string& uri, const core::ByteSource& source,
                       const core::FetchOptions& options) override {
    return inner_.put(uri, source, options);
  }

 private:
  core::Fetcher& inner_;
  const image::ImageSources& sources_;
};

}  // namespace

ContainerRunner::ContainerRunner(StorageManager& storage, const VolumeUsage& usage, OperationRegistry& ops,
                                 Ports ports, Config config)
    : storage_(storage), usage_(usage), ops_(ops), ports_(std::move(ports)), config_(std::move(config)) {}

Result<std::string> ContainerRunner::volumePath(const core::VolumeRef& ref) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * pool, storage_.pool(ref.pool));
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, pool->get(ref.name));
  if (auto image = storage_.imageOf(ref.pool, ref.name))
    return absl::FailedPreconditionError(absl::StrCat(
        ref.target(), ": it is the base volume of image '", *image, "', which stays read-only, and a container ",
        "file edits volumes in place; give it a clone (`vm-volume clone ", ref.name, " NEW --pool ", ref.pool, "`)"));
  if (auto user = usage_.userOf(ref.target()))
    return absl::FailedPreconditionError(absl::StrCat(ref.target(), ": running domain '", *user,
                                                      "' uses it, and a container file edits volumes offline; "
                                                      "shut the domain down first"));
  return v.path;
}

Status ContainerRunner::runNow(const customize::ContainerFile& file, std::string_view file_name,
                               const RunOptions& options) {
  if (ports_.fetcher == nullptr) return absl::FailedPreconditionError("the container runner has no fetcher");
  SourcePolicyFetcher fetcher(*ports_.fetcher, config_.sources);
  customize::ContainerPorts ports;
  ports.open_tree = ports_.open_tree;
  ports.fetcher = &fetcher;
  ports.volume_path = [this](const core::VolumeRef& ref) { return volumePath(ref); };
  ports.root_path = options.root_path;
  ports.customize = ports_.customize;
  ports.make_fs = ports_.make_fs;
  ports.create_volume = [this](const core::VolumeRef& ref, uint64_t size, const std::string& label)
      -> Result<std::string> {
    XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * pool, storage_.pool(ref.pool));
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, pool->create(ref.name, size, label));
    return v.path;
  };
  ports.remove_volume = [this](const core::VolumeRef& ref) { return storage_.removeNow(ref.pool, ref.name); };
  ports.work_dir = config_.work_dir;
  customize::ContainerRunOptions run;
  run.fetch.stop = options.stop;
  run.fetch.ca_file = config_.ca_file;
  run.fetch.total_timeout = config_.fetch_timeout;
  run.fetch.low_speed_time = config_.fetch_stall_timeout;
  run.fetch.file_roots = options.file_roots;
  run.fetch.settings.max_bytes = absl::StrCat("the limit on a container file's fetch (", config_.max_fetch_bytes,
                                              " bytes; not configurable)");
  run.max_fetch_bytes = config_.max_fetch_bytes;
  run.instance_id = options.instance_id;
  run.dry_run = options.dry_run;
  run.progress = options.progress;
  run.extract = config_.extract;
  return customize::runContainer(file, file_name, ports, run);
}

Status ContainerRunner::checkHostPaths(const customize::ContainerFile& file, std::string_view file_name,
                                       const Caller& caller) const {
  const HostPaths& hp = config_.host_paths;
  for (const customize::Statement& s : file.statements) {
    const std::string what = absl::StrCat(av(file_name), ":", s.pos.line, ":", s.pos.column, ": [", s.keyword, "]");
    Status st;
    auto location = [&](const customize::Location& l) {
      if (!st.ok()) return;
      switch (l.kind) {
        case customize::Location::Kind::kPath: st = hp.checkPath(caller, l.text, what); break;
        case customize::Location::Kind::kUri: st = hp.checkUri(caller, l.text, what); break;
        case customize::Location::Kind::kVolume: st = hp.checkVolume(caller, l.volume, true); break;
        case customize::Location::Kind::kRoot: break;  // the root this caller's CreateDomain makes
      }
    };
    auto optional = [&](const std::optional<customize::Location>& l) {
      if (l) location(*l);
    };
    // By the fields' names, so that a statement added to the language is
    // checked as long as it names its places as the others do.
    std::visit(
        [&](const auto& b) {
          if constexpr (requires { b.dir; }) {
            if (st.ok()) st = hp.checkPath(caller, b.dir, what);
          }
          if constexpr (requires { b.uri; }) location(b.uri);
          if constexpr (requires { b.target; }) location(b.target);
          if constexpr (requires { b.archive; }) location(b.archive);
          if constexpr (requires { b.source; }) location(b.source);
          if constexpr (requires { b.patch; }) location(b.patch);
          if constexpr (requires { b.out; }) optional(b.out);
          if constexpr (requires { b.outputs; }) {
            optional(b.outputs.diff);
            optional(b.outputs.fork);
          }
        },
        s.body);
    XENCTL_RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

Result<core::OperationRecord> ContainerRunner::apply(const ApplyRequest& req, const Caller& caller) {
  std::string name = req.file_name.empty() ? "container" : req.file_name;
  auto parsed = customize::parseContainer(req.text, name);
  // A retry with a request_id seen before gets its operation; otherwise a
  // file with an error is refused before anything starts.
  const Status parse_status = parsed.ok() ? customize::checkNoNewRoot(*parsed, name) : parsed.status();
  auto file = std::make_shared<customize::ContainerFile>(parsed.ok() ? *std::move(parsed)
                                                                     : customize::ContainerFile{});
  const bool dry_run = req.dry_run;
  auto file_roots = config_.host_paths.fileRoots(caller);
  return ops_.startChecked({"apply-container", name,
                            caller.request_id, caller.uid, caller.key(), caller.request_digest},
                           [&]() -> Status {
                             XENCTL_RETURN_IF_ERROR(
                                 core::checkLength(name, core::kMaxFileNameBytes, "a container file's name"));
                             XENCTL_RETURN_IF_ERROR(parse_status);
                             return checkHostPaths(*file, name, caller);
                           },
                           [this, file, name, dry_run, file_roots](OperationContext& ctx) -> Status {
    ctx.phase("run", 5,
              dry_run ? "fetching and checking every statement; nothing is written"
                      : "fetching and checking every statement before any is written");
    RunOptions options;
    options.dry_run = dry_run;
    options.stop = ctx.stopToken();
    options.file_roots = file_roots;
    options.progress = [&ctx](size_t index, size_t total, const customize::Statement& s) {
      ctx.progress(static_cast<uint32_t>(10 + 90 * index / (total ? total : 1)), index, total,
                   absl::StrCat("line ", s.pos.line, ": [", s.keyword, "]"));
    };
    // Journaled (recovery.h) with the trees it writes: a crash while it
    // writes cannot be undone, but recovery names what may be partly changed.
    std::set<std::string> targets;
    for (const auto& statement : file->statements)
      if (auto t = customize::statementTarget(statement)) targets.insert(t->text);
    const std::map<std::string, std::string> intent{{"file", name}, {"targets", absl::StrJoin(targets, ",")}};
    if (!dry_run) XENCTL_RETURN_IF_ERROR(ctx.journal(0, "write", intent, false));
    Status st = runNow(*file, name, options);
    if (!st.ok() && ctx.cancelled()) return absl::CancelledError(absl::StrCat("cancelled: ", st.message()));
    if (st.ok() && !dry_run) return ctx.journal(0, "write", intent, true);
    return st;
  });
}

}  // namespace xenctl::provision
