#pragma once
// Shared by the GPU backends' suites (CUDA, Vulkan): random data, weights made
// by quantizing it, device activations and comparisons, all through the
// Backend interface.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "formats/quant_traits.h"
#include "kernels/backend.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/kv_view.h"

namespace kiln::test {

inline const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                        GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                                        GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// A (n_out, n_in) weight of `type` made by quantizing random floats.
struct HostWeight {
    std::vector<uint8_t> bytes;
    TensorView view;
};
inline HostWeight make_weight(GgmlType type, int64_t n_in, int64_t n_out, uint32_t seed) {
    const auto f = random_floats(size_t(n_in * n_out), seed);
    HostWeight w;
    w.bytes = quantize(type, f.data(), n_in * n_out);
    w.view.data = w.bytes.data();
    w.view.type = type;
    w.view.ne[0] = n_in;
    w.view.ne[1] = n_out;
    w.view.nb[0] = quant_traits(type).block_bytes;
    w.view.nb[1] = w.bytes.size() / size_t(n_out);
    w.view.nb[2] = w.view.nb[3] = w.bytes.size();
    return w;
}

// An F32 vector (a norm's gains) as a weight; its host view points into v, so
// keep v while the weight is in use.
inline Weight upload_vector(Backend& b, const std::vector<float>& v) {
    TensorView t;
    t.data = v.data();
    t.ne[0] = int64_t(v.size());
    t.nb[0] = 4;
    t.nb[1] = t.nb[2] = t.nb[3] = v.size() * 4;
    return b.upload_weight(t);
}

// Host Act over a dense vector.
inline Act host_act(std::vector<float>& v, int64_t rows, int64_t cols) { return Act{v.data(), rows, cols, cols}; }

// A device activation, filled from dense host rows when given.
inline ActBuffer device_act(Backend& b, int64_t rows, int64_t cols, const std::vector<float>* init = nullptr) {
    ActBuffer d = b.alloc_act(rows, cols);
    if (init) b.write_act(d.act(), init->data());
    return d;
}
inline std::vector<float> read(Backend& b, const Act& a) {
    std::vector<float> v(size_t(a.n_rows * a.n_cols));
    b.read_act(a, v.data());
    return v;
}

// A KV cache in host memory with its bookkeeping, as engine/kv_cache lays it out.
struct HostKv {
    GgmlType type;
    int64_t n_cells, n_kv_dim;
    std::vector<uint8_t> k, v;
    std::vector<KvLayerView> layers;
    std::vector<int32_t> cell_pos;
    std::vector<uint64_t> cell_seqs;
    HostKv(GgmlType t, int64_t cells, int64_t dim, int n_layer)
        : type(t), n_cells(cells), n_kv_dim(dim), cell_pos(size_t(cells), -1), cell_seqs(size_t(cells), 0) {
        const size_t per = size_t(cells * dim) * (t == GgmlType::F16 ? 2 : 4);
        k.assign(per * size_t(n_layer), 0);
        v.assign(per * size_t(n_layer), 0);
        for (int l = 0; l < n_layer; ++l) layers.push_back({k.data() + per * size_t(l), v.data() + per * size_t(l)});
    }
    KvView view(int64_t n_scan) const {
        return KvView{type, n_cells, n_kv_dim, layers, cell_pos.data(), cell_seqs.data(), n_scan};
    }
    // The attention tests' two sequences (n_cells >= 240): sequence 0 holds positions
    // 0..199 in cells 0..199 but cell 50 is empty; sequence 1 (bit 1) shares cells
    // 0..99 and holds 100..139 in cells 200..239; the cells from 240 stay empty.
    void hold_two_sequences() {
        for (int64_t c = 0; c < 240; ++c) {
            cell_pos[size_t(c)] = int32_t(c < 200 ? c : c - 100);
            cell_seqs[size_t(c)] = c < 100 ? 3u : (c < 200 ? 1u : 2u);
        }
        cell_pos[50] = -1;
        cell_seqs[50] = 0;
    }
};

// Random keys (seed) and values (seed + 1) in every cell of `layer`, stored by
// the reference into the host cache and by the backend into its device copy.
inline void store_random_kv(Backend& b, const KvView& view, int layer, uint32_t seed) {
    const int64_t n = view.n_cells, dim = view.n_kv_dim;
    auto keys = random_floats(size_t(n * dim), seed), vals = random_floats(size_t(n * dim), seed + 1);
    std::vector<int32_t> all(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) all[size_t(c)] = int32_t(c);
    ref::kv_store(view, layer, host_act(keys, n, dim), host_act(vals, n, dim), all);
    ActBuffer dk = device_act(b, n, dim, &keys), dv = device_act(b, n, dim, &vals);
    b.kv_store(view, layer, dk.act(), dv.act(), all);
}

// Every element within atol + rtol * |expected| (NaN never passes); reports the first miss.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol,
                        const std::string& what) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const float tol = atol + rtol * std::fabs(want[i]);
        if (!(std::fabs(got[i] - want[i]) <= tol)) {
            FAIL_CHECK(what << ": element " << i << " is " << got[i] << ", expected " << want[i]);
            return;
        }
    }
}

}  // namespace kiln::test
