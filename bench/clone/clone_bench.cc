// bench/clone: prints figures, asserts nothing. Runs in the lab (scenario
// clone-bench) against a running xenctld with an lvm-thin pool.
//
// With `--fill` LVs present in the VG (clones made through xenctld), it
// measures, alternating the two so that drift hits both alike:
//   - a raw `lvcreate -y -s -kn -ay -p rw -n NAME VG/BASE` (what an
//     administrator would type; the flags xenctld's thin clone uses);
//   - xenctld's CloneVolume over gRPC, from the call to the end of its
//     operation (WatchOperation);
// then 10 clones through xenctld at once against the same 10 one after the
// other, and 10 raw lvcreates at once for reference. Every sample is deleted
// before the next (untimed), so the VG holds the same LVs throughout.
// Targets (issue 17): xenctld clone p50 <= 0.8x raw lvcreate -s; 10
// clones at once <= 0.8x 10 raw lvcreate -s at once.
// Every clone xenctld makes is checked the moment its operation has ended:
// /dev/VG/NAME must be a block device and its first 4 KiB readable (the
// bench fails otherwise, and prints the count).
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/storage/lvm_shell.h"
#include "lib/sys/posix_process_runner.h"
#include "xenctl/v1/operation.grpc.pb.h"
#include "xenctl/v1/volume.grpc.pb.h"

namespace v1 = xenctl::v1;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Options {
  std::string connect = "unix:/run/xenctl/xenctld.sock", pool = "thin", vg = "vg0", base = "cb-base@gold";
  int fill = 200, samples = 20, concurrent = 10;
  bool keep = false, variants = false;
};

class Xenctld {
 public:
  explicit Xenctld(const std::string& target) {
    auto ch = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    volumes_ = v1::VolumeService::NewStub(ch);
    ops_ = v1::OperationService::NewStub(ch);
  }
  // Empty on success, else the error.
  std::string clone(const std::string& pool, const std::string& base, const std::string& name) {
    v1::CloneVolumeRequest r;
    r.set_pool(pool);
    r.set_source(base);
    r.set_name(name);
    return wait([&](grpc::ClientContext* c, v1::Operation* op) { return volumes_->CloneVolume(c, r, op); });
  }
  std::string remove(const std::string& pool, const std::string& name) {
    v1::DeleteVolumeRequest r;
    r.set_pool(pool);
    r.set_name(name);
    return wait([&](grpc::ClientContext* c, v1::Operation* op) { return volumes_->DeleteVolume(c, r, op); });
  }
  std::vector<std::string> names(const std::string& pool) {
    grpc::ClientContext ctx;
    v1::ListVolumesRequest r;
    r.set_pool(pool);
    v1::ListVolumesResponse resp;
    std::vector<std::string> out;
    if (!volumes_->ListVolumes(&ctx, r, &resp).ok()) return out;
    for (const auto& v : resp.volumes()) out.push_back(v.name());
    return out;
  }

 private:
  template <class Call>
  std::string wait(Call call) {
    grpc::ClientContext ctx;
    v1::Operation op;
    grpc::Status st = call(&ctx, &op);
    if (!st.ok()) return st.error_message();
    grpc::ClientContext wctx;
    v1::WatchOperationRequest w;
    w.set_id(op.id());
    auto reader = ops_->WatchOperation(&wctx, w);
    while (reader->Read(&op)) {
    }
    if (op.state() != v1::OPERATION_STATE_SUCCEEDED) return absl::StrCat("operation failed: ", op.status_message());
    return "";
  }

  std::unique_ptr<v1::VolumeService::Stub> volumes_;
  std::unique_ptr<v1::OperationService::Stub> ops_;
};

xenctl::sys::PosixProcessRunner runner;

std::string lvm(const std::vector<std::string>& argv) {
  auto r = runner.run(argv, absl::Minutes(5));
  if (!r.ok()) return std::string(r.status().message());
  if (r->exit_code != 0) return absl::StrCat(argv[0], " exited ", r->exit_code, ": ", r->output);
  return "";
}
// The base's LV: xenctld names the snapshot VOLUME@SNAP as the LV VOLUME+SNAP.
std::string baseLv(const Options& o) {
  std::string lv = o.base;
  std::replace(lv.begin(), lv.end(), '@', '+');
  return o.vg + "/" + lv;
}
std::string rawClone(const Options& o, const std::string& name) {
  return lvm({"lvcreate", "-y", "-s", "-kn", "-ay", "-p", "rw", "-n", name, baseLv(o)});
}
std::string rawRemove(const Options& o, const std::string& name) { return lvm({"lvremove", "-y", o.vg + "/" + name}); }

