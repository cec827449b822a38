// Parity with llama.cpp on the real models in ../shared (tests/llama_parity.h),
// on the CPU backend.
#include "llama_parity.h"

using kiln::test::check_llama_parity;
using kiln::test::kQuantLogitTolerance;

namespace {

auto check_model(const std::string& file, size_t n_strict, bool quantized, double logit_tol) {
    return check_llama_parity(file, n_strict, quantized, logit_tol, "cpu");
}

constexpr size_t kAll = 1 << 20;

}  // namespace

// Logit bounds: 1e-2 for F16 files (the brief), 2e-2 for stories260K's F32 (its
// logits run to ~15; measured error 0.010), kQuantLogitTolerance for quantized files.
TEST_CASE("parity with llama.cpp: stories260K (F32) whole greedy continuation") { check_model("stories260K.gguf", kAll, false, 2e-2); }
TEST_CASE("parity with llama.cpp: kiln-test-15m-f16 greedy and logits") { check_model("kiln-test-15m-f16.gguf", kAll, false, 1e-2); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-f16 greedy and logits") { check_model("kiln-test-gqa-f16.gguf", kAll, false, 1e-2); }
TEST_CASE("parity with llama.cpp: kiln-test-15m-q8_0 greedy") { check_model("kiln-test-15m-q8_0.gguf", kAll, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-15m-q4_0 first 16 tokens") { check_model("kiln-test-15m-q4_0.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-15m-q5_0 first 16 tokens") { check_model("kiln-test-15m-q5_0.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-q2_k first 16 tokens") { check_model("kiln-test-gqa-q2_k.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-q3_k_m first 16 tokens") { check_model("kiln-test-gqa-q3_k_m.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-q4_k_m first 16 tokens") { check_model("kiln-test-gqa-q4_k_m.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-q5_k_m first 16 tokens") { check_model("kiln-test-gqa-q5_k_m.gguf", 16, true, kQuantLogitTolerance); }
TEST_CASE("parity with llama.cpp: kiln-test-gqa-q6_k first 16 tokens") { check_model("kiln-test-gqa-q6_k.gguf", 16, true, kQuantLogitTolerance); }
