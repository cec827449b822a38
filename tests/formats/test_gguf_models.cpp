// Every GGUF file in ../shared/models opens, and what it says is sane.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "formats/gguf.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"
#include "test_paths.h"

using namespace kiln;
namespace keys = kiln::gguf_keys;

namespace {

std::vector<std::filesystem::path> shared_gguf_files() {
    namespace fs = std::filesystem;
    std::vector<fs::path> out;
    const fs::path models = kiln::test::shared_dir() / "models";
    for (const fs::path& dir : {models, models / "tokenizer-tests"})
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().extension() == ".gguf") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("gguf models: every shared .gguf opens with sane tensors") {
    const auto files = shared_gguf_files();
    CHECK(files.size() >= 17);  // 11 models + 7 vocabularies
    for (const auto& path : files) {
        CAPTURE(path.string());
        GgufFile f = GgufFile::open(path.string());
        CHECK(f.version() == 3);
        CHECK(f.file_size() == std::filesystem::file_size(path));
        REQUIRE(f.get_string(keys::kArchitecture).has_value());
        const auto tokens = f.get_string_array(keys::kTokTokens);
        REQUIRE(tokens.has_value());
        CHECK(tokens->size() >= 512);
        std::set<std::string> names;
        uint64_t prev_end = 0;
        for (const GgufTensorInfo& t : f.tensors()) {
            CAPTURE(t.name);
            CHECK(names.insert(t.name).second);
            CHECK(t.n_dims >= 1);
            CHECK(t.n_dims <= 4);
            for (int64_t d : t.ne) CHECK(d >= 1);
            CHECK(t.offset % f.alignment() == 0);
            CHECK(t.n_bytes == tensor_bytes(t.type, uint64_t(t.n_elements())));
            CHECK(t.data != nullptr);
            CHECK(f.data_offset() + t.offset + t.n_bytes <= f.file_size());
            CHECK(t.offset >= prev_end);  // llama.cpp writes tensors in order
            prev_end = t.offset + t.n_bytes;
        }
    }
}

TEST_CASE("gguf models: kiln-test-15m-f16 has the documented shapes and metadata") {
    GgufFile f = GgufFile::open(kiln::test::model_path("kiln-test-15m-f16.gguf"));
    CHECK(f.get_string(keys::kArchitecture) == "llama");
    CHECK(f.get_int("llama.embedding_length") == 288);
    CHECK(f.get_int("llama.block_count") == 6);
    CHECK(f.get_int("llama.attention.head_count") == 6);
    CHECK(f.get_int("llama.context_length") == 2048);
    CHECK(f.get_float("llama.attention.layer_norm_rms_epsilon").value() == doctest::Approx(1e-5));
    CHECK(f.get_string(keys::kTokModel) == "llama");
    CHECK(f.get_int(keys::kTokBosId) == 1);
    CHECK(f.get_int(keys::kTokEosId) == 2);
    CHECK(f.get_bool(keys::kTokAddBos) == true);
    CHECK(f.get_string_array(keys::kTokTokens)->size() == 32000);
    CHECK(f.get_float_array(keys::kTokScores)->size() == 32000);
    CHECK(f.get_int_array(keys::kTokTokenType)->size() == 32000);

    const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
    REQUIRE(emb != nullptr);
    CHECK(emb->type == GgmlType::F16);
    CHECK(emb->n_dims == 2);
    CHECK(emb->ne[0] == 288);
    CHECK(emb->ne[1] == 32000);
    CHECK(f.find_tensor("output.weight") == nullptr);  // tied embeddings
    const GgufTensorInfo* norm = f.find_tensor("blk.0.attn_norm.weight");
    REQUIRE(norm != nullptr);
    CHECK(norm->type == GgmlType::F32);
    CHECK(norm->ne[0] == 288);
    // Trained RMS-norm gains are positive, finite, and near 1: checks the data pointer lands on real weights.
    const float* g = reinterpret_cast<const float*>(norm->data);
    for (int i = 0; i < 288; ++i) CHECK((g[i] > 0.0f && g[i] < 10.0f));
    int64_t params = 0;
    for (const auto& t : f.tensors()) params += t.n_elements();
    CHECK(params > 15'000'000);
    CHECK(params < 15'500'000);
}

TEST_CASE("gguf models: quantized files use the types the manifest lists") {
    const std::map<std::string, std::set<GgmlType>> expected = {
        {"kiln-test-15m-q8_0.gguf", {GgmlType::Q8_0, GgmlType::F32}},
        {"kiln-test-15m-q4_0.gguf", {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::F32}},
        {"kiln-test-gqa-q4_k_m.gguf", {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F32}},
        {"stories260K.gguf", {GgmlType::F32}},
    };
    for (const auto& [file, types] : expected) {
        CAPTURE(file);
        GgufFile f = GgufFile::open(kiln::test::model_path(file));
        std::set<GgmlType> seen;
        for (const auto& t : f.tensors()) seen.insert(t.type);
        CHECK(seen == types);
    }
    GgufFile s = GgufFile::open(kiln::test::model_path("stories260K.gguf"));
    CHECK(s.tensors().size() == 48);
    const GgufTensorInfo* a = s.find_tensor("token_embd.weight");
    const GgufTensorInfo* b = s.find_tensor("output.weight");
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(a->n_bytes == b->n_bytes);
    CHECK(std::memcmp(a->data, b->data, a->n_bytes) == 0);  // the manifest says: a byte-exact copy
}
