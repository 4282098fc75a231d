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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lib/image test driver"};
  app.require_subcommand(1);
  std::string uri, out, sha, policy = "auto", ca, format = "auto";
  std::vector<std::string> keys;
  int retries = 4;
  double backoff = 0.05, low_speed_time = 60, connect_timeout = 30;
  uint64_t max_bytes = 0, max_entries = 2'000'000, max_total = uint64_t{64} << 30;
  int max_redirects = 5;
  bool allow_setid = false, allow_devices = false;
  auto common = [&](CLI::App* c) {
    c->add_option("uri", uri)->required();
    c->add_option("out", out)->required();
    c->add_option("--ca", ca);
    c->add_option("--retries", retries);
    c->add_option("--backoff", backoff);
    c->add_option("--low-speed-time", low_speed_time);
    c->add_option("--connect-timeout", connect_timeout);
    c->add_option("--max-bytes", max_bytes);
    c->add_option("--max-redirects", max_redirects);
  };
  auto* fetch = app.add_subcommand("fetch");
  common(fetch);
  auto* import = app.add_subcommand("import");
  common(import);
  import->add_option("--sha256", sha);
  import->add_option("--key", keys, "minisign public key file (repeatable)");
  import->add_option("--policy", policy);
  import->add_option("--format", format);
  import->add_option("--max-entries", max_entries);
  import->add_option("--max-total", max_total);
  import->add_flag("--allow-setid", allow_setid);
  import->add_flag("--allow-devices", allow_devices);
  std::string export_format = "tar.zst";
  auto* exp = app.add_subcommand("export");
  exp->add_option("dir", out)->required();
  exp->add_option("uri", uri)->required();
  exp->add_option("--format", export_format);
  exp->add_option("--ca", ca);
  CLI11_PARSE(app, argc, argv);

  core::FetchOptions fo;
  fo.ca_file = ca;
  fo.max_retries = retries;
  fo.retry_backoff = absl::Seconds(backoff);
  fo.low_speed_time = absl::Seconds(low_speed_time);
  fo.connect_timeout = absl::Seconds(connect_timeout);
  fo.max_bytes = max_bytes;
  fo.max_redirects = max_redirects;
  uint64_t progress_calls = 0, last_bytes = 0;
  fo.progress = [&](const core::FetchProgress& p) {
    ++progress_calls;
    last_bytes = p.bytes;
  };
  auto fetcher = CurlFetcher::create();
  if (!fetcher.ok()) return fail(fetcher.status());

  nlohmann::json j;
  if (exp->parsed()) {
    auto f = parseExportFormat(export_format);
    if (!f.ok()) return fail(f.status());
    auto r = exportDirectory(**fetcher, out, *f, uri, fo);
    if (!r.ok()) return fail(r.status());
    j = {{"entries", r->pack.entries}, {"bytes", r->pack.bytes}, {"sha256", toHex(r->sha256)}};
  } else if (fetch->parsed()) {
    std::ofstream f(out, std::ios::binary);
    auto r = (*fetcher)->fetch(
        uri,
        [&](std::string_view chunk) {
          f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
          return f ? Status() : absl::InternalError("writing " + out);
        },
        fo);
    if (!r.ok()) return fail(r.status());
    j = {{"bytes", r->bytes}, {"attempts", r->attempts}, {"resumes", r->resumes}};
  } else {
    ImportRequest req;
    req.uri = uri;
    req.fetch = fo;
    if (!sha.empty()) {
      auto d = parseSha256(sha);
      if (!d.ok()) return fail(d.status());
      req.sha256 = *d;
    }
    for (const auto& k : keys) {
      auto text = readFile(k);
      if (!text.ok()) return fail(text.status());
      auto key = MinisignPublicKey::parse(*text);
      if (!key.ok()) return fail(key.status());
      req.trusted_keys.push_back(*key);
    }
    auto p = parseSignaturePolicy(policy);
    if (!p.ok()) return fail(p.status());
    req.signature = *p;
    req.format = format == "raw" ? ImageFormat::kRawExt : format == "archive" ? ImageFormat::kArchive : ImageFormat::kAuto;
    req.extract.allow_setid = allow_setid;
    req.extract.allow_devices = allow_devices;
    req.extract.max_entries = max_entries;
    req.extract.max_total_bytes = max_total;
    auto r = importImage(**fetcher, req, out);
    if (!r.ok()) return fail(r.status());
    j = {{"kind", std::string(toString(r->kind))},
         {"sha256", toHex(r->sha256)},
         {"bytes", r->bytes},
         {"digest_checked", r->digest_checked},
         {"digest_source", r->digest_source},
         {"signed", r->signed_},
         {"key_id", r->key_id},
         {"trusted_comment", r->trusted_comment},
         {"attempts", r->attempts},
         {"resumes", r->resumes},
         {"entries", r->extract.entries},
         {"format", r->extract.format},
         {"filter", r->kind == ImageKind::kRawExt ? r->raw.filter : r->extract.filter},
         {"xattrs_skipped", r->extract.xattrs_skipped}};
  }
  j["progress_calls"] = progress_calls;
  j["progress_last_bytes"] = last_bytes;
  std::cout << j.dump() << "\n";
  return 0;
}
