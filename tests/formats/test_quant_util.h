#pragma once
// Helpers shared by the quant tests: seeded data and error statistics.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace kiln::test {

inline std::vector<float> normal_data(size_t n, uint32_t seed, float stddev = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

struct Stats {
    double mean = 0, std = 0, rms = 0;
};

inline Stats stats_of(const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) {
        s += x;
        s2 += double(x) * x;
    }
    Stats st;
    const double n = double(v.size());
    st.mean = s / n;
    st.rms = std::sqrt(s2 / n);
    st.std = std::sqrt(std::max(0.0, s2 / n - st.mean * st.mean));
    return st;
}

// RMS of (a - b) divided by the RMS of the reference b.
inline double relative_rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = double(a[i]) - b[i];
        e2 += d * d;
        r2 += double(b[i]) * b[i];
    }
    return r2 > 0 ? std::sqrt(e2 / r2) : std::sqrt(e2);
}

}  // namespace kiln::test
