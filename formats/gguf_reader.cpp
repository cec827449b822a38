// GGUF parsing: header, metadata, tensor infos, data section.
// Layout (little-endian), per https://github.com/ggml-org/ggml/blob/master/docs/gguf.md:
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv x (string key, u32 value type, value),
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset),
//   padding to general.alignment (default 32), then the data section.
// A string is u64 length + bytes (no terminator); an array is u32 element type,
// u64 count, then the elements. Every length read from the file is checked
// against the bytes that remain before anything is allocated or read.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"

namespace kiln {

// The bytes a GgufFile reads: an mmap of a file, or a vector handed to from_bytes.
struct GgufFile::Mapping {
    void* addr = nullptr;
    size_t length = 0;
    std::vector<uint8_t> owned;

    ~Mapping() {
        if (addr) ::munmap(addr, length);
    }
};

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

namespace {

constexpr uint32_t kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;
// Counts are only bounded by the file size, and a parsed value is far larger than its
// encoding; growing past this as elements are actually read keeps a lying count cheap.
constexpr uint64_t kReserveCap = uint64_t(1) << 16;
// A parsed array element takes ~56 bytes against 1 byte on disk for UINT8, so a large
// file could turn one lying array into an OOM kill. The largest real vocabularies
// need ~2M elements in all (tokens + scores + types + merges); refuse beyond 8x that.
constexpr uint64_t kMaxArrayElements = uint64_t(1) << 24;
// Bounds on the header counts before anything is read: each key-value pair and each
// tensor info starts with a u64 string length. Deliberately loose, so that a file that
// is merely short fails later with a message naming the exact field that runs out.
constexpr uint64_t kMinKvBytes = 8;
constexpr uint64_t kMinTensorInfoBytes = 8;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// Key and tensor names come from the file: escape control bytes and cut long ones so an
// error message stays one readable line.
std::string printable(const std::string& s) {
    constexpr size_t kMax = 96;
    std::string out;
    for (size_t i = 0; i < s.size() && i < kMax; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        } else {
            out += char(c);
        }
    }
    if (s.size() > kMax) out += "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

bool is_known_value_type(uint32_t raw) { return raw <= uint32_t(GgufValueType::FLOAT64); }

uint64_t min_value_bytes(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
        case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
        case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
        case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
        case GgufValueType::STRING: return 8;      // the length
        case GgufValueType::ARRAY: return 4 + 8;   // element type + count
    }
    return 1;
}

// Reads little-endian fields from the mapping; every read is bounds-checked.
class Cursor {
public:
    Cursor(const uint8_t* base, uint64_t size, const std::string& file) : base_(base), size_(size), file_(file) {}

    uint64_t pos() const { return pos_; }
    uint64_t array_elements = 0;  // across all metadata arrays, against kMaxArrayElements
    uint64_t remaining() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string& what) const { throw GgufError(file_ + ": " + what); }

    void need(uint64_t n, const std::string& what) const {
        if (n > remaining())
            fail(what + ": needs " + std::to_string(n) + " bytes at offset " + hex(pos_) +
                 " but the file ends at " + hex(size_) + " (truncated file?)");
    }

    template <class T>
    T read(const std::string& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    // `w.str()` names the string in errors; it is only called on failure, so array
    // elements need not build a name each.
    template <class Named>
    std::string read_string(const Named& w) {
        if (remaining() < 8) need(8, w.str() + " length");
        const uint64_t len = read<uint64_t>(std::string());
        if (len > remaining())
            fail(w.str() + ": string length " + std::to_string(len) + " at offset " + hex(pos_ - 8) +
                 " runs past the end of the file (" + std::to_string(remaining()) + " bytes left)");
        std::string s(reinterpret_cast<const char*>(base_ + pos_), size_t(len));
        pos_ += len;
        return s;
    }

private:
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
    const std::string& file_;
};

// A fixed description, for Cursor::read_string.
struct Label {
    std::string text;
    const std::string& str() const { return text; }
};

// Names the value being read ("key 'a'[3][0]") without building a string per array
// element: the text is only made when an error is reported.
struct Where {
    const std::string* key = nullptr;  // set at the root
    const Where* parent = nullptr;     // set for array elements
    uint64_t index = 0;

