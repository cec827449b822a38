// GGUF reader against files whose bytes are written out by hand from the spec.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "formats/fp16.h"
#include "formats/gguf.h"
#include "formats/quant_traits.h"
#include "gguf_test_util.h"

using namespace kiln;
using kiln::test::RawGguf;

namespace {

// Two tensors: "w" F32 [4, 2] = 0.0, 0.5, ..., 3.5 at offset 0 (32 bytes), and "q" Q8_0 [32]
// at offset 32: one block with scale d = 0.5 (fp16 0x3800) and quants -16..15.
std::vector<uint8_t> hand_built(uint32_t version) {
    RawGguf f;
    f.header(version, /*n_tensors=*/2, /*n_kv=*/16);
    f.key("general.architecture", GgufValueType::STRING).str("llama");
    f.key("u8", GgufValueType::UINT8).put<uint8_t>(200);
    f.key("i8", GgufValueType::INT8).put<int8_t>(-100);
    f.key("u16", GgufValueType::UINT16).put<uint16_t>(65535);
    f.key("i16", GgufValueType::INT16).put<int16_t>(-32768);
    f.key("u32", GgufValueType::UINT32).put<uint32_t>(4000000000u);
    f.key("i32", GgufValueType::INT32).put<int32_t>(-2000000000);
    f.key("u64", GgufValueType::UINT64).put<uint64_t>(UINT64_MAX);
    f.key("i64", GgufValueType::INT64).put<int64_t>(INT64_MIN);
    f.key("f32", GgufValueType::FLOAT32).put<float>(1e-5f);
    f.key("f64", GgufValueType::FLOAT64).put<double>(-2.5);
    f.key("yes", GgufValueType::BOOL).put<uint8_t>(1);
    f.key("no", GgufValueType::BOOL).put<uint8_t>(0);
    f.key("ids", GgufValueType::ARRAY).put(uint32_t(GgufValueType::INT32)).put<uint64_t>(3);
    f.put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
    f.key("words", GgufValueType::ARRAY).put(uint32_t(GgufValueType::STRING)).put<uint64_t>(2);
    f.str("hello").str("");
    f.key("scores", GgufValueType::ARRAY).put(uint32_t(GgufValueType::FLOAT32)).put<uint64_t>(2);
    f.put<float>(-1.5f).put<float>(0.25f);

    f.str("w").put<uint32_t>(2).put<int64_t>(4).put<int64_t>(2).put(uint32_t(GgmlType::F32)).put<uint64_t>(0);
    f.str("q").put<uint32_t>(1).put<int64_t>(32).put(uint32_t(GgmlType::Q8_0)).put<uint64_t>(32);
    f.pad(32);
    for (int i = 0; i < 8; ++i) f.put<float>(0.5f * float(i));
    f.put<uint16_t>(0x3800);
    for (int i = 0; i < 32; ++i) f.put<int8_t>(int8_t(i - 16));
    return f.bytes;
}

}  // namespace

TEST_CASE("gguf reader: hand-built v3 file decodes to known metadata and tensors") {
    const std::vector<uint8_t> bytes = hand_built(3);
    const size_t header_end = bytes.size() - 32 - 34;
    GgufFile f = GgufFile::from_bytes(bytes, "hand.gguf");

    CHECK(f.version() == 3);
    CHECK(f.alignment() == 32);
    CHECK(f.data_offset() == header_end);
    CHECK(f.data_offset() % 32 == 0);
    CHECK(f.file_size() == bytes.size());
    REQUIRE(f.metadata().size() == 16);
    CHECK(f.metadata()[0].key == "general.architecture");
    CHECK(f.metadata()[15].key == "scores");

    CHECK(f.get_string("general.architecture") == "llama");
    CHECK(f.find("u8")->type == GgufValueType::UINT8);
    CHECK(f.get_uint("u8") == 200u);
    CHECK(f.get_int("i8") == -100);
    CHECK(f.find("i8")->type == GgufValueType::INT8);
    CHECK(f.get_uint("u16") == 65535u);
    CHECK(f.get_int("i16") == -32768);
    CHECK(f.get_uint("u32") == 4000000000u);
    CHECK(f.get_int("i32") == -2000000000);
    CHECK(f.get_uint("u64") == UINT64_MAX);
    CHECK(f.get_int("i64") == INT64_MIN);
    CHECK(f.get_float("f32") == double(1e-5f));
    CHECK(f.find("f32")->type == GgufValueType::FLOAT32);
    CHECK(f.get_float("f64") == -2.5);
    CHECK(f.get_bool("yes") == true);
    CHECK(f.get_bool("no") == false);
    CHECK(f.get_int_array("ids") == std::vector<int64_t>{1, -2, 3});
    CHECK(f.get_string_array("words") == std::vector<std::string>{"hello", ""});
    CHECK(f.get_float_array("scores") == std::vector<float>{-1.5f, 0.25f});
    CHECK(f.get_float("u32") == 4000000000.0);  // integers read as floats
    CHECK_FALSE(f.get_int("absent").has_value());
    CHECK(f.find("absent") == nullptr);

    REQUIRE(f.tensors().size() == 2);
    const GgufTensorInfo* w = f.find_tensor("w");
    REQUIRE(w != nullptr);
    CHECK(w->type == GgmlType::F32);
    CHECK(w->n_dims == 2);
    CHECK(w->ne == std::array<int64_t, 4>{4, 2, 1, 1});
    CHECK(w->n_elements() == 8);
    CHECK(w->n_bytes == 32);
    CHECK(w->offset == 0);
    const float* wf = reinterpret_cast<const float*>(w->data);
    for (int i = 0; i < 8; ++i) CHECK(wf[i] == 0.5f * float(i));

    const GgufTensorInfo* q = f.find_tensor("q");
    REQUIRE(q != nullptr);
    CHECK(q->type == GgmlType::Q8_0);
    CHECK(q->n_bytes == 34);
    CHECK(q->offset == 32);
    CHECK(q->data == w->data + 32);
    const std::vector<float> deq = dequantize(GgmlType::Q8_0, q->data, 32);
    REQUIRE(deq.size() == 32);
    for (int i = 0; i < 32; ++i) CHECK(deq[size_t(i)] == 0.5f * float(i - 16));
    CHECK(f.find_tensor("nope") == nullptr);
}

