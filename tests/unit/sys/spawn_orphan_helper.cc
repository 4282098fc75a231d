// For spawn_test: starts `sleep 600` through sys::spawn from a thread that
// then exits, prints the sleeper's pid on stdout, and waits to be killed.
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "lib/sys/spawn.h"

int main() {
  xenctl::sys::Child sleeper;
  std::thread([&] {
    auto c = xenctl::sys::spawn({.argv = {"sleep", "600"}});
    if (c.ok()) sleeper = *std::move(c);
  }).join();
  if (sleeper.pid() < 0) return 1;
  std::printf("%d\n", static_cast<int>(sleeper.pid()));
  std::fflush(stdout);
  for (;;) ::pause();
}