    std::string str() const {
        return parent ? parent->str() + "[" + std::to_string(index) + "]" : *key;
    }
};

template <class T>
T read_scalar(Cursor& c, const Where& w) {
    if (c.remaining() < sizeof(T)) c.need(sizeof(T), w.str());
    return c.read<T>(std::string());
}

GgufValue read_value(Cursor& c, GgufValueType type, const Where& w, uint32_t depth) {
    switch (type) {
        case GgufValueType::UINT8: return GgufValue::u8(read_scalar<uint8_t>(c, w));
        case GgufValueType::INT8: return GgufValue::i8(read_scalar<int8_t>(c, w));
        case GgufValueType::UINT16: return GgufValue::u16(read_scalar<uint16_t>(c, w));
        case GgufValueType::INT16: return GgufValue::i16(read_scalar<int16_t>(c, w));
        case GgufValueType::UINT32: return GgufValue::u32(read_scalar<uint32_t>(c, w));
        case GgufValueType::INT32: return GgufValue::i32(read_scalar<int32_t>(c, w));
        case GgufValueType::UINT64: return GgufValue::u64(read_scalar<uint64_t>(c, w));
        case GgufValueType::INT64: return GgufValue::i64(read_scalar<int64_t>(c, w));
        case GgufValueType::FLOAT32: return GgufValue::f32(read_scalar<float>(c, w));
        case GgufValueType::FLOAT64: return GgufValue::f64(read_scalar<double>(c, w));
        case GgufValueType::BOOL: {
            const uint8_t b = read_scalar<uint8_t>(c, w);
            if (b > 1) c.fail(w.str() + ": bool value " + std::to_string(b) + " at offset " + hex(c.pos() - 1) + " is not 0 or 1");
            return GgufValue::boolean(b == 1);
        }
        case GgufValueType::STRING: return GgufValue::str(c.read_string(w));
        case GgufValueType::ARRAY: {
            if (depth >= kMaxArrayDepth)
                c.fail(w.str() + ": arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
            if (c.remaining() < 12) c.need(12, w.str() + " array header");
            const uint32_t raw_elem = c.read<uint32_t>(std::string());
            if (!is_known_value_type(raw_elem))
                c.fail(w.str() + ": unknown array element type " + std::to_string(raw_elem) + " (valid GGUF value types are 0..12)");
            const auto elem = GgufValueType(raw_elem);
            const uint64_t count = c.read<uint64_t>(std::string());
            if (count > c.remaining() / min_value_bytes(elem))
                c.fail(w.str() + ": array count " + std::to_string(count) + " of " + gguf_value_type_name(elem) +
                       " cannot fit in the " + std::to_string(c.remaining()) + " bytes left in the file");
            c.array_elements += count;  // no overflow: count fits the file, and so did the sum before it
            if (c.array_elements > kMaxArrayElements)
                c.fail(w.str() + ": metadata arrays hold more than " + std::to_string(kMaxArrayElements) +
                       " elements in all; kiln refuses such files to bound memory (real vocabularies need ~2M)");
            std::vector<GgufValue> items;
            items.reserve(size_t(std::min<uint64_t>(count, kReserveCap)));
            Where element{nullptr, &w, 0};
            for (uint64_t i = 0; i < count; ++i) {
                element.index = i;
                items.push_back(read_value(c, elem, element, depth + 1));
            }
            return GgufValue::array(elem, std::move(items));
        }
    }
    c.fail(w.str() + ": unknown value type " + std::to_string(uint32_t(type)));
}

uint64_t read_alignment(const Cursor& c, const GgufValue& v) {
    const std::string key(gguf_keys::kAlignment);
    switch (v.type) {
        case GgufValueType::UINT8: case GgufValueType::UINT16: case GgufValueType::UINT32: case GgufValueType::UINT64:
            break;
        default:
            c.fail(key + " has type " + gguf_value_type_name(v.type) + "; it must be an unsigned integer (uint32)");
    }
    const uint64_t a = std::get<uint64_t>(v.data);
    if (a == 0 || (a & (a - 1)) != 0)
        c.fail(key + " = " + std::to_string(a) + " is not a power of two");
    // The spec asks for a multiple of 8; smaller would leave F32 data misaligned for the kernels.
    if (a < 8) c.fail(key + " = " + std::to_string(a) + " is below 8 (the GGUF spec requires a multiple of 8)");
    if (a > UINT32_MAX) c.fail(key + " = " + std::to_string(a) + " is larger than a uint32 can hold");
    return a;
}

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
    GgufFile f;
    f.path_ = path;
    f.mapping_ = std::make_unique<Mapping>();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw GgufError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw GgufError(path + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw GgufError(path + ": not a regular file");
    }
    if (st.st_size == 0) {
        ::close(fd);
        throw GgufError(path + ": file is empty (0 bytes), not a GGUF file");
    }
    void* addr = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (addr == MAP_FAILED) throw GgufError(path + ": cannot map into memory: " + std::strerror(e));
    f.mapping_->addr = addr;
    f.mapping_->length = size_t(st.st_size);
    f.base_ = static_cast<const uint8_t*>(addr);
    f.size_ = uint64_t(st.st_size);
    f.parse();
    return f;
}

void GgufFile::release_pages(const uint8_t* data, uint64_t n_bytes) const {
    if (!mapping_ || !mapping_->addr || data < base_ || n_bytes > size_ || uint64_t(data - base_) > size_ - n_bytes) return;
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    // Only pages wholly inside the tensor: its neighbours may still be in use.
    const uintptr_t begin = (uintptr_t(data) + page - 1) / page * page;
    const uintptr_t end = (uintptr_t(data) + n_bytes) / page * page;
    // MADV_DONTNEED on a read-only private file mapping drops the pages; advice
    // that fails only leaves them resident, so its result is not an error.
    if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

GgufFile GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
    GgufFile f;
    f.path_ = std::move(name);
    f.mapping_ = std::make_unique<Mapping>();
    f.mapping_->owned = std::move(bytes);
    f.base_ = f.mapping_->owned.data();
    f.size_ = f.mapping_->owned.size();
    if (f.size_ == 0) throw GgufError(f.path_ + ": file is empty (0 bytes), not a GGUF file");
    f.parse();
    return f;
}

void GgufFile::parse() {
    Cursor c(base_, size_, path_);
    std::string current = "header";  // what was being read, for out-of-memory reports
    try {
        // ---- header
        c.need(4, "magic");
        if (std::memcmp(base_, "GGUF", 4) != 0) {
            std::string seen;
            for (int i = 0; i < 4; ++i) seen += (base_[i] >= 0x20 && base_[i] < 0x7f) ? char(base_[i]) : '?';
            c.fail("bad magic '" + seen + "' (expected 'GGUF'): not a GGUF file");
        }
        c.read<uint32_t>("magic");
        version_ = c.read<uint32_t>("version");
        if (version_ == 1)
            c.fail("GGUF version 1 is not supported (an obsolete 2023 format); re-convert the model with a current llama.cpp");
        if (version_ != 2 && version_ != 3) {
            if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)
                c.fail("big-endian GGUF files are not supported; use a little-endian conversion of the model");
            c.fail("unknown GGUF version " + std::to_string(version_) + " (kiln reads versions 2 and 3)");
        }
        const uint64_t n_tensors = c.read<uint64_t>("tensor count");
        const uint64_t n_kv = c.read<uint64_t>("metadata count");
        if (n_kv > c.remaining() / kMinKvBytes)
            c.fail("header claims n_kv = " + std::to_string(n_kv) + " key-value pairs, which cannot fit in the " +
                   std::to_string(c.remaining()) + " bytes left in the file");
        if (n_tensors > c.remaining() / kMinTensorInfoBytes)
            c.fail("header claims n_tensors = " + std::to_string(n_tensors) + " tensors, which cannot fit in the " +
                   std::to_string(c.remaining()) + " bytes left in the file");
        uint64_t min_total = 0;
        if (__builtin_add_overflow(n_kv * kMinKvBytes, n_tensors * kMinTensorInfoBytes, &min_total) ||
            min_total > c.remaining())
            c.fail("header counts n_kv = " + std::to_string(n_kv) + " and n_tensors = " + std::to_string(n_tensors) +
                   " cannot fit in the " + std::to_string(c.remaining()) + " bytes left in the file");

        // ---- metadata
        std::unordered_set<std::string> keys;
        metadata_.reserve(size_t(std::min<uint64_t>(n_kv, kReserveCap)));
        for (uint64_t i = 0; i < n_kv; ++i) {
            current = "metadata pair " + std::to_string(i);
            std::string key = c.read_string(Label{"key of " + current});
            if (key.empty()) c.fail(current + " has an empty key");
            current = "key '" + printable(key) + "'";
            if (!keys.insert(key).second) c.fail("duplicate " + current);
            const uint32_t raw_type = c.read<uint32_t>("type of " + current);
            if (!is_known_value_type(raw_type))
                c.fail(current + " has unknown value type " + std::to_string(raw_type) + " (valid GGUF value types are 0..12)");
            GgufValue value = read_value(c, GgufValueType(raw_type), Where{&current}, 0);
            if (key == gguf_keys::kAlignment) alignment_ = read_alignment(c, value);
            metadata_.push_back({std::move(key), std::move(value)});
        }

        // ---- tensor infos
        std::unordered_set<std::string> names;
        tensors_.reserve(size_t(std::min<uint64_t>(n_tensors, kReserveCap)));
        for (uint64_t i = 0; i < n_tensors; ++i) {
            current = "tensor info " + std::to_string(i);
            GgufTensorInfo t{};
            t.name = c.read_string(Label{"name of " + current});
            if (t.name.empty()) c.fail(current + " has an empty name");
            current = "tensor " + printable(t.name);
            if (!names.insert(t.name).second) c.fail("duplicate tensor name '" + printable(t.name) + "'");
            t.n_dims = c.read<uint32_t>(current + " n_dims");
            if (t.n_dims == 0 || t.n_dims > kMaxDims)
                c.fail(current + ": invalid number of dimensions " + std::to_string(t.n_dims) + " (must be 1 to 4)");
            t.ne = {1, 1, 1, 1};
            int64_t n_elements = 1;
            for (uint32_t d = 0; d < t.n_dims; ++d) {
                const int64_t ne = c.read<int64_t>(current + " ne[" + std::to_string(d) + "]");
                if (ne <= 0)
                    c.fail(current + ": dimension ne[" + std::to_string(d) + "] = " + std::to_string(ne) +
                           " (every dimension must be at least 1)");
                if (__builtin_mul_overflow(n_elements, ne, &n_elements))
                    c.fail(current + ": element count overflows (dimension product exceeds 2^63)");
                t.ne[d] = ne;
            }
            const uint32_t raw_type = c.read<uint32_t>(current + " type");
            const QuantTraits* traits = find_quant_traits(raw_type);
            if (!traits) c.fail(current + ": unknown tensor type " + std::to_string(raw_type));
            t.type = traits->type;
            if (t.ne[0] % traits->block_size != 0)
                c.fail(current + ": row length ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                       traits->name + " block size " + std::to_string(traits->block_size));
            const auto n_bytes = tensor_bytes(t.type, uint64_t(n_elements));
            if (!n_bytes) c.fail(current + ": byte size overflows");
            t.n_bytes = *n_bytes;
            t.offset = c.read<uint64_t>(current + " offset");
            if (t.offset % alignment_ != 0)
                c.fail(current + ": data offset " + hex(t.offset) + " is not a multiple of the alignment " +
                       std::to_string(alignment_));
            tensors_.push_back(std::move(t));
        }

        // ---- data section
        current = "data section";
        const uint64_t pad = (alignment_ - c.pos() % alignment_) % alignment_;
        if (__builtin_add_overflow(c.pos(), pad, &data_offset_)) c.fail("data section offset overflows");
        if (!tensors_.empty() && data_offset_ > size_)
            c.fail("data section starts at " + hex(data_offset_) + " (alignment " + std::to_string(alignment_) +
                   "), beyond the end of the file (size " + std::to_string(size_) + ")");
        for (GgufTensorInfo& t : tensors_) {
            uint64_t begin = 0, end = 0;
            if (__builtin_add_overflow(data_offset_, t.offset, &begin) || __builtin_add_overflow(begin, t.n_bytes, &end) ||
                end > size_)
                c.fail("tensor " + printable(t.name) + ": data range " + hex(t.offset) + "+" + std::to_string(t.n_bytes) +
                       " bytes beyond end of file (size " + std::to_string(size_) + ", data section at " +
                       hex(data_offset_) + "); the file is truncated or corrupt");
            t.data = base_ + begin;
        }
        std::vector<const GgufTensorInfo*> by_offset;
        by_offset.reserve(tensors_.size());
        for (const auto& t : tensors_) by_offset.push_back(&t);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
        for (size_t i = 1; i < by_offset.size(); ++i) {
            const GgufTensorInfo& prev = *by_offset[i - 1];
            const GgufTensorInfo& cur = *by_offset[i];
            if (cur.offset < prev.offset + prev.n_bytes)  // no overflow: both ranges are inside the file
                c.fail("tensors " + printable(prev.name) + " and " + printable(cur.name) + " overlap (data at " + hex(prev.offset) + "+" +
                       std::to_string(prev.n_bytes) + " and " + hex(cur.offset) + ")");
        }
    } catch (const std::bad_alloc&) {
        throw GgufError(path_ + ": out of memory while reading " + current + "; the file's counts are implausibly large");
    } catch (const std::length_error&) {
        throw GgufError(path_ + ": size too large while reading " + current);
    }
}

}  // namespace kiln
