#include "kernels/cpu/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "formats/fp16.h"
#include "formats/quant_traits.h"

namespace kiln::ref {

void dequantize_row(const TensorView& w, int64_t r, float* dst) {
    quant_traits(w.type).dequantize(w.row(r), dst, w.ne[0]);
}

void get_rows(const TensorView& table, std::span<const int32_t> ids, Act out) {
    for (size_t t = 0; t < ids.size(); ++t) dequantize_row(table, ids[t], out.row(int64_t(t)));
}

void matmul(const TensorView& w, const Act& x, Act y) {
    const int64_t n_in = w.ne[0];
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t o = 0; o < w.n_rows(); ++o) {
        dequantize_row(w, o, row.data());
        for (int64_t t = 0; t < x.n_rows; ++t) {
            const float* xt = x.row(t);
            float s = 0.0f;
            for (int64_t i = 0; i < n_in; ++i) s += xt[i] * row[size_t(i)];
            y.row(t)[o] = s;
        }
    }
}

void rms_norm(const Act& x, const float* weight, float eps, Act out) {
    for (int64_t t = 0; t < x.n_rows; ++t) {
        const float* xt = x.row(t);
        float ss = 0.0f;
        for (int64_t i = 0; i < x.n_cols; ++i) ss += xt[i] * xt[i];
        const float scale = 1.0f / std::sqrt(ss / float(x.n_cols) + eps);
        float* ot = out.row(t);
        for (int64_t i = 0; i < x.n_cols; ++i) ot[i] = xt[i] * scale * weight[i];
    }
}

// YaRN's correction range: the pair indices between which the ramp moves from
// interpolation to extrapolation (ggml_rope_yarn_corr_dims in the paper's terms).
RopeCorrDims rope_yarn_corr_dims(const RopeParams& p) {
    if (p.ext_factor == 0.0f || p.n_ctx_orig <= 0) return {};
    auto corr_dim = [&](float n_rotations) {
        return float(p.n_rot) * std::log(float(p.n_ctx_orig) / (n_rotations * 2.0f * float(M_PI))) /
               (2.0f * std::log(p.freq_base));
    };
    const float lo = std::floor(corr_dim(p.beta_fast));
    const float hi = std::ceil(corr_dim(p.beta_slow));
    return {std::max(0.0f, lo), std::min(float(p.n_rot - 1), hi)};
}

void rope_cos_sin(const RopeParams& p, const RopeCorrDims& corr, int32_t pos, float* cos_out, float* sin_out) {
    // theta_i = pos * base^(-2i/n_rot), built by repeated multiplication as ggml
    // does, so angles match llama.cpp to the last bit where it matters.
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    float theta_base = float(pos);
    for (int i0 = 0; i0 < p.n_rot; i0 += 2) {
        const float ff = p.freq_factors ? p.freq_factors[i0 / 2] : 1.0f;
        const float theta_extrap = theta_base / ff;
        float theta = p.freq_scale * theta_extrap;
        float mscale = p.attn_factor;
        if (p.ext_factor != 0.0f) {
            const float y = (float(i0 / 2) - corr.lo) / std::max(0.001f, corr.hi - corr.lo);
            const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
            theta = theta * (1.0f - ramp) + theta_extrap * ramp;
            mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
        }
        cos_out[i0 / 2] = std::cos(theta) * mscale;
        sin_out[i0 / 2] = std::sin(theta) * mscale;
        theta_base *= theta_scale;
    }
}

void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) {
    const RopeCorrDims corr = rope_yarn_corr_dims(p);
    std::vector<float> cs(size_t(p.n_rot / 2)), sn(size_t(p.n_rot / 2));
    for (int64_t t = 0; t < x.n_rows; ++t) {
        rope_cos_sin(p, corr, pos[size_t(t)], cs.data(), sn.data());
        for (int h = 0; h < n_head; ++h) {
            float* v = x.row(t) + int64_t(h) * head_dim;
            for (int i = 0; i < p.n_rot / 2; ++i) {
                const int a = p.mode == RopeParams::Mode::Normal ? 2 * i : i;
                const int b = p.mode == RopeParams::Mode::Normal ? 2 * i + 1 : i + p.n_rot / 2;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * cs[size_t(i)] - x1 * sn[size_t(i)];
                v[b] = x0 * sn[size_t(i)] + x1 * cs[size_t(i)];
            }
        }
    }
}

