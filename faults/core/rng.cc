#include "faults/core/rng.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace faultline::faults {
namespace {

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t StableHash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

Rng Rng::Fork(std::string_view purpose) const { return Rng(Mix(state_ ^ StableHash(purpose))); }

uint64_t Rng::Next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return Mix(state_);
}

uint64_t Rng::Below(uint64_t bound) {
  // Lemire's nearly-divisionless method: unbiased and the same on every platform.
  unsigned __int128 m = static_cast<unsigned __int128>(Next()) * bound;
  auto low = static_cast<uint64_t>(m);
  if (low < bound) {
    uint64_t threshold = -bound % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(Next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

bool Rng::Percent(double percent) {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return Uniform() * 100.0 < percent;
}

double Rng::Normal() {
  double u1 = Uniform();
  double u2 = Uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::vector<size_t> Rng::Sample(size_t n, size_t k) {
  k = std::min(k, n);
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  // Partial Fisher–Yates.
  for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + Below(n - i)]);
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace faultline::faults