TEST_CASE("gguf reader: version 2 has the same layout as version 3") {
    GgufFile f = GgufFile::from_bytes(hand_built(2), "v2.gguf");
    CHECK(f.version() == 2);
    CHECK(f.get_string("general.architecture") == "llama");
    CHECK(f.tensors().size() == 2);
}

TEST_CASE("gguf reader: typed lookups reject the wrong type with the file and key named") {
    GgufFile f = GgufFile::from_bytes(hand_built(3), "hand.gguf");
    CHECK_THROWS_WITH_AS(f.get_int("general.architecture"), doctest::Contains("hand.gguf"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_int("general.architecture"), doctest::Contains("general.architecture: expected an integer"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_int("u64"), doctest::Contains("does not fit"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_uint("i8"), doctest::Contains("negative"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_bool("u8"), doctest::Contains("expected a bool"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_string("yes"), doctest::Contains("expected a string"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_float("words"), doctest::Contains("expected a number"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_string_array("ids"), doctest::Contains("ids[0]: expected a string"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_int_array("scores"), doctest::Contains("scores[0]"), GgufError);
    CHECK_THROWS_WITH_AS(f.get_string_array("u8"), doctest::Contains("expected an array"), GgufError);
}

TEST_CASE("gguf value: summary renders short, readable text") {
    CHECK(GgufValue::u32(10000).summary() == "10000");
    CHECK(GgufValue::i8(-3).summary() == "-3");
    CHECK(GgufValue::f32(1e-5f).summary() == "1e-05");
    CHECK(GgufValue::f64(0.1).summary() == "0.1");
    CHECK(GgufValue::boolean(true).summary() == "true");
    CHECK(GgufValue::str("llama").summary() == "\"llama\"");
    CHECK(GgufValue::str("a\nb").summary() == "\"a\\nb\"");
    CHECK(GgufValue::str(std::string(100, 'x')).summary().size() < 70);
    CHECK(GgufValue::array(GgufValueType::INT32, {GgufValue::i32(1), GgufValue::i32(2)}).summary() == "[1, 2]");
    std::vector<GgufValue> many(32000, GgufValue::str("t"));
    CHECK(GgufValue::array(GgufValueType::STRING, many).summary() == "[32000 strings]");
    CHECK(std::string(gguf_value_type_name(GgufValueType::FLOAT64)) == "float64");
}

TEST_CASE("gguf reader: general.alignment moves the data section") {
    RawGguf f;
    f.header(3, 1, 1);
    f.key("general.alignment", GgufValueType::UINT32).put<uint32_t>(256);
    f.str("t").put<uint32_t>(1).put<int64_t>(4).put(uint32_t(GgmlType::F32)).put<uint64_t>(0);
    f.pad(256);
    for (int i = 0; i < 4; ++i) f.put<float>(float(i + 1));
    GgufFile g = GgufFile::from_bytes(f.bytes, "aligned.gguf");
    CHECK(g.alignment() == 256);
    CHECK(g.data_offset() == 256);
    CHECK(reinterpret_cast<const float*>(g.tensors()[0].data)[3] == 4.0f);
}

TEST_CASE("gguf reader: a file with no tensors and no metadata loads") {
    RawGguf f;
    f.header(3, 0, 0);
    GgufFile g = GgufFile::from_bytes(f.bytes, "bare.gguf");
    CHECK(g.metadata().empty());
    CHECK(g.tensors().empty());
}

TEST_CASE("gguf reader: open() reports a missing file by name") {
    CHECK_THROWS_WITH_AS(GgufFile::open("/nonexistent/dir/model.gguf"),
                         doctest::Contains("/nonexistent/dir/model.gguf: cannot open"), GgufError);
    CHECK_THROWS_WITH_AS(GgufFile::open("/tmp"), doctest::Contains("not a regular file"), GgufError);
}

TEST_CASE("gguf reader: metadata arrays are capped at 2^24 elements in all, before allocating") {
    RawGguf f;
    f.header(3, 0, 1);
    const uint64_t count = (uint64_t(1) << 24) + 1;
    f.key("big", GgufValueType::ARRAY).put(uint32_t(GgufValueType::UINT8)).put<uint64_t>(count);
    f.bytes.resize(f.bytes.size() + count, 0);
    CHECK_THROWS_WITH_AS(GgufFile::from_bytes(std::move(f.bytes), "big.gguf"),
                         doctest::Contains("key 'big': metadata arrays hold more than 16777216 elements"), GgufError);
}
