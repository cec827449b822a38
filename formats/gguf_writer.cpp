// GGUF v3 writer. Layout as in gguf_reader.cpp; every tensor's data starts at a
// multiple of the alignment, and the section before the data is padded with zeros.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"

namespace kiln {

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;

[[noreturn]] void fail(const std::string& what) { throw GgufError("GgufWriter: " + what); }

class ByteSink {
public:
    std::vector<uint8_t> bytes;

    template <class T>
    void put(T v) {
        const size_t at = bytes.size();
        bytes.resize(at + sizeof(T));
        std::memcpy(bytes.data() + at, &v, sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        bytes.insert(bytes.end(), s.begin(), s.end());
    }
    void pad_to(uint64_t alignment) { bytes.resize(bytes.size() + (alignment - bytes.size() % alignment) % alignment, 0); }
};

// Checks that the variant holds what `type` promises and that the number fits the width.
template <class Wide, class Narrow>
Narrow narrow(const GgufValue& v, const std::string& what) {
    const Wide* w = std::get_if<Wide>(&v.data);
    if (!w) fail(what + ": value of type " + gguf_value_type_name(v.type) + " holds the wrong kind of data");
    if (*w < Wide(std::numeric_limits<Narrow>::lowest()) || *w > Wide(std::numeric_limits<Narrow>::max()))
        fail(what + ": value " + std::to_string(*w) + " does not fit in " + gguf_value_type_name(v.type));
    return Narrow(*w);
}

void put_value(ByteSink& out, const GgufValue& v, const std::string& what) {
    switch (v.type) {
        case GgufValueType::UINT8: return out.put(narrow<uint64_t, uint8_t>(v, what));
        case GgufValueType::UINT16: return out.put(narrow<uint64_t, uint16_t>(v, what));
        case GgufValueType::UINT32: return out.put(narrow<uint64_t, uint32_t>(v, what));
        case GgufValueType::UINT64: return out.put(narrow<uint64_t, uint64_t>(v, what));
        case GgufValueType::INT8: return out.put(narrow<int64_t, int8_t>(v, what));
        case GgufValueType::INT16: return out.put(narrow<int64_t, int16_t>(v, what));
        case GgufValueType::INT32: return out.put(narrow<int64_t, int32_t>(v, what));
        case GgufValueType::INT64: return out.put(narrow<int64_t, int64_t>(v, what));
        case GgufValueType::FLOAT32:
        case GgufValueType::FLOAT64: {
            const double* d = std::get_if<double>(&v.data);
            if (!d) fail(what + ": float value holds the wrong kind of data");
            if (v.type == GgufValueType::FLOAT32) return out.put(float(*d));
            return out.put(*d);
        }
        case GgufValueType::BOOL: {
            const bool* b = std::get_if<bool>(&v.data);
            if (!b) fail(what + ": bool value holds the wrong kind of data");
            return out.put(uint8_t(*b ? 1 : 0));
        }
        case GgufValueType::STRING: {
            const std::string* s = std::get_if<std::string>(&v.data);
            if (!s) fail(what + ": string value holds the wrong kind of data");
            return out.put_string(*s);
        }
        case GgufValueType::ARRAY: {
            const GgufArray* a = std::get_if<GgufArray>(&v.data);
            if (!a) fail(what + ": array value holds the wrong kind of data");
            out.put(uint32_t(a->elem_type));
            out.put(uint64_t(a->items.size()));
            for (size_t i = 0; i < a->items.size(); ++i) {
                const GgufValue& item = a->items[i];
                // GGUF arrays are homogeneous: one element type is stored for all items.
                if (item.type != a->elem_type)
                    fail(what + "[" + std::to_string(i) + "]: element of type " + gguf_value_type_name(item.type) +
                         " in an array of " + gguf_value_type_name(a->elem_type));
                put_value(out, item, what + "[" + std::to_string(i) + "]");
            }
            return;
        }
    }
    fail(what + ": unknown value type " + std::to_string(uint32_t(v.type)));
}

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
    if (alignment < 8 || (alignment & (alignment - 1)) != 0 || alignment > UINT32_MAX)
        fail("alignment " + std::to_string(alignment) + " must be a power of two from 8 to 2^31 (GGUF spec)");
    if (alignment != kDefaultAlignment) set(std::string(gguf_keys::kAlignment), GgufValue::u32(uint32_t(alignment)));
}

void GgufWriter::set(std::string key, GgufValue value) {
    if (key.empty()) fail("metadata key must not be empty");
    for (auto& kv : metadata_) {
        if (kv.key == key) {
            kv.value = std::move(value);
            return;
        }
    }
    metadata_.push_back({std::move(key), std::move(value)});
}

GgufWriter::PendingTensor GgufWriter::checked_tensor(std::string name, GgmlType type, std::vector<int64_t> ne) const {
    const std::string what = "tensor " + name;
    if (name.empty()) fail("tensor name must not be empty");
    for (const auto& t : tensors_)
        if (t.name == name) fail("duplicate tensor name '" + name + "'");
    if (ne.empty() || ne.size() > 4) fail(what + ": " + std::to_string(ne.size()) + " dimensions (must be 1 to 4)");
    const QuantTraits* traits = find_quant_traits(uint32_t(type));
    if (!traits) fail(what + ": unknown tensor type " + std::to_string(uint32_t(type)));
    int64_t n_elements = 1;
    for (int64_t d : ne) {
        if (d <= 0) fail(what + ": dimension " + std::to_string(d) + " (every dimension must be at least 1)");
        if (__builtin_mul_overflow(n_elements, d, &n_elements)) fail(what + ": element count overflows");
    }
    if (ne[0] % traits->block_size != 0)
        fail(what + ": row length " + std::to_string(ne[0]) + " is not a multiple of the " + traits->name +
             " block size " + std::to_string(traits->block_size));
    const auto n_bytes = tensor_bytes(type, uint64_t(n_elements));
    if (!n_bytes) fail(what + ": byte size overflows");
    const uint64_t row_bytes = uint64_t(ne[0] / traits->block_size) * traits->block_bytes;
    return {std::move(name), type, std::move(ne), *n_bytes, row_bytes, nullptr};
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, const void* data,
                            size_t n_bytes) {
    PendingTensor t = checked_tensor(std::move(name), type, std::move(ne));
    if (n_bytes != t.n_bytes)
        fail("tensor " + t.name + ": got " + std::to_string(n_bytes) + " bytes of data, expected " +
             std::to_string(t.n_bytes));
    if (!data) fail("tensor " + t.name + ": no data");
    const auto* p = static_cast<const uint8_t*>(data);
    auto copy = std::make_shared<const std::vector<uint8_t>>(p, p + n_bytes);
    const uint64_t row_bytes = t.row_bytes;
    t.fill = [copy, row_bytes](int64_t first_row, int64_t n_rows, uint8_t* dst) {
        std::memcpy(dst, copy->data() + uint64_t(first_row) * row_bytes, uint64_t(n_rows) * row_bytes);
    };
    tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, TensorRowFill fill) {
    PendingTensor t = checked_tensor(std::move(name), type, std::move(ne));
    if (!fill) fail("tensor " + t.name + ": no fill function");
    t.fill = std::move(fill);
    tensors_.push_back(std::move(t));
}

namespace {

// Everything before the data section: header, metadata, tensor infos, padding.
std::vector<uint8_t> encode_head(uint64_t alignment, const std::vector<GgufKeyValue>& metadata,
                                 const auto& tensors) {
    for (const auto& kv : metadata) {
        if (kv.key != gguf_keys::kAlignment) continue;
        const bool is_u32 = kv.value.type == GgufValueType::UINT32;
        if (!is_u32 || std::get<uint64_t>(kv.value.data) != alignment)
            fail(std::string(gguf_keys::kAlignment) + " = " + kv.value.summary() + " (" +
                 gguf_value_type_name(kv.value.type) + ") disagrees with the writer's alignment " +
                 std::to_string(alignment) + "; pass the alignment to the GgufWriter constructor instead");
    }
    ByteSink out;
    out.put(uint8_t('G'));
    out.put(uint8_t('G'));
    out.put(uint8_t('U'));
    out.put(uint8_t('F'));
    out.put(kVersion);
    out.put(uint64_t(tensors.size()));
    out.put(uint64_t(metadata.size()));
    for (const auto& kv : metadata) {
        out.put_string(kv.key);
        out.put(uint32_t(kv.value.type));
        put_value(out, kv.value, "key '" + kv.key + "'");
    }
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        out.put_string(t.name);
        out.put(uint32_t(t.ne.size()));
        for (int64_t d : t.ne) out.put(d);
        out.put(uint32_t(t.type));
        out.put(offset);
        offset += t.n_bytes;
        offset += (alignment - offset % alignment) % alignment;
    }
    out.pad_to(alignment);
    return std::move(out.bytes);
}

uint64_t padding_after(uint64_t n, uint64_t alignment) { return (alignment - n % alignment) % alignment; }

// Tensor data goes out in chunks of whole rows of about this size.
constexpr uint64_t kChunkBytes = uint64_t(4) << 20;

// The one path every tensor's bytes take: the fill writes a chunk of rows into
// `chunk`, `sink(bytes, n)` takes them, then the zero padding to the alignment.
template <class Sink>
void emit_tensors(const auto& tensors, uint64_t alignment, Sink&& sink) {
    std::vector<uint8_t> chunk;
    static const uint8_t zeros[4096] = {};
    for (const auto& t : tensors) {
        const int64_t n_rows = int64_t(t.n_bytes / t.row_bytes);
        const int64_t rows_per_chunk = std::max<int64_t>(1, int64_t(kChunkBytes / t.row_bytes));
        for (int64_t row = 0; row < n_rows; row += rows_per_chunk) {
            const int64_t n = std::min(rows_per_chunk, n_rows - row);
            const size_t n_bytes = size_t(uint64_t(n) * t.row_bytes);
            if (chunk.size() < n_bytes) chunk.resize(n_bytes);
            t.fill(row, n, chunk.data());
            sink(chunk.data(), n_bytes);
        }
        for (uint64_t pad = padding_after(t.n_bytes, alignment); pad > 0;) {
            const size_t n = size_t(std::min<uint64_t>(pad, sizeof zeros));
            sink(zeros, n);
            pad -= n;
        }
    }
}

}  // namespace

uint64_t GgufWriter::file_size() const {
    uint64_t size = encode_head(alignment_, metadata_, tensors_).size();
    for (const auto& t : tensors_) size += t.n_bytes + padding_after(t.n_bytes, alignment_);
    return size;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
    std::vector<uint8_t> out = encode_head(alignment_, metadata_, tensors_);
    emit_tensors(tensors_, alignment_, [&out](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); });
    return out;
}

void GgufWriter::write(const std::string& path) const {
    const std::vector<uint8_t> head = encode_head(alignment_, metadata_, tensors_);
    // Write beside the target and rename, so a failed write never leaves a half file
    // under the final name.
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw GgufError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
    bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
    int write_errno = ok ? 0 : errno;
    try {
        emit_tensors(tensors_, alignment_, [&](const uint8_t* p, size_t n) {
            if (ok && std::fwrite(p, 1, n, f) != n) {
                ok = false;
                write_errno = errno;
            }
        });
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        write_errno = errno;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        throw GgufError(path + ": write failed: " + std::strerror(write_errno) + " (disk full?)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        throw GgufError(path + ": cannot rename " + tmp + " into place: " + std::strerror(e));
    }
}

}  // namespace kiln