void check(const std::string& err, const std::string& what) {
  if (err.empty()) return;
  std::fprintf(stderr, "clone_bench: %s: %s\n", what.c_str(), err.c_str());
  std::exit(1);
}

std::atomic<int> nodes_checked{0};
// Empty when /dev/VG/NAME is a block device whose first 4 KiB read, else what is wrong.
std::string usable(const Options& o, const std::string& name) {
  const std::string path = "/dev/" + o.vg + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + " does not exist when the clone has ended";
  if (!S_ISBLK(st.st_mode)) return path + " is not a block device when the clone has ended";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return path + " cannot be opened when the clone has ended";
  char buf[4096];
  const ssize_t got = ::pread(fd, buf, sizeof(buf), 0);
  ::close(fd);
  if (got != static_cast<ssize_t>(sizeof(buf))) return path + " cannot be read when the clone has ended";
  ++nodes_checked;
  return "";
}
// A CloneVolume to the end of its operation, then usable(): the time of the first only.
std::string cloneChecked(const Options& o, Xenctld& x, const std::string& name, double* seconds = nullptr) {
  std::string err;
  const auto t0 = Clock::now();
  err = x.clone(o.pool, o.base, name);
  if (seconds) *seconds = secs(Clock::now() - t0);
  return err.empty() ? usable(o, name) : err;
}

double pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

template <class F>
double timed(F f) {
  const auto t0 = Clock::now();
  f();
  return secs(Clock::now() - t0);
}

// Runs f(0..n-1) in n threads at once; the wall time.
template <class F>
double together(int n, F f) {
  return timed([&] {
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i) ts.emplace_back([&f, i] { f(i); });
    for (auto& t : ts) t.join();
  });
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "clone_bench: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--connect") o.connect = next();
    else if (k == "--pool") o.pool = next();
    else if (k == "--vg") o.vg = next();
    else if (k == "--base") o.base = next();
    else if (k == "--fill") o.fill = std::stoi(next());
    else if (k == "--samples") o.samples = std::stoi(next());
    else if (k == "--concurrent") o.concurrent = std::stoi(next());
    else if (k == "--keep") o.keep = true;
    else if (k == "--variants") o.variants = true;
    else {
      std::fprintf(stderr,
                   "usage: clone_bench [--connect TARGET] [--pool POOL] [--vg VG] [--base VOLUME] [--fill N] "
                   "[--samples N] [--concurrent N] [--keep] [--variants]\n"
                   "The base is a volume or snapshot (VOLUME@SNAP) of the lvm-thin pool POOL on VG.\n");
      std::exit(2);
    }
  }
  return o;
}

// The LVs that stay present throughout.
void fill(const Options& o, Xenctld& x) {
  const auto have = x.names(o.pool);
  int made = 0;
  const double fill_s = timed([&] {
    for (int i = 0; i < o.fill; ++i) {
      const std::string n = absl::StrFormat("cb-fill-%03d", i);
      if (std::find(have.begin(), have.end(), n) != have.end()) continue;
      check(cloneChecked(o, x, n), "filling with " + n);
      if (++made % 50 == 0) std::fprintf(stderr, "clone_bench: %d clones made\n", made);
    }
  });
  std::printf("  fill: %d clones made in %.1f s (%zu volumes in the pool now)\n", made, fill_s,
              x.names(o.pool).size());
}

// What a report of the VG costs with this many LVs, as a tool: the fields
// xenctld reads, and names and sizes only (no device-mapper status per LV).
void measureReports(const Options& o) {
  std::vector<double> full, lean;
  for (int i = 0; i < 5; ++i) {
    full.push_back(timed([&] {
      check(lvm({"lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                 "lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,"
                 "lv_tags,lv_time",
                 o.vg}),
            "lvs");
    }));
    lean.push_back(timed([&] {
      check(lvm({"lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size,pool_lv,lv_tags",
                 o.vg}),
            "lvs");
    }));
  }
  std::printf("  lvs (as a tool) of the VG: xenctld's fields p50 %.3f s; names, sizes, tags only p50 %.3f s\n",
              pct(full, 0.5), pct(lean, 0.5));
}

