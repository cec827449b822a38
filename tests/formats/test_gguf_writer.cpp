// GgufWriter: what it writes reads back identically (types included), and bad input is refused.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unistd.h>

#include "formats/gguf.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"
#include "gguf_test_util.h"

using namespace kiln;
using kiln::test::same_value;

namespace {

std::vector<GgufKeyValue> every_value_type() {
    using V = GgufValue;
    using T = GgufValueType;
    std::vector<GgufKeyValue> kv = {
        {"general.architecture", V::str("llama")},
        {"u8", V::u8(255)},
        {"i8", V::i8(-128)},
        {"u16", V::u16(65535)},
        {"i16", V::i16(-32768)},
        {"u32", V::u32(UINT32_MAX)},
        {"i32", V::i32(INT32_MIN)},
        {"u64", V::u64(UINT64_MAX)},
        {"i64", V::i64(INT64_MIN)},
        {"f32", V::f32(-1e-5f)},
        {"f32.nan", V::f32(std::numeric_limits<float>::quiet_NaN())},
        {"f32.inf", V::f32(std::numeric_limits<float>::infinity())},
        {"f64", V::f64(3.141592653589793)},
        {"bool.t", V::boolean(true)},
        {"bool.f", V::boolean(false)},
        {"str.empty", V::str("")},
        {"str.binary", V::str(std::string("a\0b\xff\xe2\x96\x81", 6))},
        {"arr.empty", V::array(T::UINT8, {})},
        {"arr.u8", V::array(T::UINT8, {V::u8(0), V::u8(255)})},
        {"arr.i8", V::array(T::INT8, {V::i8(-1)})},
        {"arr.u16", V::array(T::UINT16, {V::u16(7)})},
        {"arr.i16", V::array(T::INT16, {V::i16(-7)})},
        {"arr.u32", V::array(T::UINT32, {V::u32(1), V::u32(2), V::u32(3)})},
        {"arr.i32", V::array(T::INT32, {V::i32(-1), V::i32(INT32_MAX)})},
        {"arr.u64", V::array(T::UINT64, {V::u64(UINT64_MAX)})},
        {"arr.i64", V::array(T::INT64, {V::i64(INT64_MAX)})},
        {"arr.f32", V::array(T::FLOAT32, {V::f32(0.5f), V::f32(-0.0f)})},
        {"arr.f64", V::array(T::FLOAT64, {V::f64(1e300)})},
        {"arr.bool", V::array(T::BOOL, {V::boolean(true), V::boolean(false)})},
        {"arr.str", V::array(T::STRING, {V::str("<s>"), V::str(""), V::str("\xe2\x96\x81the")})},
        {"arr.nested", V::array(T::ARRAY, {V::array(T::UINT8, {V::u8(1)}),
                                           V::array(T::STRING, {V::str("x"), V::str("y")}),
                                           V::array(T::ARRAY, {V::array(T::FLOAT64, {V::f64(2.0)})})})},
    };
    return kv;
}

GgufValue nested(int depth) {
    GgufValue v = GgufValue::array(GgufValueType::UINT8, {GgufValue::u8(42)});
    for (int i = 1; i < depth; ++i) v = GgufValue::array(GgufValueType::ARRAY, {v});
    return v;
}

}  // namespace

TEST_CASE("gguf writer: every value type round-trips with its type, in insertion order") {
    GgufWriter w;
    const auto kv = every_value_type();
    for (const auto& [k, v] : kv) w.set(k, v);
    GgufFile f = GgufFile::from_bytes(w.to_bytes(), "roundtrip.gguf");
    CHECK(f.version() == 3);
    REQUIRE(f.metadata().size() == kv.size());
    for (size_t i = 0; i < kv.size(); ++i) {
        CAPTURE(kv[i].key);
        CHECK(f.metadata()[i].key == kv[i].key);
        CHECK(same_value(f.metadata()[i].value, kv[i].value));
    }
    CHECK(f.find("general.alignment") == nullptr);  // the default is not written
}

TEST_CASE("gguf writer: set() replaces a value in place") {
    GgufWriter w;
    w.set("a", GgufValue::u32(1));
    w.set("b", GgufValue::u32(2));
    w.set("a", GgufValue::str("again"));
    GgufFile f = GgufFile::from_bytes(w.to_bytes());
    REQUIRE(f.metadata().size() == 2);
    CHECK(f.metadata()[0].key == "a");
    CHECK(f.get_string("a") == "again");
}

