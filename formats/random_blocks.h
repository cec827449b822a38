#pragma once
// Random but valid tensor data, for benchmark models that nobody has to download:
// quant blocks written directly (random quants, fp16 scales chosen so the decoded
// values are finite, roughly zero-mean and of a given standard deviation).
// Seeded, so the same seed gives the same bytes.
#include <cstdint>

#include "formats/ggml_type.h"

namespace kiln {

// xoshiro256** (Blackman and Vigna), its state seeded through splitmix64 as its
// authors recommend. Fast enough to fill gigabytes in seconds; not for cryptography.
class Xoshiro256 {
public:
    explicit Xoshiro256(uint64_t seed);
    uint64_t next() {
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
    // Uniform in [0, 1), from the top 24 bits.
    float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

// Whether fill_random can write `type` (F16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K).
bool can_fill_random(GgmlType type);

// Writes n_elements random values of `type` into dst (n_elements / block size
// blocks). Decoded, they have mean ~0 and standard deviation ~sigma (within a
// few percent; the block scales vary by +-25% around their mean, as real ones do).
// n_elements must be a multiple of the block size and the type one that
// can_fill_random accepts; otherwise throws std::invalid_argument.
void fill_random(GgmlType type, float sigma, Xoshiro256& rng, void* dst, int64_t n_elements);

}  // namespace kiln