struct Samples {
  double raw50, raw95, x50, x95;
};

// One raw lvcreate -s and one xenctld clone, alternating.
Samples measureOneClone(const Options& o, Xenctld& x) {
  std::vector<double> raw, ours;
  for (int i = 0; i < o.samples; ++i) {
    const std::string rn = absl::StrFormat("cb-raw-%03d", i), xn = absl::StrFormat("cb-x-%03d", i);
    std::string err;
    raw.push_back(timed([&] { err = rawClone(o, rn); }));
    check(err, "lvcreate -s " + rn);
    double t = 0;
    err = cloneChecked(o, x, xn, &t);
    ours.push_back(t);
    check(err, "xenctld clone " + xn);
    check(rawRemove(o, rn), "lvremove " + rn);
    check(x.remove(o.pool, xn), "xenctld delete " + xn);
  }
  const Samples s{pct(raw, 0.5), pct(raw, 0.95), pct(ours, 0.5), pct(ours, 0.95)};
  std::printf("  raw lvcreate -s       n=%d p50 %.3f s  p95 %.3f s\n", o.samples, s.raw50, s.raw95);
  std::printf("  xenctld CloneVolume   n=%d p50 %.3f s  p95 %.3f s\n", o.samples, s.x50, s.x95);
  return s;
}

struct Many {
  double conc, serial, raw_conc;
};

// n clones through xenctld at once and in a row, n raw lvcreates at once,
// and where a raw clone's time goes.
Many measureMany(const Options& o, Xenctld& x) {
  const int n = o.concurrent;
  std::vector<std::string> errs(n);
  // Each thread checks its clone's node as soon as its own operation ends.
  const double conc = together(n, [&](int i) { errs[i] = cloneChecked(o, x, absl::StrFormat("cb-c-%03d", i)); });
  for (int i = 0; i < n; ++i) check(errs[i], absl::StrFormat("concurrent clone cb-c-%03d", i));
  for (int i = 0; i < n; ++i) check(x.remove(o.pool, absl::StrFormat("cb-c-%03d", i)), "delete");
  const double serial = timed([&] {
    for (int i = 0; i < n; ++i) check(cloneChecked(o, x, absl::StrFormat("cb-s-%03d", i)), "serial clone");
  });
  for (int i = 0; i < n; ++i) check(x.remove(o.pool, absl::StrFormat("cb-s-%03d", i)), "delete");
  const double raw_conc = together(n, [&](int i) { errs[i] = rawClone(o, absl::StrFormat("cb-rc-%03d", i)); });
  for (int i = 0; i < n; ++i) check(errs[i], absl::StrFormat("concurrent lvcreate cb-rc-%03d", i));
  for (int i = 0; i < n; ++i) check(rawRemove(o, absl::StrFormat("cb-rc-%03d", i)), "lvremove");
  // Where a clone's time goes: the metadata change alone (no activation),
  // then activating the n new LVs at once (LVM takes the VG lock shared to
  // activate: these may overlap where the lvcreates cannot).
  std::vector<double> meta;
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrFormat("cb-m-%03d", i);
    std::string err;
    meta.push_back(timed([&] { err = lvm({"lvcreate", "-y", "-s", "-kn", "-an", "-p", "rw", "-n", name, baseLv(o)}); }));
    check(err, "lvcreate -an " + name);
  }
  const double act = together(n, [&](int i) { errs[i] = lvm({"lvchange", "-ay", absl::StrFormat("%s/cb-m-%03d", o.vg, i)}); });
  for (int i = 0; i < n; ++i) check(errs[i], absl::StrFormat("lvchange -ay cb-m-%03d", i));
  for (int i = 0; i < n; ++i) check(rawRemove(o, absl::StrFormat("cb-m-%03d", i)), "lvremove");
  std::printf("  raw lvcreate -s -an (no activation) n=%d p50 %.3f s; then %d lvchange -ay at once %.2f s\n", n,
              pct(meta, 0.5), n, act);
  std::printf("  %d xenctld clones at once   %.2f s (%.2f s each)\n", n, conc, conc / n);
  std::printf("  %d xenctld clones in a row  %.2f s\n", n, serial);
  std::printf("  %d raw lvcreate -s at once  %.2f s\n", n, raw_conc);
  return {conc, serial, raw_conc};
}