TEST_CASE("gguf writer: tensors of every type round-trip byte for byte, aligned") {
    for (uint64_t alignment : {32ull, 64ull, 8ull, 4096ull}) {
        CAPTURE(alignment);
        GgufWriter w(alignment);
        w.set("general.architecture", GgufValue::str("test"));
        std::vector<std::vector<uint8_t>> datas;
        std::vector<std::string> names;
        int i = 0;
        for (const QuantTraits& t : all_quant_traits()) {
            const int64_t ne0 = t.block_size * 2, ne1 = 3;
            const uint64_t n = *tensor_bytes(t.type, uint64_t(ne0 * ne1));
            std::vector<uint8_t> data(n);
            for (size_t b = 0; b < n; ++b) data[b] = uint8_t(b * 31 + i);
            names.push_back(std::string("blk.") + std::to_string(i++) + "." + t.name);
            w.add_tensor(names.back(), t.type, {ne0, ne1}, data.data(), data.size());
            datas.push_back(std::move(data));
        }
        const float scalar = 7.0f;
        w.add_tensor("one", GgmlType::F32, {1, 1, 1, 1}, &scalar, 4);
        GgufFile f = GgufFile::from_bytes(w.to_bytes(), "tensors.gguf");
        CHECK(f.alignment() == alignment);
        if (alignment != 32) CHECK(f.get_uint("general.alignment") == alignment);
        CHECK(f.data_offset() % alignment == 0);
        REQUIRE(f.tensors().size() == datas.size() + 1);
        for (size_t k = 0; k < datas.size(); ++k) {
            const GgufTensorInfo& t = f.tensors()[k];
            CHECK(t.name == names[k]);
            CHECK(t.offset % alignment == 0);
            CHECK(t.n_dims == 2);
            REQUIRE(t.n_bytes == datas[k].size());
            CHECK(std::memcmp(t.data, datas[k].data(), t.n_bytes) == 0);
        }
        const GgufTensorInfo& one = f.tensors().back();
        CHECK(one.n_dims == 4);
        CHECK(*reinterpret_cast<const float*>(one.data) == 7.0f);
    }
}

TEST_CASE("gguf writer: write() then open() (mmap) gives the same file") {
    GgufWriter w(64);
    for (const auto& [k, v] : every_value_type()) w.set(k, v);
    std::vector<float> x(64);
    std::iota(x.begin(), x.end(), -3.0f);
    w.add_tensor("x", GgmlType::F32, {16, 4}, x.data(), x.size() * sizeof(float));
    const auto path = std::filesystem::temp_directory_path() / ("kiln_gguf_" + std::to_string(::getpid()) + ".gguf");
    w.write(path.string());
    {
        GgufFile f = GgufFile::open(path.string());
        CHECK(f.path() == path.string());
        CHECK(f.file_size() == std::filesystem::file_size(path));
        CHECK(f.file_size() == w.to_bytes().size());
        REQUIRE(f.find_tensor("x") != nullptr);
        CHECK(std::memcmp(f.find_tensor("x")->data, x.data(), 256) == 0);
        CHECK(same_value(*f.find("arr.nested"), *GgufFile::from_bytes(w.to_bytes()).find("arr.nested")));
        // Moving the file keeps tensor views valid.
        GgufFile moved = std::move(f);
        CHECK(reinterpret_cast<const float*>(moved.find_tensor("x")->data)[63] == 60.0f);
    }
    std::filesystem::remove(path);
    CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
    CHECK_THROWS_WITH_AS(w.write("/nonexistent/dir/out.gguf"), doctest::Contains("cannot create"), GgufError);
}

TEST_CASE("gguf writer + reader: arrays nest up to 8 deep, deeper is refused") {
    GgufWriter ok;
    ok.set("deep", nested(8));
    GgufFile f = GgufFile::from_bytes(ok.to_bytes());
    const GgufValue* v = f.find("deep");
    for (int i = 0; i < 7; ++i) v = &v->as_array("deep").items.at(0);
    CHECK(v->as_array("deep").items.at(0).as_uint("deep") == 42);

    GgufWriter deep;
    deep.set("deep", nested(9));
    CHECK_THROWS_WITH_AS(GgufFile::from_bytes(deep.to_bytes(), "deep.gguf"),
                         doctest::Contains("nested more than 8 deep"), GgufError);
    GgufWriter very_deep;
    very_deep.set("deep", nested(1000));  // the reader stops at depth 8, not at the end of the stack
    CHECK_THROWS_AS(GgufFile::from_bytes(very_deep.to_bytes(), "deep.gguf"), GgufError);
}

