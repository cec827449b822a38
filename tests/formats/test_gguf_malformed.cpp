// Malformed GGUF files: a corpus generated here by mutating one valid file written
// with GgufWriter, plus the shared probe files. Each must fail with a GgufError that
// names the problem; none may crash (run this suite under ASan+UBSan too).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "formats/gguf.h"
#include "gguf_test_util.h"
#include "test_paths.h"

using namespace kiln;
using kiln::test::after_string;
using kiln::test::parse_error;
using kiln::test::patch;
using kiln::test::string_start;

namespace {

// Header: magic @0, version @4, n_tensors @8, n_kv @16.
std::vector<uint8_t> valid_file() {
    GgufWriter w(64);  // writes general.alignment = 64 first
    w.set("general.architecture", GgufValue::str("x"));
    w.set("key.a", GgufValue::u32(7));
    w.set("key.b", GgufValue::boolean(true));
    w.set("key.arr", GgufValue::array(GgufValueType::UINT16, {GgufValue::u16(1), GgufValue::u16(2), GgufValue::u16(3)}));
    w.set("key.s", GgufValue::str("hello"));
    std::vector<float> t0(16, 1.0f);
    w.add_tensor("t0", GgmlType::F32, {8, 2}, t0.data(), 64);
    std::vector<uint8_t> t1(34, 0);
    w.add_tensor("t1", GgmlType::Q8_0, {32}, t1.data(), 34);
    return w.to_bytes();
}

struct Mutation {
    const char* kind;
    std::function<void(std::vector<uint8_t>&)> apply;
    const char* expected;  // a substring the error message must contain
};

// Field offsets found by searching for the GGUF strings that precede them.
size_t value_of(const std::vector<uint8_t>& b, const std::string& key) { return after_string(b, key) + 4; }
size_t type_of(const std::vector<uint8_t>& b, const std::string& key) { return after_string(b, key); }
size_t tensor_field(const std::vector<uint8_t>& b, const std::string& name) { return after_string(b, name); }

std::vector<Mutation> mutations() {
    using B = std::vector<uint8_t>;
    return {
        {"bad magic", [](B& b) { b[3] = 'X'; }, "bad magic 'GGUX'"},
        {"version 1", [](B& b) { patch<uint32_t>(b, 4, 1); }, "version 1 is not supported"},
        {"version 99", [](B& b) { patch<uint32_t>(b, 4, 99); }, "unknown GGUF version 99"},
        {"big-endian", [](B& b) { patch<uint32_t>(b, 4, 0x03000000); }, "big-endian"},
        {"n_kv huge", [](B& b) { patch<uint64_t>(b, 16, uint64_t(1) << 60); }, "n_kv"},
        {"n_tensors huge", [](B& b) { patch<uint64_t>(b, 8, UINT64_MAX); }, "n_tensors"},
        {"key length 2^63", [](B& b) { patch<uint64_t>(b, string_start(b, "key.a"), uint64_t(1) << 63); }, "string length"},
        {"key length past EOF", [](B& b) { patch<uint64_t>(b, string_start(b, "key.a"), b.size()); }, "runs past the end"},
        {"empty key", [](B& b) { patch<uint64_t>(b, string_start(b, "key.a"), 0); }, "empty key"},
        {"duplicate key", [](B& b) { b[after_string(b, "key.b") - 1] = 'a'; }, "duplicate key 'key.a'"},
        {"duplicate key with a control byte",
         [](B& b) {
             b[string_start(b, "key.a") + 8] = '\n';
             const size_t key_b = string_start(b, "key.b") + 8;
             b[key_b] = '\n';
             b[key_b + 4] = 'a';
         },
         "duplicate key '\\x0aey.a'"},
        {"unknown value type", [](B& b) { patch<uint32_t>(b, type_of(b, "key.a"), 77); }, "unknown value type 77"},
        {"bool not 0/1", [](B& b) { b[value_of(b, "key.b")] = 2; }, "bool value 2"},
        {"array element type", [](B& b) { patch<uint32_t>(b, value_of(b, "key.arr"), 13); }, "unknown array element type 13"},
        {"array count huge", [](B& b) { patch<uint64_t>(b, value_of(b, "key.arr") + 4, uint64_t(1) << 62); }, "array count"},
        {"string value past EOF", [](B& b) { patch<uint64_t>(b, value_of(b, "key.s"), uint64_t(1) << 40); }, "runs past the end"},
        {"alignment wrong type", [](B& b) { patch<uint32_t>(b, type_of(b, "general.alignment"), uint32_t(GgufValueType::INT32)); }, "must be an unsigned integer"},
        {"alignment float", [](B& b) { patch<uint32_t>(b, type_of(b, "general.alignment"), uint32_t(GgufValueType::FLOAT32)); }, "must be an unsigned integer"},
        {"alignment not pow2", [](B& b) { patch<uint32_t>(b, value_of(b, "general.alignment"), 48); }, "48 is not a power of two"},
        {"alignment zero", [](B& b) { patch<uint32_t>(b, value_of(b, "general.alignment"), 0); }, "0 is not a power of two"},
        {"alignment 4", [](B& b) { patch<uint32_t>(b, value_of(b, "general.alignment"), 4); }, "is below 8"},
        {"alignment 2^31", [](B& b) { patch<uint32_t>(b, value_of(b, "general.alignment"), 0x80000000u); }, "alignment 2147483648"},
        {"tensor name length huge", [](B& b) { patch<uint64_t>(b, string_start(b, "t1"), UINT64_MAX); }, "string length"},
        {"empty tensor name", [](B& b) { patch<uint64_t>(b, string_start(b, "t1"), 0); }, "empty name"},
        {"duplicate tensor name", [](B& b) { b[tensor_field(b, "t1") - 1] = '0'; }, "duplicate tensor name 't0'"},
        {"n_dims 0", [](B& b) { patch<uint32_t>(b, tensor_field(b, "t0"), 0); }, "dimensions 0"},
        {"n_dims 5", [](B& b) { patch<uint32_t>(b, tensor_field(b, "t0"), 5); }, "dimensions 5"},
        {"n_dims huge", [](B& b) { patch<uint32_t>(b, tensor_field(b, "t0"), UINT32_MAX); }, "dimensions 4294967295"},
        {"dimension 0", [](B& b) { patch<int64_t>(b, tensor_field(b, "t0") + 12, 0); }, "ne[1] = 0"},
        {"dimension negative", [](B& b) { patch<int64_t>(b, tensor_field(b, "t0") + 4, -8); }, "ne[0] = -8"},
        {"element count overflow", [](B& b) { patch<int64_t>(b, tensor_field(b, "t0") + 4, int64_t(1) << 62); }, "element count overflows"},
        {"row not a block multiple", [](B& b) { patch<int64_t>(b, tensor_field(b, "t1") + 4, 48); }, "not a multiple of the q8_0 block size 32"},
        {"unknown tensor type", [](B& b) { patch<uint32_t>(b, tensor_field(b, "t0") + 20, 9999); }, "unknown tensor type 9999"},
        {"removed tensor type Q4_2", [](B& b) { patch<uint32_t>(b, tensor_field(b, "t0") + 20, 4); }, "unknown tensor type 4"},
        {"offset misaligned", [](B& b) { patch<uint64_t>(b, tensor_field(b, "t1") + 16, 65); }, "not a multiple of the alignment 64"},
        {"offset past EOF", [](B& b) { patch<uint64_t>(b, tensor_field(b, "t1") + 16, uint64_t(1) << 40); }, "beyond end of file"},
        {"offset + size wraps", [](B& b) { patch<uint64_t>(b, tensor_field(b, "t1") + 16, UINT64_MAX - 63); }, "beyond end of file"},
        {"tensor grows into the next", [](B& b) { patch<int64_t>(b, tensor_field(b, "t0") + 12, 3); }, "overlap"},
        {"huge q8_0 tensor", [](B& b) { patch<int64_t>(b, tensor_field(b, "t1") + 4, INT64_MAX - 31); }, "beyond end of file"},
        {"overlapping tensors", [](B& b) { patch<uint64_t>(b, tensor_field(b, "t1") + 16, 0); }, "tensors t0 and t1 overlap"},
        {"data truncated", [](B& b) { b.resize(b.size() - 40); }, "tensor t1: data range"},
    };
}

bool names_a_truncation(const std::string& msg) {
    for (const char* word : {"truncated", "beyond", "past the end", "cannot fit", "empty"})
        if (msg.find(word) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("gguf malformed: the unmutated base file loads") {
    GgufFile f = GgufFile::from_bytes(valid_file(), "base.gguf");
    CHECK(f.alignment() == 64);
    CHECK(f.tensors().size() == 2);
    CHECK(f.metadata().size() == 6);
}

TEST_CASE("gguf malformed: each generated mutation fails with a message naming the problem") {
    const auto all = mutations();
    CHECK(all.size() >= 20);
    for (const Mutation& m : all) {
        CAPTURE(m.kind);
        std::vector<uint8_t> bytes = valid_file();
        m.apply(bytes);
        const std::string msg = parse_error(bytes, "mutant.gguf");
        CAPTURE(msg);
        CHECK(msg.find("mutant.gguf: ") == 0);
        CHECK(msg.find(m.expected) != std::string::npos);
        CHECK(msg.find('\n') == std::string::npos);  // one line, whatever bytes the file holds
    }
}

TEST_CASE("gguf malformed: truncation at every byte position") {
    const std::vector<uint8_t> full = valid_file();
    GgufFile f = GgufFile::from_bytes(full);
    uint64_t data_end = 0;
    for (const auto& t : f.tensors()) data_end = std::max(data_end, f.data_offset() + t.offset + t.n_bytes);
    for (size_t n = 0; n < full.size(); ++n) {
        CAPTURE(n);
        const std::string msg = parse_error(std::vector<uint8_t>(full.begin(), full.begin() + long(n)), "cut.gguf");
        if (n < data_end) {
            // Only the padding after the last tensor may be cut off.
            CHECK(names_a_truncation(msg));
        } else {
            CHECK(msg.empty());
        }
    }
}

TEST_CASE("gguf malformed: random byte corruption never escapes as anything but GgufError") {
    const std::vector<uint8_t> full = valid_file();
    std::mt19937 rng(1234);
    int rejected = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        std::vector<uint8_t> bytes = full;
        const int n_flips = 1 + int(rng() % 4);
        for (int k = 0; k < n_flips; ++k) {
            // Mostly the header and infos (where the structure is), sometimes anywhere.
            const size_t at = rng() % 4 ? rng() % std::min<size_t>(bytes.size(), 240) : rng() % bytes.size();
            bytes[at] = uint8_t(rng() % 3 == 0 ? 0xFF : rng());
        }
        if (!parse_error(bytes).empty()) ++rejected;
    }
    CHECK(rejected > 1000);  // most corruptions of structure are caught
}

TEST_CASE("gguf malformed: shared probe files are rejected with a clear error") {
    namespace fs = std::filesystem;
    const fs::path dir = kiln::test::shared_dir() / "malformed-gguf";
    // What each message must mention.
    const std::map<std::string, std::string> expected = {
        {"align_2p31.gguf", "beyond the end of the file"},
        {"align_not_pow2.gguf", "not a power of two"},
        {"align_wrong_type.gguf", "must be an unsigned integer"},
        {"arr_count_huge.gguf", "array count"},
        {"bad_magic.gguf", "bad magic"},
        {"bad_type.gguf", "unknown tensor type 9999"},
        {"data_short.gguf", "beyond end of file"},
        {"div0_ne1_zero.gguf", "ne[1] = 0"},
        {"dup_key.gguf", "duplicate key"},
        {"dup_tensor.gguf", "duplicate tensor name"},
        {"empty.gguf", "empty"},
        {"empty_key.gguf", "empty key"},
        {"kv_bad_type.gguf", "unknown value type 77"},
        {"n_kv_huge.gguf", "n_kv"},
        {"n_tensors_huge.gguf", "n_tensors"},
        {"name_len_huge.gguf", "string length"},
        {"ndims_5.gguf", "dimensions 5"},
        {"ndims_huge.gguf", "dimensions 4294967295"},
        {"ne_nbytes_wrap_q4.gguf", "beyond end of file"},
        {"ne_overflow.gguf", "overflows"},
        {"offset_misaligned.gguf", "not a multiple of the alignment"},
        {"offset_past_eof.gguf", "beyond end of file"},
        {"overlap_tensors.gguf", "overlap"},
        {"str_len_2p63.gguf", "string length"},
        {"str_len_past_eof.gguf", "runs past the end"},
        {"truncated_header.gguf", "truncated"},
        {"version_1.gguf", "version 1 is not supported"},
        {"version_99.gguf", "unknown GGUF version 99"},
    };
    size_t n_files = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (entry.path().extension() != ".gguf") continue;
        ++n_files;
        CAPTURE(name);
        if (name == "ok_valid.gguf" || name == "arr_nested.gguf") {
            CHECK_NOTHROW(GgufFile::open(entry.path().string()));
            continue;
        }
        auto it = expected.find(name);
        if (it == expected.end()) {
            FAIL_CHECK("new probe file without an expectation: " << name);
            continue;
        }
        std::string msg;
        try {
            GgufFile::open(entry.path().string());
        } catch (const GgufError& e) {
            msg = e.what();
        }
        CAPTURE(msg);
        CHECK(msg.find(entry.path().string() + ": ") == 0);
        CHECK(msg.find(it->second) != std::string::npos);
    }
    CHECK(n_files == expected.size() + 2);

    GgufFile nested = GgufFile::open((dir / "arr_nested.gguf").string());
    const GgufArray& outer = nested.find("arr")->as_array("arr");
    REQUIRE(outer.items.size() == 1);
    CHECK(outer.elem_type == GgufValueType::ARRAY);
    CHECK(outer.items[0].as_array("arr[0]").items.at(0).as_uint("arr[0][0]") == 1);

    GgufFile ok = GgufFile::open((dir / "ok_valid.gguf").string());
    CHECK(ok.get_string("general.architecture") == "llama");
    REQUIRE(ok.tensors().size() == 1);
    CHECK(ok.tensors()[0].name == "t");
}
