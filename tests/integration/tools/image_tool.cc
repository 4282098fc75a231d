// image_tool: drives lib/image from the integration tests (test_images.py),
// against servers they start on loopback, until ImageService exposes it
// through xenctld.
//   image_tool fetch URI OUT [options]     CurlFetcher alone, into the file OUT
//   image_tool import URI DEST [options]  importImage: fetch, verify, unpack
//   image_tool export DIR URI [--format F] exportDirectory: pack and store
// Prints a JSON result on stdout; on error "CODE: message" on stderr, exit 1.
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "lib/image/archive_writer.h"
#include "lib/image/curl_fetcher.h"
#include "lib/image/image_importer.h"

using namespace xenctl;
using namespace xenctl::image;

namespace {

int fail(const Status& st) {
  std::cerr << absl::StatusCodeToString(st.code()) << ": " << st.message() << "\n";
  return 1;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct Args {
  std::string uri, out, sha, policy = "auto", ca, format = "auto", export_format = "tar.zst";
  std::vector<std::string> keys;
  int retries = 4;
  double backoff = 0.05, low_speed_time = 60, connect_timeout = 30, timeout = 0;
  uint64_t max_bytes = 0, max_entries = 2'000'000, max_total = uint64_t{64} << 30;
  int max_redirects = 5;
  bool allow_setid = false, allow_devices = false;
};

struct Commands {
  CLI::App* fetch;
  CLI::App* import;
  CLI::App* exp;
};

Commands addCommands(CLI::App& app, Args& a) {
  auto common = [&](CLI::App* c) {
    c->add_option("uri", a.uri)->required();
    c->add_option("out", a.out)->required();
    c->add_option("--ca", a.ca);
    c->add_option("--retries", a.retries);
    c->add_option("--backoff", a.backoff);
    c->add_option("--low-speed-time", a.low_speed_time);
    c->add_option("--connect-timeout", a.connect_timeout);
    c->add_option("--timeout", a.timeout, "total timeout in seconds (0: none)");
    c->add_option("--max-bytes", a.max_bytes);
    c->add_option("--max-redirects", a.max_redirects);
  };
  auto* fetch = app.add_subcommand("fetch");
  common(fetch);
  auto* import = app.add_subcommand("import");
  common(import);
  import->add_option("--sha256", a.sha);
  import->add_option("--key", a.keys, "minisign public key file (repeatable)");
  import->add_option("--policy", a.policy);
  import->add_option("--format", a.format);
  import->add_option("--max-entries", a.max_entries);
  import->add_option("--max-total", a.max_total);
  import->add_flag("--allow-setid", a.allow_setid);
  import->add_flag("--allow-devices", a.allow_devices);
  auto* exp = app.add_subcommand("export");
  exp->add_option("dir", a.out)->required();
  exp->add_option("uri", a.uri)->required();
  exp->add_option("--format", a.export_format);
  exp->add_option("--ca", a.ca);
  return {fetch, import, exp};
}

Result<nlohmann::json> runExport(core::Fetcher& fetcher, const Args& a, const core::FetchOptions& fo) {
  XENCTL_ASSIGN_OR_RETURN(ExportFormat f, parseExportFormat(a.export_format));
  XENCTL_ASSIGN_OR_RETURN(ExportResult r, exportDirectory(fetcher, a.out, f, a.uri, fo));
  return nlohmann::json{{"entries", r.pack.entries}, {"bytes", r.pack.bytes}, {"sha256", toHex(r.sha256)}};
}

Result<nlohmann::json> runFetch(core::Fetcher& fetcher, const Args& a, const core::FetchOptions& fo) {
  std::ofstream f(a.out, std::ios::binary);
  XENCTL_ASSIGN_OR_RETURN(core::FetchResult r, fetcher.fetch(
                                                   a.uri,
                                                   [&](std::string_view chunk) {
                                                     f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
                                                     return f ? Status() : absl::InternalError("writing " + a.out);
                                                   },
                                                   fo));
  return nlohmann::json{{"bytes", r.bytes}, {"attempts", r.attempts}, {"resumes", r.resumes}};
}

Result<nlohmann::json> runImport(core::Fetcher& fetcher, const Args& a, const core::FetchOptions& fo) {
  ImportRequest req;
  req.uri = a.uri;
  req.fetch = fo;
  if (!a.sha.empty()) {
    XENCTL_ASSIGN_OR_RETURN(req.sha256, parseSha256(a.sha));
  }
  for (const auto& k : a.keys) {
    XENCTL_ASSIGN_OR_RETURN(std::string text, readFile(k));
    XENCTL_ASSIGN_OR_RETURN(MinisignPublicKey key, MinisignPublicKey::parse(text));
    req.trusted_keys.push_back(key);
  }
  XENCTL_ASSIGN_OR_RETURN(req.signature, parseSignaturePolicy(a.policy));
  req.format = a.format == "raw"       ? ImageFormat::kRawExt
               : a.format == "archive" ? ImageFormat::kArchive
                                       : ImageFormat::kAuto;
  req.extract.allow_setid = a.allow_setid;
  req.extract.allow_devices = a.allow_devices;
  req.extract.max_entries = a.max_entries;
  req.extract.max_total_bytes = a.max_total;
  XENCTL_ASSIGN_OR_RETURN(ImportResult r, importImage(fetcher, req, a.out));
  return nlohmann::json{{"kind", std::string(toString(r.kind))},
                        {"sha256", toHex(r.sha256)},
                        {"bytes", r.bytes},
                        {"digest_checked", r.digest_checked},
                        {"digest_source", r.digest_source},
                        {"signed", r.signed_},
                        {"key_id", r.key_id},
                        {"trusted_comment", r.trusted_comment},
                        {"attempts", r.attempts},
                        {"resumes", r.resumes},
                        {"entries", r.extract.entries},
                        {"format", r.extract.format},
                        {"filter", r.kind == ImageKind::kRawExt ? r.raw.filter : r.extract.filter},
                        {"xattrs_skipped", r.extract.xattrs_skipped}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lib/image test driver"};
  app.require_subcommand(1);
  Args a;
  const Commands cmd = addCommands(app, a);
  CLI11_PARSE(app, argc, argv);

  core::FetchOptions fo;
  fo.ca_file = a.ca;
  fo.max_retries = a.retries;
  fo.retry_backoff = absl::Seconds(a.backoff);
  fo.low_speed_time = absl::Seconds(a.low_speed_time);
  fo.connect_timeout = absl::Seconds(a.connect_timeout);
  fo.total_timeout = absl::Seconds(a.timeout);
  fo.max_bytes = a.max_bytes;
  fo.max_redirects = a.max_redirects;
  uint64_t progress_calls = 0, last_bytes = 0;
  fo.progress = [&](const core::FetchProgress& p) {
    ++progress_calls;
    last_bytes = p.bytes;
  };
  auto fetcher = CurlFetcher::create();
  if (!fetcher.ok()) return fail(fetcher.status());

  Result<nlohmann::json> j = cmd.exp->parsed()     ? runExport(**fetcher, a, fo)
                             : cmd.fetch->parsed() ? runFetch(**fetcher, a, fo)
                                                   : runImport(**fetcher, a, fo);
  if (!j.ok()) return fail(j.status());
  (*j)["progress_calls"] = progress_calls;
  (*j)["progress_last_bytes"] = last_bytes;
  std::cout << j->dump() << "\n";
  return 0;
}