TEST_CASE("gguf writer: refuses input it cannot write faithfully") {
    GgufWriter w;
    float f[32] = {};
    CHECK_THROWS_WITH_AS(GgufWriter(48), doctest::Contains("power of two"), GgufError);
    CHECK_THROWS_WITH_AS(GgufWriter(0), doctest::Contains("power of two"), GgufError);
    CHECK_THROWS_WITH_AS(GgufWriter(4), doctest::Contains("from 8"), GgufError);
    CHECK_THROWS_WITH_AS(w.set("", GgufValue::u8(1)), doctest::Contains("empty"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::F32, {32}, f, 64), doctest::Contains("expected 128"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::Q8_0, {31}, f, 34), doctest::Contains("block size 32"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::F32, {0, 4}, f, 0), doctest::Contains("at least 1"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::F32, {1, 1, 1, 1, 1}, f, 4), doctest::Contains("dimensions"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType(4), {32}, f, 128), doctest::Contains("unknown tensor type 4"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::F32, {int64_t(1) << 40, int64_t(1) << 40}, f, 4),
                         doctest::Contains("overflow"), GgufError);
    CHECK_THROWS_WITH_AS(w.add_tensor("", GgmlType::F32, {1}, f, 4), doctest::Contains("empty"), GgufError);
    w.add_tensor("t", GgmlType::F32, {1}, f, 4);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", GgmlType::F32, {1}, f, 4), doctest::Contains("duplicate"), GgufError);

    GgufWriter mixed;
    mixed.set("arr", GgufValue::array(GgufValueType::UINT8, {GgufValue::u8(1), GgufValue::u16(2)}));
    CHECK_THROWS_WITH_AS(mixed.to_bytes(), doctest::Contains("arr'[1]: element of type uint16"), GgufError);
    GgufWriter wide;
    wide.set("x", GgufValue{GgufValueType::UINT8, uint64_t(300)});
    CHECK_THROWS_WITH_AS(wide.to_bytes(), doctest::Contains("does not fit in uint8"), GgufError);
    GgufWriter wrong_kind;
    wrong_kind.set("x", GgufValue{GgufValueType::STRING, uint64_t(1)});
    CHECK_THROWS_WITH_AS(wrong_kind.to_bytes(), doctest::Contains("wrong kind of data"), GgufError);
    GgufWriter bad_align;
    bad_align.set(std::string(gguf_keys::kAlignment), GgufValue::u32(64));
    CHECK_THROWS_WITH_AS(bad_align.to_bytes(), doctest::Contains("disagrees"), GgufError);
}

TEST_CASE("gguf writer: a tensor filled at write time is written as if copied, in whole-row chunks, in order") {
    // 1536 rows of 1024 floats = 6 MiB: more than one chunk.
    const int64_t n_row = 1024, n_rows = 1536;
    std::vector<float> x(size_t(n_row * n_rows));
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 65521) - 7.0f;
    const std::vector<uint8_t> small = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};  // one q4_0 block

    GgufWriter copied;
    copied.set("general.architecture", GgufValue::str("llama"));
    copied.add_tensor("small", GgmlType::Q4_0, {32}, small.data(), small.size());
    copied.add_tensor("big", GgmlType::F32, {n_row, n_rows}, x.data(), x.size() * sizeof(float));

    std::vector<std::pair<int64_t, int64_t>> calls;  // (first_row, n_rows) of the big tensor
    GgufWriter filled;
    filled.set("general.architecture", GgufValue::str("llama"));
    filled.add_tensor("small", GgmlType::Q4_0, {32}, [&](int64_t first, int64_t n, uint8_t* dst) {
        CHECK(first == 0);
        CHECK(n == 1);
        std::memcpy(dst, small.data(), small.size());
    });
    filled.add_tensor("big", GgmlType::F32, {n_row, n_rows}, [&](int64_t first, int64_t n, uint8_t* dst) {
        calls.emplace_back(first, n);
        std::memcpy(dst, x.data() + first * n_row, size_t(n * n_row) * sizeof(float));
    });

    const std::vector<uint8_t> bytes = filled.to_bytes();
    CHECK(bytes == copied.to_bytes());
    CHECK(filled.file_size() == bytes.size());
    CHECK(copied.file_size() == bytes.size());
    REQUIRE(calls.size() >= 2);
    int64_t next = 0;
    for (auto [first, n] : calls) {
        CHECK(first == next);
        CHECK(n >= 1);
        next = first + n;
    }
    CHECK(next == n_rows);

    // write() takes the same path.
    const auto path = std::filesystem::temp_directory_path() / ("kiln_gguf_fill_" + std::to_string(::getpid()) + ".gguf");
    filled.write(path.string());
    {
        GgufFile f = GgufFile::open(path.string());
        REQUIRE(f.find_tensor("big") != nullptr);
        CHECK(std::memcmp(f.find_tensor("big")->data, x.data(), x.size() * sizeof(float)) == 0);
        CHECK(f.file_size() == bytes.size());
    }
    std::filesystem::remove(path);
}

TEST_CASE("gguf writer: a fill that throws leaves no file behind") {
    GgufWriter w;
    w.add_tensor("t", GgmlType::F32, {8, 2}, [](int64_t first, int64_t, uint8_t*) {
        if (first == 0) throw std::runtime_error("generator broke");
    });
    const auto path = std::filesystem::temp_directory_path() / ("kiln_gguf_throw_" + std::to_string(::getpid()) + ".gguf");
    CHECK_THROWS_WITH_AS(w.write(path.string()), "generator broke", std::runtime_error);
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
    CHECK_THROWS_WITH_AS(w.add_tensor("u", GgmlType::F32, {8}, TensorRowFill{}), doctest::Contains("no fill"), GgufError);
}
