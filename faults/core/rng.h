#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace faultline::faults {

// Deterministic randomness from an experiment seed. The algorithms are fixed here (splitmix64
// streams, Lemire bounded ints) rather than taken from <random> distributions, whose output
// differs between standard libraries: a run must replay identically on every build.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  // An independent stream for one purpose ("targets", "io.percent", ...), so adding a random
  // choice in one place does not shift the choices made in another.
  Rng Fork(std::string_view purpose) const;

  uint64_t Next();
  // Uniform in [0, bound). bound must be > 0.
  uint64_t Below(uint64_t bound);
  // Uniform in [0, 1).
  double Uniform();
  // True with probability percent/100.
  bool Percent(double percent);
  // Standard normal (Box–Muller).
  double Normal();
  // k distinct indexes of [0, n), in increasing order.
  std::vector<size_t> Sample(size_t n, size_t k);

  uint64_t seed_state() const { return state_; }

 private:
  uint64_t state_;
};

// A stable 64-bit hash (FNV-1a then a splitmix finaliser) for deriving seeds from names.
uint64_t StableHash(std::string_view s);

}  // namespace faultline::faults
