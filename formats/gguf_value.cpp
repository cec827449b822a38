// GgufValue: typed reads and the short rendering `kiln info` prints.
#include <charconv>
#include <cstdio>
#include <limits>

#include "formats/gguf.h"

namespace kiln {

const char* gguf_value_type_name(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: return "uint8";
        case GgufValueType::INT8: return "int8";
        case GgufValueType::UINT16: return "uint16";
        case GgufValueType::INT16: return "int16";
        case GgufValueType::UINT32: return "uint32";
        case GgufValueType::INT32: return "int32";
        case GgufValueType::FLOAT32: return "float32";
        case GgufValueType::BOOL: return "bool";
        case GgufValueType::STRING: return "string";
        case GgufValueType::ARRAY: return "array";
        case GgufValueType::UINT64: return "uint64";
        case GgufValueType::INT64: return "int64";
        case GgufValueType::FLOAT64: return "float64";
    }
    return "unknown";
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::UINT16:
        case GgufValueType::INT16: case GgufValueType::UINT32: case GgufValueType::INT32:
        case GgufValueType::UINT64: case GgufValueType::INT64:
            return true;
        default:
            return false;
    }
}

namespace {

[[noreturn]] void mismatch(std::string_view what, const char* expected, const GgufValue& v) {
    throw GgufError(std::string(what) + ": expected " + expected + ", found " + gguf_value_type_name(v.type) +
                    " " + v.summary());
}

// Floats print in their shortest round-tripping form at the width the file stored,
// so 1e-5f reads "1e-05" and not "9.99999974738e-06".
std::string format_float(const GgufValue& v) {
    char buf[64];
    const double d = std::get<double>(v.data);
    std::to_chars_result r = v.type == GgufValueType::FLOAT32 ? std::to_chars(buf, buf + sizeof buf, float(d))
                                                               : std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

std::string quote(const std::string& s, size_t max_chars) {
    std::string out = "\"";
    size_t shown = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (shown >= max_chars) {
            out += "...";
            break;
        }
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        } else out += char(c);
        // Count characters, not bytes, so a cut never splits a UTF-8 sequence mid-way.
        if (i + 1 >= s.size() || (static_cast<unsigned char>(s[i + 1]) & 0xC0) != 0x80) ++shown;
    }
    return out + "\"";
}

}  // namespace

int64_t GgufValue::as_int(std::string_view what) const {
    if (!is_integer()) mismatch(what, "an integer", *this);
    if (const auto* u = std::get_if<uint64_t>(&data)) {
        if (*u > uint64_t(std::numeric_limits<int64_t>::max()))
            throw GgufError(std::string(what) + ": value " + std::to_string(*u) + " does not fit in a signed 64-bit integer");
        return int64_t(*u);
    }
    return std::get<int64_t>(data);
}

uint64_t GgufValue::as_uint(std::string_view what) const {
    if (!is_integer()) mismatch(what, "an unsigned integer", *this);
    if (const auto* i = std::get_if<int64_t>(&data)) {
        if (*i < 0)
            throw GgufError(std::string(what) + ": value " + std::to_string(*i) + " is negative where an unsigned integer is expected");
        return uint64_t(*i);
    }
    return std::get<uint64_t>(data);
}

double GgufValue::as_float(std::string_view what) const {
    if (is_float()) return std::get<double>(data);
    if (const auto* u = std::get_if<uint64_t>(&data); u && is_integer()) return double(*u);
    if (const auto* i = std::get_if<int64_t>(&data); i && is_integer()) return double(*i);
    mismatch(what, "a number", *this);
}

bool GgufValue::as_bool(std::string_view what) const {
    if (type != GgufValueType::BOOL) mismatch(what, "a bool", *this);
    return std::get<bool>(data);
}

const std::string& GgufValue::as_string(std::string_view what) const {
    if (type != GgufValueType::STRING) mismatch(what, "a string", *this);
    return std::get<std::string>(data);
}

const GgufArray& GgufValue::as_array(std::string_view what) const {
    if (type != GgufValueType::ARRAY) mismatch(what, "an array", *this);
    return std::get<GgufArray>(data);
}

std::string GgufValue::summary() const {
    if (const auto* u = std::get_if<uint64_t>(&data)) return std::to_string(*u);
    if (const auto* i = std::get_if<int64_t>(&data)) return std::to_string(*i);
    if (std::holds_alternative<double>(data)) return format_float(*this);
    if (const auto* b = std::get_if<bool>(&data)) return *b ? "true" : "false";
    if (const auto* s = std::get_if<std::string>(&data)) return quote(*s, 60);
    const GgufArray& a = std::get<GgufArray>(data);
    // Short arrays of numbers are shown whole; long ones and strings by count.
    const bool scalar = a.elem_type != GgufValueType::STRING && a.elem_type != GgufValueType::ARRAY;
    if (scalar && a.items.size() <= 8) {
        std::string out = "[";
        for (size_t i = 0; i < a.items.size(); ++i) {
            if (i) out += ", ";
            out += a.items[i].summary();
        }
        return out + "]";
    }
    std::string kind = a.elem_type == GgufValueType::STRING  ? "strings"
                       : a.elem_type == GgufValueType::ARRAY ? "arrays"
                                                            : gguf_value_type_name(a.elem_type);
    std::string out = "[";
    out += std::to_string(a.items.size());
    out += ' ';
    out += kind;
    out += ']';
    return out;
}

}  // namespace kiln
