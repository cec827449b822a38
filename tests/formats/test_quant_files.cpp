// Published llama-quantize outputs against the F16 file of the same model:
// every tensor must dequantize close to its F16 original, and kiln's reference
// quantizers, run on the F16 values, must reproduce the published blocks
// (llama-quantize runs the same reference quantizers when given no imatrix).
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/quant_traits.h"
#include "test_paths.h"
#include "test_quant_util.h"

using namespace kiln;

namespace {

// Relative RMSE bounds of a published tensor against its F16 original,
// a little above the largest measured per type over these files (in comments).
double file_bound(GgmlType t) {
    switch (t) {
        case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return 0.0;
        case GgmlType::Q8_0: return 0.007;   // 0.0056
        case GgmlType::Q6_K: return 0.024;   // 0.0189
        case GgmlType::Q5_0: case GgmlType::Q5_1: return 0.055;  // 0.0446
        case GgmlType::Q5_K: return 0.045;   // 0.0374
        case GgmlType::Q4_0: case GgmlType::Q4_1: return 0.11;  // 0.0896
        case GgmlType::Q4_K: return 0.09;    // 0.0737
        case GgmlType::Q3_K: return 0.19;    // 0.153
        case GgmlType::Q2_K: return 0.36;    // 0.301
        default: return 0.0;
    }
}

struct TypeTally {
    int tensors = 0;
    uint64_t blocks = 0;
    uint64_t identical_blocks = 0;
    double worst_rmse = 0;
};

// Compares every tensor of `quant_file` with the same tensor of `f16_file`;
// returns the tally per type found in the file.
std::map<GgmlType, TypeTally> compare_with_f16(const std::string& quant_file, const std::string& f16_file) {
    const GgufFile q = GgufFile::open(test::model_path(quant_file));
    const GgufFile f = GgufFile::open(test::model_path(f16_file));
    std::map<GgmlType, TypeTally> tally;
    REQUIRE(q.tensors().size() == f.tensors().size());
    for (const GgufTensorInfo& tq : q.tensors()) {
        CAPTURE(quant_file);
        CAPTURE(tq.name);
        const GgufTensorInfo* tf = f.find_tensor(tq.name);
        REQUIRE(tf != nullptr);
        REQUIRE(tf->ne == tq.ne);
        const int64_t n = tq.n_elements();
        const QuantTraits& qt = quant_traits(tq.type);
        REQUIRE(tq.n_bytes == *tensor_bytes(tq.type, uint64_t(n)));
        const std::vector<float> ref = dequantize(tf->type, tf->data, n);
        const std::vector<float> got = dequantize(tq.type, tq.data, n);

        TypeTally& t = tally[tq.type];
        ++t.tensors;
        const double err = test::relative_rmse(got, ref);
        t.worst_rmse = std::max(t.worst_rmse, err);
        CHECK(err <= file_bound(tq.type));
        const test::Stats sg = test::stats_of(got), sr = test::stats_of(ref);
        CHECK(std::fabs(sg.mean - sr.mean) <= 0.02 * sr.std + 1e-6);
        CHECK(std::fabs(sg.std / sr.std - 1.0) <= 2 * file_bound(tq.type) + 1e-6);

        // Re-quantize kiln-side (row by row, as llama-quantize does) and compare blocks.
        const std::vector<uint8_t> mine = quantize(tq.type, ref.data(), n);
        REQUIRE(mine.size() == tq.n_bytes);
        const uint64_t n_blocks = uint64_t(n / qt.block_size);
        t.blocks += n_blocks;
        for (uint64_t b = 0; b < n_blocks; ++b)
            t.identical_blocks += std::memcmp(mine.data() + b * qt.block_bytes, tq.data + b * qt.block_bytes,
                                              qt.block_bytes) == 0;
    }
    for (const auto& [type, t] : tally)
        MESSAGE(quant_file << " " << std::string(quant_traits(type).name) << ": " << t.tensors << " tensors, worst rel RMSE "
                           << t.worst_rmse << ", re-quantized blocks identical " << t.identical_blocks << "/"
                           << t.blocks << " (" << 100.0 * double(t.identical_blocks) / double(t.blocks) << "%)");
    return tally;
}

double identical_fraction(const TypeTally& t) { return t.blocks ? double(t.identical_blocks) / double(t.blocks) : 0; }

}  // namespace

TEST_CASE("published q8_0 / q4_0 / q5_0 files match the f16 model and re-quantize to identical bytes") {
    for (const char* file : {"kiln-test-15m-q8_0.gguf", "kiln-test-15m-q4_0.gguf", "kiln-test-15m-q5_0.gguf"}) {
        const auto tally = compare_with_f16(file, "kiln-test-15m-f16.gguf");
        for (const auto& [type, t] : tally) {
            CAPTURE(file);
            const std::string type_name = quant_traits(type).name;
            CAPTURE(type_name);
            CHECK(identical_fraction(t) == 1.0);
        }
        CHECK(tally.size() >= 2);  // the quantized type plus F32 norms
    }
}

TEST_CASE("published k-quant files match the f16 model and re-quantize to identical bytes") {
    const std::map<std::string, std::vector<GgmlType>> expected_types = {
        {"kiln-test-gqa-q2_k.gguf", {GgmlType::Q2_K}},
        {"kiln-test-gqa-q3_k_m.gguf", {GgmlType::Q3_K}},
        {"kiln-test-gqa-q4_k_m.gguf", {GgmlType::Q4_K, GgmlType::Q6_K}},
        {"kiln-test-gqa-q5_k_m.gguf", {GgmlType::Q5_K, GgmlType::Q6_K}},
        {"kiln-test-gqa-q6_k.gguf", {GgmlType::Q6_K}},
    };
    for (const auto& [file, types] : expected_types) {
        const auto tally = compare_with_f16(file, "kiln-test-gqa-f16.gguf");
        for (GgmlType t : types) CHECK_MESSAGE(tally.count(t) == 1, file << " has no " << std::string(quant_traits(t).name));
        for (const auto& [type, t] : tally) {
            CAPTURE(file);
            const std::string type_name = quant_traits(type).name;
            CAPTURE(type_name);
            // Measured: every block identical, K-quant searches included.
            CHECK(identical_fraction(t) == 1.0);
        }
    }
}