// What lvcreate -s costs with settings that may spare it work, as a tool and
// in a warm lvm shell (what xenctld uses), alternating, each LV removed
// before the next sample: measured, not guessed (issue 17).
void measureVariants(const Options& o) {
  struct Variant {
    const char* what;
    std::vector<std::string> extra;
  };
  const std::vector<Variant> variants = {
      {"as is", {}},
      {"archive=0", {"--config", "backup {archive=0}"}},
      {"archive=0 backup=0", {"--config", "backup {archive=0 backup=0}"}},
      {"monitoring=0", {"--config", "activation {monitoring=0}"}},
      {"--noudevsync", {"--noudevsync"}},
      {"-an (no activation)", {"-an"}},
  };
  xenctl::storage::LvmShells shells({.max_shells = 1});
  auto inShell = [&](const std::vector<std::string>& argv) -> std::string {
    auto r = shells.run(argv, absl::Minutes(5));
    if (!r.ok()) return std::string(r.status().message());
    if (r->exit_code != 0) return absl::StrCat(argv[0], " exited ", r->exit_code, ": ", r->output);
    return "";
  };
  check(inShell({"lvs", o.vg}), "warming the lvm shell");
  const int n = std::clamp(o.samples / 2, 3, 4);
  std::vector<std::vector<double>> tool(variants.size()), shell(variants.size());
  for (int i = 0; i < n; ++i) {
    for (size_t v = 0; v < variants.size(); ++v) {
      const std::string name = absl::StrFormat("cb-v-%zu-%03d", v, i);
      std::vector<std::string> argv = {"lvcreate", "-y", "-s", "-kn", "-ay", "-p", "rw", "-n", name};
      if (variants[v].extra.size() == 1 && variants[v].extra[0] == "-an") argv[4] = "-an";
      else argv.insert(argv.end(), variants[v].extra.begin(), variants[v].extra.end());
      argv.push_back(baseLv(o));
      std::string err;
      tool[v].push_back(timed([&] { err = lvm(argv); }));
      check(err, "lvcreate (" + std::string(variants[v].what) + ")");
      check(rawRemove(o, name), "lvremove " + name);
      shell[v].push_back(timed([&] { err = inShell(argv); }));
      check(err, "lvcreate in a shell (" + std::string(variants[v].what) + ")");
      check(inShell({"lvremove", "-y", o.vg + "/" + name}), "lvremove " + name);
    }
  }
  for (size_t v = 0; v < variants.size(); ++v)
    std::printf("  lvcreate -s %-20s n=%d  tool p50 %.3f s  warm shell p50 %.3f s\n", variants[v].what, n,
                pct(tool[v], 0.5), pct(shell[v], 0.5));
}

void printRatios(const Options& o, const Samples& s, const Many& m) {
  const int n = o.concurrent;
  const double ratio = s.x50 / s.raw50, conc_ratio = m.conc / m.raw_conc;
  std::printf("RATIO clone p50 xenctld/raw lvcreate -s = %.2fx (target <= 0.8x: %s)\n", ratio,
              ratio <= 0.8 ? "met" : "missed");
  std::printf("RATIO clone p95 xenctld/raw lvcreate -s = %.2fx\n", s.x95 / s.raw95);
  std::printf("RATIO %d clones at once xenctld/raw = %.2fx (target <= 0.8x: %s); %d in a row / one clone = %.2fx\n", n,
              conc_ratio, conc_ratio <= 0.8 ? "met" : "missed", n, m.serial / s.x50);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines as they come, also into a file
  const Options o = parseOptions(argc, argv);
  Xenctld x(o.connect);
  std::printf("bench/clone  xenctld at %s, pool %s (VG %s), base %s\n", o.connect.c_str(), o.pool.c_str(),
              o.vg.c_str(), o.base.c_str());
  fill(o, x);
  measureReports(o);
  if (o.variants) measureVariants(o);
  const Samples one = measureOneClone(o, x);
  const Many many = measureMany(o, x);
  printRatios(o, one, many);
  std::printf("NODES every one of %d xenctld clones was a readable block device at /dev/%s/NAME when its operation "
              "ended\n",
              nodes_checked.load(), o.vg.c_str());
  if (!o.keep) {
    const double gone = timed([&] {
      for (int i = 0; i < o.fill; ++i) check(x.remove(o.pool, absl::StrFormat("cb-fill-%03d", i)), "delete fill");
    });
    std::printf("  cleanup: %d clones deleted in %.1f s\n", o.fill, gone);
  }
  return 0;
}
