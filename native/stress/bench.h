// The benchmark mode of the native harness.
#pragma once
#include <cstdint>
#include <string>

namespace nmq::harness {

struct BenchOptions {
  std::string workload;         // bulk | echo | handshakes | idle
  uint64_t bytes = 1ull << 30;  // bulk
  std::string direction = "up"; // bulk: up (client to server) | down
  uint32_t streams = 10000;     // echo
  uint32_t concurrency = 1;     // echo, handshakes
  uint32_t size = 64;           // echo request and response size
  uint32_t connections = 1000;  // handshakes, idle
  uint32_t workers = 0;         // MsQuic workers (0: one per available CPU)
  uint32_t timeout_ms = 120000; // echo: report a hang after this long
};

void RunBench(const BenchOptions& options);

}  // namespace nmq::harness
