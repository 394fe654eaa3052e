// The stress mode of the native harness: seeded random API sequences with invariant checks.
#pragma once
#include <cstdint>

namespace nmq::harness {

struct StressOptions {
  uint64_t seed = 1;     // first seed; each run is replayable with --seed N --seeds 1
  uint64_t seeds = 20;   // how many seeds to run
  double seconds = 0;    // stop starting new seeds after this long (0: no limit)
  uint32_t workers = 0;
};

// True when every seed kept every invariant.
bool RunStress(const StressOptions& options);

}  // namespace nmq::harness
