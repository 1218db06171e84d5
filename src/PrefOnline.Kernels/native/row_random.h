// The decoder's random numbers: one xoshiro256** stream per row (Blackman & Vigna, "Scrambled linear
// pseudorandom number generators", 2018), seeded from the row's 64-bit seed through SplitMix64 as its
// authors recommend. It is the same generator, bit for bit, as the product's managed one
// (src/PrefOnline.Learning/Randomness/Xoshiro256StarStar.cs), so a row decoded here and the same row
// decoded by a managed sampler from the same seed draw the same uniforms.
//
// How a row draws (documented so its samples can be reproduced anywhere): state = four successive
// SplitMix64 outputs starting from the seed; each sampled token takes the next 64-bit output x and
// uses u = (x >> 11) · 2^-53 in [0, 1); greedy tokens draw nothing. A row's draws depend on its seed
// only, never on the other rows of a batch or on the thread count.
#pragma once

#include <cstdint>

namespace pk {

class RowRandom {
   public:
    explicit RowRandom(uint64_t seed) {
        uint64_t x = seed;
        for (uint64_t& word : s_) word = split_mix64(x);
    }

    uint64_t next64() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform on [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next64() >> 11) * 0x1.0p-53; }

   private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    static uint64_t split_mix64(uint64_t& x) {
        uint64_t z = x += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    uint64_t s_[4];
};

}  // namespace pk
