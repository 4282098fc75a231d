// lvm2cmd_latency VG THIN_ORIGIN [N]: the latency per call of liblvm2cmd's
// lvm2_run() in one process (one lvm2_init handle, kept warm), for the same
// commands xenctld runs through the lvm2 tools: `lvs --reportformat json` of
// the VG, and N thin snapshots (`lvcreate -s -kn`) of THIN_ORIGIN, removed
// afterwards. Prints n/mean/p50/p95/min/max per command. A measurement for the
// lab (tests/lab/scenarios/storage.sh), not a test: it asserts nothing.
#include <lvm2cmd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

size_t g_report_bytes = 0;

// lvm2_run prints the report through the log function, line by line.
void onLog(int level, const char*, int, int, const char* message) {
  if (level == LVM2_LOG_PRINT && message) g_report_bytes += std::char_traits<char>::length(message) + 1;
  else if (level <= LVM2_LOG_ERROR && message) std::fprintf(stderr, "lvm: %s\n", message);
}

void printStats(const char* name, std::vector<double> s) {
  if (s.empty()) return;
  std::sort(s.begin(), s.end());
  double sum = 0;
  for (double v : s) sum += v;
  const size_t n = s.size();
  const size_t i50 = (n + 1) / 2 - 1;
  size_t i95 = static_cast<size_t>(static_cast<double>(n) * 0.95 + 0.999);
  i95 = std::min(n, std::max<size_t>(i95, 1)) - 1;
  std::printf("%s: n=%zu mean=%.3fs p50=%.3fs p95=%.3fs min=%.3fs max=%.3fs\n", name, n, sum / n, s[i50], s[i95], s[0],
              s[n - 1]);
}

bool run(void* h, const std::string& cmd, std::vector<double>* out) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = lvm2_run(h, cmd.c_str());
  const std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
  if (out) out->push_back(d.count());
  if (rc != LVM2_COMMAND_SUCCEEDED) {
    std::fprintf(stderr, "lvm2_run(\"%s\") returned %d\n", cmd.c_str(), rc);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VG THIN_ORIGIN [N]\n", argv[0]);
    return 2;
  }
  const std::string vg = argv[1], origin = argv[2];
  const int n = argc > 3 ? std::atoi(argv[3]) : 5;
  lvm2_log_fn(onLog);
  const auto t0 = std::chrono::steady_clock::now();
  void* h = lvm2_init();
  const std::chrono::duration<double> init = std::chrono::steady_clock::now() - t0;
  if (!h) {
    std::fprintf(stderr, "lvm2_init failed\n");
    return 1;
  }
  std::printf("lvm2_init: %.3fs\n", init.count());
  std::vector<double> lvs, create, remove;
  const std::string report =
      "lvs --reportformat json --units b --nosuffix -o "
      "lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,lv_tags,lv_time " +
      vg;
  bool ok = true;
  for (int i = 0; i < 2 * n && ok; ++i) ok = run(h, report, &lvs);
  for (int i = 0; i < n && ok; ++i)
    ok = run(h, "lvcreate -y -s -kn -n lib-snap" + std::to_string(i) + " " + vg + "/" + origin, &create);
  for (int i = 0; i < n; ++i) run(h, "lvremove -y " + vg + "/lib-snap" + std::to_string(i), ok ? &remove : nullptr);
  lvm2_exit(h);
  printStats("lvm2_run lvs --reportformat json", lvs);
  printStats("lvm2_run lvcreate -s (thin)", create);
  printStats("lvm2_run lvremove (thin snapshot)", remove);
  std::printf("report bytes through the log callback: %zu\n", g_report_bytes);
  return ok ? 0 : 1;
}
