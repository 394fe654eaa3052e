// quic_harness: the native benchmark ceiling and the seeded random stress test.
//   quic_harness bench <bulk|echo|handshakes|idle> [--bytes N] [--direction up|down] [--streams N]
//                      [--concurrency N] [--size N] [--connections N] [--workers N] [--timeout-ms N]
//   quic_harness stress [--seed N] [--seeds N] [--seconds N] [--workers N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "bench.h"
#include "stress.h"

namespace {
int Usage() {
  std::fprintf(stderr,
               "usage: quic_harness bench <bulk|echo|handshakes|idle> [--bytes N] [--direction up|down]\n"
               "                          [--streams N] [--concurrency N] [--size N] [--connections N]\n"
               "                          [--workers N] [--timeout-ms N]\n"
               "       quic_harness stress [--seed N] [--seeds N] [--seconds N] [--workers N]\n");
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string mode = argv[1];
  nmq::harness::BenchOptions bench;
  nmq::harness::StressOptions stress;
  int i = 2;
  if (mode == "bench") {
    if (argc < 3) return Usage();
    bench.workload = argv[i++];
  } else if (mode != "stress") {
    return Usage();
  }
  for (; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    const unsigned long long n = std::strtoull(value, nullptr, 10);
    if (name == "--bytes") bench.bytes = n;
    else if (name == "--direction") bench.direction = value;
    else if (name == "--streams") bench.streams = static_cast<uint32_t>(n);
    else if (name == "--concurrency") bench.concurrency = static_cast<uint32_t>(n);
    else if (name == "--size") bench.size = static_cast<uint32_t>(n);
    else if (name == "--connections") bench.connections = static_cast<uint32_t>(n);
    else if (name == "--timeout-ms") bench.timeout_ms = static_cast<uint32_t>(n);
    else if (name == "--workers") bench.workers = stress.workers = static_cast<uint32_t>(n);
    else if (name == "--seed") stress.seed = n;
    else if (name == "--seeds") stress.seeds = n;
    else if (name == "--seconds") stress.seconds = static_cast<double>(n);
    else return Usage();
  }
  if (i != argc) return Usage();
  try {
    if (mode == "bench") {
      nmq::harness::RunBench(bench);
      return 0;
    }
    return nmq::harness::RunStress(stress) ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "quic_harness: %s\n", error.what());
    return 1;
  }
}
