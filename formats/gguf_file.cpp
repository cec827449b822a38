// GgufFile lookups: metadata by key (typed) and tensors by name.
#include "formats/gguf.h"

namespace kiln {

const GgufValue* GgufFile::find(std::string_view key) const {
    for (const auto& kv : metadata_)
        if (kv.key == key) return &kv.value;
    return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

std::string describe(const std::string& file, std::string_view key) {
    return file + ": metadata key " + std::string(key);
}

// Applies `read` to every element of an array, naming the element in errors.
template <class T, class Read>
std::optional<std::vector<T>> read_array(const GgufFile& f, std::string_view key, Read read) {
    const GgufValue* v = f.find(key);
    if (!v) return std::nullopt;
    const std::string what = describe(f.path(), key);
    const GgufArray& a = v->as_array(what);
    std::vector<T> out;
    out.reserve(a.items.size());
    for (size_t i = 0; i < a.items.size(); ++i) {
        try {
            out.push_back(read(a.items[i], what));
        } catch (const GgufError&) {
            // Rare path: read again so the message names the element (not built per element:
            // vocabularies have 100k+ entries).
            read(a.items[i], what + "[" + std::to_string(i) + "]");
            throw;
        }
    }
    return out;
}

}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    return v->as_int(describe(path_, key));
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    return v->as_uint(describe(path_, key));
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    return v->as_float(describe(path_, key));
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    return v->as_bool(describe(path_, key));
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    return v->as_string(describe(path_, key));
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
    return read_array<std::string>(*this, key,
                                   [](const GgufValue& e, const std::string& what) { return e.as_string(what); });
}

std::optional<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
    return read_array<float>(*this, key,
                             [](const GgufValue& e, const std::string& what) { return float(e.as_float(what)); });
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
    return read_array<int64_t>(*this, key,
                               [](const GgufValue& e, const std::string& what) { return e.as_int(what); });
}

}  // namespace kiln
