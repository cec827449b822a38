#pragma once
// Helpers for the GGUF tests: a raw little-endian byte builder (independent of
// GgufWriter, so hand-built files check the reader against the spec, not against
// our own writer), field patching, and value comparison.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace kiln::test {

struct RawGguf {
    std::vector<uint8_t> bytes;

    template <class T>
    RawGguf& put(T v) {
        const size_t at = bytes.size();
        bytes.resize(at + sizeof(T));
        std::memcpy(bytes.data() + at, &v, sizeof(T));
        return *this;
    }
    RawGguf& str(const std::string& s) {
        put<uint64_t>(s.size());
        bytes.insert(bytes.end(), s.begin(), s.end());
        return *this;
    }
    RawGguf& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
        return put(version).put(n_tensors).put(n_kv);
    }
    RawGguf& key(const std::string& k, GgufValueType t) { return str(k).put(uint32_t(t)); }
    RawGguf& pad(size_t alignment) {
        bytes.resize((bytes.size() + alignment - 1) / alignment * alignment, 0);
        return *this;
    }
};

template <class T>
void patch(std::vector<uint8_t>& bytes, size_t at, T v) {
    REQUIRE(at + sizeof(T) <= bytes.size());
    std::memcpy(bytes.data() + at, &v, sizeof(T));
}

template <class T>
T peek(const std::vector<uint8_t>& bytes, size_t at) {
    REQUIRE(at + sizeof(T) <= bytes.size());
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    return v;
}

// Offset of the first byte after the GGUF string `s` (its u64 length, then its bytes).
inline size_t after_string(const std::vector<uint8_t>& bytes, const std::string& s) {
    std::vector<uint8_t> needle(8 + s.size());
    const uint64_t len = s.size();
    std::memcpy(needle.data(), &len, 8);
    std::memcpy(needle.data() + 8, s.data(), s.size());
    for (size_t i = 0; i + needle.size() <= bytes.size(); ++i)
        if (std::memcmp(bytes.data() + i, needle.data(), needle.size()) == 0) return i + needle.size();
    FAIL("string '" << s << "' not found in the file");
    return 0;
}

// Offset of the u64 length that starts the GGUF string `s`.
inline size_t string_start(const std::vector<uint8_t>& bytes, const std::string& s) {
    return after_string(bytes, s) - 8 - s.size();
}

// Exact equality, types included; floats compared bit for bit (NaN == NaN).
inline bool same_value(const GgufValue& a, const GgufValue& b) {
    if (a.type != b.type || a.data.index() != b.data.index()) return false;
    if (const auto* d = std::get_if<double>(&a.data)) {
        const double e = std::get<double>(b.data);
        return std::memcmp(d, &e, sizeof e) == 0;
    }
    if (const auto* arr = std::get_if<GgufArray>(&a.data)) {
        const auto& brr = std::get<GgufArray>(b.data);
        if (arr->elem_type != brr.elem_type || arr->items.size() != brr.items.size()) return false;
        for (size_t i = 0; i < arr->items.size(); ++i)
            if (!same_value(arr->items[i], brr.items[i])) return false;
        return true;
    }
    if (const auto* u = std::get_if<uint64_t>(&a.data)) return *u == std::get<uint64_t>(b.data);
    if (const auto* i = std::get_if<int64_t>(&a.data)) return *i == std::get<int64_t>(b.data);
    if (const auto* t = std::get_if<bool>(&a.data)) return *t == std::get<bool>(b.data);
    return std::get<std::string>(a.data) == std::get<std::string>(b.data);
}

// The message of the GgufError that parsing `bytes` throws ("" when it loads, and a
// test failure when anything other than GgufError escapes).
inline std::string parse_error(std::vector<uint8_t> bytes, const std::string& name = "mutant.gguf") {
    try {
        GgufFile::from_bytes(std::move(bytes), name);
    } catch (const GgufError& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("non-GgufError exception: " << e.what());
    }
    return "";
}

}  // namespace kiln::test
