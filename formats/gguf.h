#pragma once
// GGUF v2/v3 reader: memory-maps a file, validates every count, length and
// offset against the mapping, and exposes metadata plus zero-copy tensor views.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "formats/ggml_type.h"

namespace kiln {

// Every problem with a GGUF file. The message names the file and what is wrong.
class GgufError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class GgufValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5,
    FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

struct GgufValue;
struct GgufArray {
    GgufValueType elem_type = GgufValueType::UINT8;
    std::vector<GgufValue> items;  // nested arrays are legal GGUF
};

// One metadata value. Integers are widened (sign kept), floats widened to double;
// `type` remembers what the file stored so a writer can round-trip it.
struct GgufValue {
    GgufValueType type = GgufValueType::UINT8;
    std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> data;

    static GgufValue u8(uint8_t v) { return {GgufValueType::UINT8, uint64_t(v)}; }
    static GgufValue u16(uint16_t v) { return {GgufValueType::UINT16, uint64_t(v)}; }
    static GgufValue u32(uint32_t v) { return {GgufValueType::UINT32, uint64_t(v)}; }
    static GgufValue u64(uint64_t v) { return {GgufValueType::UINT64, v}; }
    static GgufValue i8(int8_t v) { return {GgufValueType::INT8, int64_t(v)}; }
    static GgufValue i16(int16_t v) { return {GgufValueType::INT16, int64_t(v)}; }
    static GgufValue i32(int32_t v) { return {GgufValueType::INT32, int64_t(v)}; }
    static GgufValue i64(int64_t v) { return {GgufValueType::INT64, v}; }
    static GgufValue f32(float v) { return {GgufValueType::FLOAT32, double(v)}; }
    static GgufValue f64(double v) { return {GgufValueType::FLOAT64, v}; }
    static GgufValue boolean(bool v) { return {GgufValueType::BOOL, v}; }
    static GgufValue str(std::string v) { return {GgufValueType::STRING, std::move(v)}; }
    static GgufValue array(GgufValueType elem, std::vector<GgufValue> items) {
        return {GgufValueType::ARRAY, GgufArray{elem, std::move(items)}};
    }

    bool is_integer() const;
    bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
    // Typed reads; throw GgufError naming `what` (usually the key) on a type mismatch
    // or an integer that does not fit.
    int64_t as_int(std::string_view what) const;
    uint64_t as_uint(std::string_view what) const;
    double as_float(std::string_view what) const;  // accepts integers too
    bool as_bool(std::string_view what) const;
    const std::string& as_string(std::string_view what) const;
    const GgufArray& as_array(std::string_view what) const;
    // Short human rendering for `kiln info` ("[32000 strings]", "10000", "\"llama\"").
    std::string summary() const;
};

struct GgufKeyValue {
    std::string key;
    GgufValue value;
};

struct GgufTensorInfo {
    std::string name;
    GgmlType type;
    uint32_t n_dims;
    std::array<int64_t, 4> ne;  // ne[0] is the contiguous (row) dimension; unused dims are 1
    uint64_t offset;            // relative to the start of the data section
    uint64_t n_bytes;
    const uint8_t* data;        // into the mapping; valid while the GgufFile lives

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
public:
    // Maps and validates `path`; throws GgufError with the file name in the message.
    static GgufFile open(const std::string& path);
    // Parses bytes already in memory (tests); `name` is used in error messages.
    static GgufFile from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    ~GgufFile();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
    uint64_t file_size() const { return size_; }

    const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;  // nullptr when absent

    // Typed metadata lookups: nullopt when absent, GgufError when present with the wrong type.
    std::optional<int64_t> get_int(std::string_view key) const;
    std::optional<uint64_t> get_uint(std::string_view key) const;
    std::optional<double> get_float(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    std::optional<std::string> get_string(std::string_view key) const;
    // Arrays of scalars/strings; nullopt when absent, GgufError on wrong element type.
    std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
    std::optional<std::vector<float>> get_float_array(std::string_view key) const;
    std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent

    // Tells the kernel that [data, data + n_bytes) of the mapping will not be read
    // soon (a backend keeps its own copy of that tensor): the whole pages inside it
    // leave this process's resident memory, and a later read faults them back in
    // from the file. Does nothing for from_bytes files.
    void release_pages(const uint8_t* data, uint64_t n_bytes) const;

private:
    struct Mapping;
    GgufFile() = default;
    void parse();

    std::string path_;
    std::unique_ptr<Mapping> mapping_;
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GgufKeyValue> metadata_;
    std::vector<GgufTensorInfo> tensors_;
};

// Produces rows [first_row, first_row + n_rows) of a tensor into `dst`
// (n_rows rows of ne[0] elements, encoded in the tensor's type). The writer
// calls it at write time over consecutive ranges, first row to last, so a
// generator may carry state (an RNG stream) from one call to the next.
using TensorRowFill = std::function<void(int64_t first_row, int64_t n_rows, uint8_t* dst)>;

// Writes GGUF v3. Tensors are laid out in insertion order, each aligned to `alignment`.
// Tensor data is written in chunks of whole rows, so a tensor added with a
// TensorRowFill never needs to be held in memory whole.
class GgufWriter {
public:
    explicit GgufWriter(uint64_t alignment = 32);

    void set(std::string key, GgufValue value);  // replaces an existing key, keeps order
    // `data` must hold exactly tensor_bytes(type, product of ne) bytes; copied.
    void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne,
                    const void* data, size_t n_bytes);
    // Data produced by `fill` while writing.
    void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, TensorRowFill fill);

    uint64_t file_size() const;  // bytes that to_bytes() / write() produce
    std::vector<uint8_t> to_bytes() const;
    void write(const std::string& path) const;  // throws GgufError on I/O failure; rethrows what a fill throws

private:
    struct PendingTensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        uint64_t n_bytes;
        uint64_t row_bytes;  // bytes of ne[0] elements
        TensorRowFill fill;
    };
    // Validates name, type and shape; the result has no fill yet.
    PendingTensor checked_tensor(std::string name, GgmlType type, std::vector<int64_t> ne) const;
    uint64_t alignment_;
    std::vector<GgufKeyValue> metadata_;
    std::vector<PendingTensor> tensors_;
};

}  // namespace kiln
