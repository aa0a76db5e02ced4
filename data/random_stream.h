// Counter-based random numbers shared by the data sets: splitmix64 (a 64-bit mixer, so any
// (seed, index) pair hashes to an independent-looking value), the unbiased-enough map of a 64-bit
// value to [0, n) and to [0, 1), and a small sequential stream built on them. Every number is a
// pure function of its inputs on every platform (no std:: distributions, whose output differs
// between standard libraries). It is not a cryptographic generator.
#pragma once
#include <cstdint>

namespace muonlab {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Maps a uniform 64-bit value to [0, bound) by a 128-bit multiply (bias below 2^-64 · bound).
inline uint64_t scale_to_range(uint64_t value, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(value) * bound) >> 64);
}

// Maps a uniform 64-bit value to a double in [0, 1) (53 random bits).
inline double unit_interval(uint64_t value) { return static_cast<double>(value >> 11) * 0x1.0p-53; }

// A sequential stream: the i-th draw is splitmix64 of (key + i), key derived from (seed, stream).
class RandomStream {
 public:
  RandomStream(uint64_t seed, uint64_t stream) : state_(splitmix64(splitmix64(seed) ^ stream)) {}
  uint64_t next() { return splitmix64(state_++); }
  uint64_t below(uint64_t bound) { return scale_to_range(next(), bound); }
  double uniform() { return unit_interval(next()); }

 private:
  uint64_t state_;
};

}  // namespace muonlab
