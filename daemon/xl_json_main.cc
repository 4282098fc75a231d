// xenctl-xl-json FILE...: the libxl domain configuration xenctld builds from
// each xl config file, printed as `xl -N create FILE` prints xl's own
// ({"domid": null, "config": {...}}), so the two can be compared field by
// field (the lab's xlfidelity scenario). Nothing is created and no daemon is
// asked: the file goes through the code xenctld runs for CreateDomain and
// StartDomain (readXlConfig, normalizeSpec, buildDomainConfig), with the
// host's cpus from libxl when there is a Xen to ask. The uuid is the file's,
// else --uuid, else a new one, as xenctld assigns it. With --out-dir DIR,
// each FILE's result goes to DIR/BASENAME.json (or its refusal to
// DIR/BASENAME.err) instead of stdout, so one run serves a whole corpus: under
// the lab's TCG every process start costs most of a second.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/core/domain.h"
#include "lib/xen/libxl_config.h"
#include "lib/xen/libxl_hypervisor.h"
#include "lib/xen/xl_config.h"

namespace {

using namespace xenctl;

xen::HostCpus hostCpus() {
  xentoollog_logger* quiet = reinterpret_cast<xentoollog_logger*>(
      xtl_createlogger_stdiostream(std::fopen("/dev/null", "w"), XTL_CRITICAL, 0));
  libxl_ctx* ctx = nullptr;
  xen::HostCpus h;
  if (quiet && libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, quiet) == 0) {
    h = xen::hostCpusOf(ctx);
    libxl_ctx_free(ctx);
  }
  return h;
}

Result<std::string> jsonOf(const std::string& file, const std::string& uuid, const xen::HostCpus& host) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
  std::stringstream text;
  text << in.rdbuf();
  XENCTL_ASSIGN_OR_RETURN(core::DomainSpec spec, xen::readXlConfig(text.str(), file, host));
  if (spec.uuid.empty()) spec.uuid = uuid.empty() ? core::newUuid() : uuid;
  XENCTL_ASSIGN_OR_RETURN(spec, core::normalizeSpec(std::move(spec)));
  xen::DomainConfig cfg;
  XENCTL_RETURN_IF_ERROR(xen::buildDomainConfig(spec, cfg.get(), host));
  XENCTL_ASSIGN_OR_RETURN(std::string json, xen::domainConfigJson(*cfg));
  return absl::StrCat("{\n    \"domid\": null,\n    \"config\": ", json, "\n}\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string uuid;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--uuid" && i + 1 < argc) {
      uuid = argv[++i];
    } else if (a == "--out-dir" && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (a == "-h" || a == "--help" || (!a.empty() && a[0] == '-')) {
      std::cerr << "usage: xenctl-xl-json [--uuid UUID] [--out-dir DIR] FILE...\n"
                   "Prints the libxl domain configuration xenctld builds from each xl config FILE, as\n"
                   "`xl -N create FILE` prints xl's. Exit 2 when a file is refused (the reason on stderr).\n"
                   "--out-dir DIR: writes DIR/BASENAME.json, or DIR/BASENAME.err for a refused FILE.\n";
      return a == "-h" || a == "--help" ? 0 : 2;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    std::cerr << "xenctl-xl-json: give an xl config FILE (see --help)\n";
    return 2;
  }
  const xen::HostCpus host = hostCpus();
  int rc = 0;
  for (const std::string& f : files) {
    Result<std::string> json = jsonOf(f, uuid, host);
    if (!out_dir.empty()) {
      const std::string base = (std::filesystem::path(out_dir) / std::filesystem::path(f).filename()).string();
      std::ofstream out(base + (json.ok() ? ".json" : ".err"), std::ios::binary | std::ios::trunc);
      out << (json.ok() ? *json : absl::StrCat("xenctl-xl-json: ", json.status().message(), "\n"));
      if (!out.flush()) {
        std::cerr << "xenctl-xl-json: cannot write " << base << " (.json or .err) under --out-dir " << out_dir << "\n";
        return 1;
      }
      if (!json.ok()) rc = 2;
      continue;
    }
    if (!json.ok()) {
      std::cerr << "xenctl-xl-json: " << json.status().message() << "\n";
      rc = 2;
      continue;
    }
    std::cout << *json;
  }
  return rc;
}
