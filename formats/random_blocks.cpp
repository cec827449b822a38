// Random blocks: each type's entry writes random quants and picks its fp16 scale(s)
// from a small table around the d that gives the requested standard deviation.
// The "rms of the quant" constants below are sqrt(E[q'^2]) for the uniformly
// random integer q' that multiplies d in that type's decode formula.
#include "formats/random_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "formats/quant_traits.h"

namespace kiln {

Xoshiro256::Xoshiro256(uint64_t seed) {
    for (uint64_t& s : s_) {  // splitmix64
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s = z ^ (z >> 31);
    }
}

namespace {

// 64 block scales spread evenly over [0.75, 1.25] x d, and the matching
// dmin = min_ratio x d of the K-quants (taken from the rounded d, so that
// d*sc*q - dmin*sc centres q on min_ratio).
struct ScaleTable {
    fp16_t d[64];
    fp16_t dmin[64];
};

ScaleTable scale_table(float d, float min_ratio) {
    if (!(d > 0.0f) || !(1.25f * d * std::max(1.0f, min_ratio) < 60000.0f))
        throw std::invalid_argument("fill_random: block scale " + std::to_string(d) +
                                    " is not a finite positive fp16 value; pick a smaller sigma");
    ScaleTable t;
    for (int i = 0; i < 64; ++i) {
        t.d[i] = fp32_to_fp16(d * (0.75f + 0.5f * (float(i) + 0.5f) / 64.0f));
        t.dmin[i] = fp32_to_fp16(min_ratio * fp16_to_fp32(t.d[i]));
    }
    return t;
}

// A scale from the table with a random sign: llama.cpp's Q4_0, Q8_0 and Q6_K
// quantizers store negative d too, and the sign cancels the -0.5 mean of the
// quants that are centred on a half-integer (q - 8 in -8..7).
fp16_t signed_scale(const ScaleTable& t, uint64_t r) { return fp16_t(t.d[r & 63] | ((r >> 6 & 1) << 15)); }

void put_random_bytes(Xoshiro256& rng, uint8_t* dst, size_t n) {  // n a multiple of 8
    for (size_t i = 0; i < n; i += 8) {
        const uint64_t r = rng.next();
        std::memcpy(dst + i, &r, 8);
    }
}

// x = d * (q - 8), q uniform in 0..15: rms of q - 8 is sqrt(21.5); d of either sign.
void fill_q4_0(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks) {
    const ScaleTable t = scale_table(sigma / std::sqrt(21.5f), 0.0f);
    auto* b = reinterpret_cast<block_q4_0*>(dst);
    for (int64_t i = 0; i < n_blocks; ++i) {
        b[i].d = signed_scale(t, rng.next());
        put_random_bytes(rng, b[i].qs, sizeof b[i].qs);
    }
}

// x = d * q, q uniform in -128..127: rms sqrt(5461.5); d of either sign.
void fill_q8_0(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks) {
    const ScaleTable t = scale_table(sigma / std::sqrt(5461.5f), 0.0f);
    auto* b = reinterpret_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n_blocks; ++i) {
        b[i].d = signed_scale(t, rng.next());
        put_random_bytes(rng, reinterpret_cast<uint8_t*>(b[i].qs), sizeof b[i].qs);
    }
}

// The 12 scale bytes of a Q4_K/Q5_K block with sub-block scale = min = sc[j]
// (6 bits each), packed as get_scale_min_k4 unpacks them.
void pack_scales_k4(const uint8_t sc[8], uint8_t q[K_SCALE_SIZE]) {
    for (int j = 0; j < 4; ++j) {
        q[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((sc[j + 4] & 0xF) << 4));
    }
}

// Sub-block scales uniform in 32..63: rms sqrt(2341.5).
constexpr float kRmsScaleK4 = 48.389f;

// Eight sub-block scales in 32..63 from one random word.
void random_scales_k4(Xoshiro256& rng, uint8_t sc[8]) {
    uint64_t r = rng.next();
    for (int j = 0; j < 8; ++j, r >>= 5) sc[j] = uint8_t(32 + (r & 31));
}

// x = d*sc*q - dmin*sc with dmin = 7.5 d: d * sc * (q - 7.5), q uniform in 0..15
// (rms of q - 7.5 is sqrt(21.25)).
void fill_q4_K(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks) {
    const ScaleTable t = scale_table(sigma / (kRmsScaleK4 * std::sqrt(21.25f)), 7.5f);
    auto* b = reinterpret_cast<block_q4_K*>(dst);
    for (int64_t i = 0; i < n_blocks; ++i) {
        const uint64_t k = rng.next() & 63;
        b[i].d = t.d[k];
        b[i].dmin = t.dmin[k];
        uint8_t sc[8];
        random_scales_k4(rng, sc);
        pack_scales_k4(sc, b[i].scales);
        put_random_bytes(rng, b[i].qs, sizeof b[i].qs);
    }
}

// As Q4_K with a fifth bit: d * sc * (q - 15.5), q uniform in 0..31 (rms sqrt(85.25)).
void fill_q5_K(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks) {
    const ScaleTable t = scale_table(sigma / (kRmsScaleK4 * std::sqrt(85.25f)), 15.5f);
    auto* b = reinterpret_cast<block_q5_K*>(dst);
    for (int64_t i = 0; i < n_blocks; ++i) {
        const uint64_t k = rng.next() & 63;
        b[i].d = t.d[k];
        b[i].dmin = t.dmin[k];
        uint8_t sc[8];
        random_scales_k4(rng, sc);
        pack_scales_k4(sc, b[i].scales);
        put_random_bytes(rng, b[i].qh, sizeof b[i].qh);
        put_random_bytes(rng, b[i].qs, sizeof b[i].qs);
    }
}

// x = d * sc * (q - 32), q uniform in 0..63 (rms of q - 32 is sqrt(341.5)),
// int8 sub-block scales uniform in 64..127 (rms sqrt(9461.5)); d of either sign.
void fill_q6_K(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks) {
    const ScaleTable t = scale_table(sigma / (std::sqrt(9461.5f) * std::sqrt(341.5f)), 0.0f);
    auto* b = reinterpret_cast<block_q6_K*>(dst);
    for (int64_t i = 0; i < n_blocks; ++i) {
        uint64_t r = rng.next();
        b[i].d = signed_scale(t, r);
        r >>= 7;
        for (int j = 0; j < QK_K / 16; ++j) {
            if (j == 9) r = rng.next();  // 9 x 6 bits fit in the 57 left of the first word
            b[i].scales[j] = int8_t(64 + (r & 63));
            r >>= 6;
        }
        put_random_bytes(rng, b[i].ql, sizeof b[i].ql);
        put_random_bytes(rng, b[i].qh, sizeof b[i].qh);
    }
}

// Uniform in [-a, a] with a = sqrt(3) sigma.
void fill_f16(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n) {
    const float a = std::sqrt(3.0f) * sigma;
    if (!(a > 0.0f && a < 60000.0f))
        throw std::invalid_argument("fill_random: sigma " + std::to_string(sigma) + " does not fit in f16");
    auto* h = reinterpret_cast<fp16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(a * (2.0f * rng.uniform() - 1.0f));
}

struct RandomFill {
    GgmlType type;
    void (*fill)(float sigma, Xoshiro256& rng, uint8_t* dst, int64_t n_blocks);
};

constexpr RandomFill kFills[] = {
    {GgmlType::F16, fill_f16},   {GgmlType::Q4_0, fill_q4_0}, {GgmlType::Q8_0, fill_q8_0},
    {GgmlType::Q4_K, fill_q4_K}, {GgmlType::Q5_K, fill_q5_K}, {GgmlType::Q6_K, fill_q6_K},
};

const RandomFill* find_fill(GgmlType type) {
    for (const auto& f : kFills)
        if (f.type == type) return &f;
    return nullptr;
}

}  // namespace

bool can_fill_random(GgmlType type) { return find_fill(type) != nullptr; }

void fill_random(GgmlType type, float sigma, Xoshiro256& rng, void* dst, int64_t n_elements) {
    const RandomFill* f = find_fill(type);
    const QuantTraits* traits = find_quant_traits(uint32_t(type));
    const std::string name = traits ? traits->name : std::to_string(uint32_t(type));
    if (!f) throw std::invalid_argument("fill_random: no random fill for type " + name);
    if (n_elements < 0 || n_elements % traits->block_size != 0)
        throw std::invalid_argument("fill_random: " + std::to_string(n_elements) + " elements is not a multiple of " +
                                    name + "'s block size " + std::to_string(traits->block_size));
    f->fill(sigma, rng, static_cast<uint8_t*>(dst), n_elements / traits->block_size);
}

}  // namespace kiln
