// vm-container --container FILE [--stripped OUT] [--dry-run] (paper §4.3,
// Figure 2): has the daemon check the container file (StripContainer), run
// its expressions in order (ApplyContainer) unless --dry-run, and writes the
// plain xl config left over, ready for `vmm create OUT`.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/lib/specs.h"
#include "xenctl/v1/container.grpc.pb.h"

namespace xenctl::client {
namespace {

// The plain xl config of a container file, checked by the daemon's parser.
Result<std::string> strip(Client& c, const v1::XlConfig& file) {
  v1::StripContainerRequest req;
  req.set_text(file.text());
  req.set_file_name(file.file_name());
  Result<v1::StripContainerResponse> resp = c.call(&v1::ContainerService::Stub::StripContainer, req);
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_xl_config());
}

Result<v1::Operation> apply(Client& c, const v1::XlConfig& file, const std::string& request_id) {
  v1::ApplyContainerRequest req;
  req.set_request_id(request_id);
  req.set_text(file.text());
  req.set_file_name(file.file_name());
  return c.call(&v1::ContainerService::Stub::ApplyContainer, req);
}

// Writes `text` at `path` whole or not at all (a temporary file renamed over
// it); "-" is stdout.
Status writeStripped(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return absl::OkStatus();
  }
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::PermissionDeniedError(
          absl::StrCat("writing the stripped config '", path, "': ", std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(absl::StrCat("writing the stripped config '", path, "': ", why));
  }
  return absl::OkStatus();
}

class ContainerCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("--container", file_, "The container file: an xl config with bracketed expressions")
        ->type_name("FILE")
        ->required();
    app.add_option("--stripped", stripped_, "Write the plain xl config (the file without its expressions) here; - = stdout")
        ->type_name("OUT");
    app.add_flag("--dry-run", dry_run_, "Check the file and write --stripped; run no expression, change nothing");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<v1::XlConfig> file = readXlConfigFile(file_);
    if (!file.ok()) return s.fail(file.status());
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    // The daemon's parser checks the whole file before anything runs.
    Result<std::string> xl = strip(**c, *file);
    if (!xl.ok()) return s.fail(xl.status());
    // Stripping removes at least the "[end]" of every expression.
    const bool has_expressions = *xl != file->text();
    if (!dry_run_ && has_expressions) {
      int rc = s.finishMutation(apply(**c, *file, Session::requestId(m_)), m_,
                                [](const v1::Operation&) { return kExitOk; });
      if (rc != kExitOk) return rc;
    }
    if (!stripped_.empty())
      if (Status w = writeStripped(stripped_, *xl); !w.ok()) return s.fail(w);
    if (stripped_ != "-" && !s.json())
      s.print(absl::StrCat(file_, ": ", !has_expressions ? "no container expressions"
                                        : dry_run_        ? "valid (dry run: nothing ran)"
                                        : m_.no_wait      ? "expressions started"
                                                          : "expressions applied",
                           stripped_.empty() ? "" : absl::StrCat("; xl config written to ", stripped_), "\n"));
    return kExitOk;
  }

 private:
  std::string file_;
  std::string stripped_;
  bool dry_run_ = false;
  MutationOptions m_;
};

}  // namespace

int applyContainerFile(Session& s, Client& c, v1::XlConfig& file, const std::string& request_id) {
  Result<std::string> xl = strip(c, file);
  if (!xl.ok()) return s.fail(xl.status());
  if (*xl == file.text()) return kExitOk;  // a plain xl config
  Result<v1::Operation> op = apply(c, file, absl::StrCat(request_id, "-container"));
  if (!op.ok()) return s.fail(op.status());
  Result<v1::Operation> done = s.wait(*op);
  if (!done.ok()) return s.fail(done.status());
  if (Status st = operationStatus(*done); !st.ok()) return s.fail(st);
  file.set_text(std::move(*xl));
  return kExitOk;
}

int moveContainerIntoCreate(Session& s, Client& c, v1::CreateDomainRequest& req) {
  v1::XlConfig& file = *req.mutable_xl_config();
  Result<std::string> xl = strip(c, file);
  if (!xl.ok()) return s.fail(xl.status());
  if (*xl == file.text()) return kExitOk;  // a plain xl config
  for (const v1::Customization& cz : req.customizations())
    if (cz.has_container_text())
      return s.fail(absl::InvalidArgumentError(
          absl::StrCat("'", file.file_name(), "' is a container file and --container gives another; give one")));
  req.set_container_file_name(file.file_name());
  req.add_customizations()->set_container_text(std::move(*file.mutable_text()));
  file.set_text(std::move(*xl));
  return kExitOk;
}

std::unique_ptr<Command> makeContainerCommand() { return std::make_unique<ContainerCommand>(); }

}  // namespace xenctl::client