namespace {
void store_row(GgmlType type, void* base, int64_t cell, int64_t n, const float* src) {
    if (type == GgmlType::F16) {
        auto* dst = static_cast<fp16_t*>(base) + cell * n;
        for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
    } else {
        auto* dst = static_cast<float*>(base) + cell * n;
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
}
float load_elem(GgmlType type, const void* base, int64_t idx) {
    if (type == GgmlType::F16) return fp16_to_fp32(static_cast<const fp16_t*>(base)[idx]);
    return static_cast<const float*>(base)[idx];
}
}  // namespace

void kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) {
    const KvLayerView& l = kv.layers[size_t(layer)];
    for (int64_t t = 0; t < k.n_rows; ++t) {
        store_row(kv.type, l.k, cells[size_t(t)], kv.n_kv_dim, k.row(t));
        store_row(kv.type, l.v, cells[size_t(t)], kv.n_kv_dim, v.row(t));
    }
}

void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
               std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) {
    const KvLayerView& l = kv.layers[size_t(layer)];
    const int group = p.n_head / p.n_head_kv;
    std::vector<float> score(size_t(kv.n_scan));
    for (int64_t t = 0; t < q.n_rows; ++t) {
        for (int h = 0; h < p.n_head; ++h) {
            const float* qh = q.row(t) + int64_t(h) * p.head_dim;
            const int64_t kv_off = int64_t(h / group) * p.head_dim;
            float max_s = -INFINITY;
            for (int64_t c = 0; c < kv.n_scan; ++c) {
                if (!kv_cell_visible(kv, c, pos[size_t(t)], seq[size_t(t)])) {
                    score[size_t(c)] = -INFINITY;
                    continue;
                }
                float s = 0.0f;
                for (int d = 0; d < p.head_dim; ++d)
                    s += qh[d] * load_elem(kv.type, l.k, c * kv.n_kv_dim + kv_off + d);
                score[size_t(c)] = s * p.scale;
                max_s = std::max(max_s, score[size_t(c)]);
            }
            float* oh = out.row(t) + int64_t(h) * p.head_dim;
            for (int d = 0; d < p.head_dim; ++d) oh[d] = 0.0f;
            if (max_s == -INFINITY) continue;  // nothing visible: a zero output, never NaN
            float sum = 0.0f;
            for (int64_t c = 0; c < kv.n_scan; ++c) {
                if (score[size_t(c)] == -INFINITY) continue;
                const float e = std::exp(score[size_t(c)] - max_s);
                sum += e;
                for (int d = 0; d < p.head_dim; ++d)
                    oh[d] += e * load_elem(kv.type, l.v, c * kv.n_kv_dim + kv_off + d);
            }
            for (int d = 0; d < p.head_dim; ++d) oh[d] /= sum;
        }
    }
}

void swiglu(const Act& gate, const Act& up, Act out) {
    for (int64_t t = 0; t < gate.n_rows; ++t)
        for (int64_t i = 0; i < gate.n_cols; ++i) {
            const float g = gate.row(t)[i];
            out.row(t)[i] = g / (1.0f + std::exp(-g)) * up.row(t)[i];
        }
}

void add(const Act& a, const Act& b, Act out) {
    for (int64_t t = 0; t < a.n_rows; ++t)
        for (int64_t i = 0; i < a.n_cols; ++i) out.row(t)[i] = a.row(t)[i] + b.row(t)[i];
}

void softmax(Act x) {
    for (int64_t t = 0; t < x.n_rows; ++t) {
        float* r = x.row(t);
        float m = -INFINITY;
        for (int64_t i = 0; i < x.n_cols; ++i) m = std::max(m, r[i]);
        float sum = 0.0f;
        for (int64_t i = 0; i < x.n_cols; ++i) {
            r[i] = std::exp(r[i] - m);
            sum += r[i];
        }
        for (int64_t i = 0; i < x.n_cols; ++i) r[i] /= sum;
    }
}

void copy_rows(const Act& src, std::span<const int32_t> rows, Act out) {
    for (size_t i = 0; i < rows.size(); ++i)
        for (int64_t j = 0; j < src.n_cols; ++j) out.row(int64_t(i))[j] = src.row(rows[i])[j];
}

}  // namespace kiln::ref
