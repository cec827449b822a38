#include "engine/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/jinja_error.h"

namespace kiln::jinja {

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : entries)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(const std::string& key, Value value) {
    for (auto& [k, v] : entries)
        if (k == key) {
            v = std::move(value);
            return;
        }
    entries.emplace_back(key, std::move(value));
}

const Value* CallArgs::keyword_arg(std::string_view name) const {
    for (const auto& [k, v] : keyword)
        if (k == name) return &v;
    return nullptr;
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
    if (index < positional.size()) return &positional[index];
    return keyword_arg(name);
}

const void* Value::identity() const {
    switch (kind()) {
        case Kind::List: return &as_list();
        case Kind::Dict: return &as_dict();
        case Kind::Namespace: return &as_namespace();
        case Kind::Callable: return &as_callable();
        default: return nullptr;
    }
}

bool Value::truthy() const {
    switch (kind()) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return as_bool();
        case Kind::Int: return as_int() != 0;
        case Kind::Float: return as_float() != 0.0;
        case Kind::String: return !as_string().empty();
        case Kind::List: return !as_list().empty();
        case Kind::Dict: return as_dict().size() != 0;
        case Kind::Namespace:
        case Kind::Callable: return true;
    }
    return false;
}

std::string type_name(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return "Undefined";
        case Value::Kind::None: return "NoneType";
        case Value::Kind::Bool: return "bool";
        case Value::Kind::Int: return "int";
        case Value::Kind::Float: return "float";
        case Value::Kind::String: return "str";
        case Value::Kind::List: return "list";
        case Value::Kind::Dict: return "dict";
        case Value::Kind::Namespace: return "Namespace";
        case Value::Kind::Callable: return "function";
    }
    return "object";
}

std::string format_float(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    // sci is "[-]d[.ddd]e[+-]XX": split into sign, digits and decimal exponent.
    std::string sign;
    size_t pos = 0;
    if (sci[0] == '-') {
        sign = "-";
        pos = 1;
    }
    size_t e = sci.find('e');
    std::string digits;
    for (size_t i = pos; i < e; ++i)
        if (sci[i] != '.') digits += sci[i];
    int exp = std::stoi(sci.substr(e + 1));
    // Python's repr switches to exponent notation outside 1e-4 <= |d| < 1e16.
    if (exp < -4 || exp >= 16) {
        std::string m = digits.substr(0, 1);
        if (digits.size() > 1) m += "." + digits.substr(1);
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return sign + m + eb;
    }
    std::string out;
    if (exp < 0) {
        out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
        out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
        out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
    }
    return sign + out;
}

static std::string repr_string(const std::string& s) {
    char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, quote);
    for (unsigned char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == static_cast<unsigned char>(quote)) { out += '\\'; out += static_cast<char>(c); }
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        } else out += static_cast<char>(c);
    }
    out += quote;
    return out;
}

std::string repr(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::String: return repr_string(v.as_string());
        case Value::Kind::List: {
            std::string out = "[";
            bool first = true;
            for (const auto& item : v.as_list()) {
                if (!first) out += ", ";
                first = false;
                out += repr(item);
            }
            return out + "]";
        }
        case Value::Kind::Dict: {
            std::string out = "{";
            bool first = true;
            for (const auto& [k, item] : v.as_dict().entries) {
                if (!first) out += ", ";
                first = false;
                out += repr_string(k) + ": " + repr(item);
            }
            return out + "}";
        }
        default: return to_str(v);
    }
}

std::string to_str(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return "";
        case Value::Kind::None: return "None";
        case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
        case Value::Kind::Int: return std::to_string(v.as_int());
        case Value::Kind::Float: return format_float(v.as_float());
        case Value::Kind::String: return v.as_string();
        case Value::Kind::List:
        case Value::Kind::Dict: return repr(v);
        case Value::Kind::Namespace: return "<Namespace " + repr(Value(v.as_namespace().attrs)) + ">";
        case Value::Kind::Callable: return "<function " + v.as_callable().name + ">";
    }
    return "";
}

bool equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
        return a.to_int() == b.to_int();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::Undefined:
        case Value::Kind::None: return true;
        case Value::Kind::String: return a.as_string() == b.as_string();
        case Value::Kind::List: {
            const auto &x = a.as_list(), &y = b.as_list();
            if (x.size() != y.size()) return false;
            for (size_t i = 0; i < x.size(); ++i)
                if (!equals(x[i], y[i])) return false;
            return true;
        }
        case Value::Kind::Dict: {
            const auto &x = a.as_dict(), &y = b.as_dict();
            if (x.size() != y.size()) return false;
            for (const auto& [k, item] : x.entries) {
                const Value* other = y.find(k);
                if (!other || !equals(item, *other)) return false;
            }
            return true;
        }
        default: return a.identity() == b.identity();
    }
}

int compare(const Value& a, const Value& b) {
    if (a.is_undefined()) throw runtime_error(a.undefined_hint());
    if (b.is_undefined()) throw runtime_error(b.undefined_hint());
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) {
            double x = a.to_double(), y = b.to_double();
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        int64_t x = a.to_int(), y = b.to_int();
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
        int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is_list() && b.is_list()) {
        const auto &x = a.as_list(), &y = b.as_list();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i)
            if (int c = compare(x[i], y[i])) return c;
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    throw runtime_error("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

// ---- JSON -------------------------------------------------------------------

static void append_utf16_escape(std::string& out, unsigned cp) {
    char b[8];
    std::snprintf(b, sizeof b, "\\u%04x", cp);
    out += b;
}

static void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            case '\b': out += "\\b"; continue;
            case '\f': out += "\\f"; continue;
            default: break;
        }
        if (c < 0x20) {
            append_utf16_escape(out, c);
        } else if (c < 0x80 || !ensure_ascii) {
            out += static_cast<char>(c);
        } else {
            // Decode one UTF-8 sequence; write it as \uXXXX (a surrogate pair above the BMP).
            int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            unsigned cp = len == 4 ? (c & 0x07u) : len == 3 ? (c & 0x0Fu) : len == 2 ? (c & 0x1Fu) : c;
            for (int k = 1; k < len && i + 1 < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3Fu);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                append_utf16_escape(out, 0xD800 + (cp >> 10));
                append_utf16_escape(out, 0xDC00 + (cp & 0x3FF));
            } else {
                append_utf16_escape(out, cp);
            }
        }
    }
    out += '"';
}

static void json_value(std::string& out, const Value& v, const JsonFormat& f, int depth) {
    if (depth > 512) throw runtime_error("tojson: value nested too deeply");
    auto newline = [&](int d) {
        if (f.indent < 0) return;
        out += '\n';
        out.append(static_cast<size_t>(f.indent) * static_cast<size_t>(d), ' ');
    };
    switch (v.kind()) {
        case Value::Kind::None: out += "null"; return;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Value::Kind::Int: out += std::to_string(v.as_int()); return;
        case Value::Kind::Float: {
            double d = v.as_float();
            if (std::isnan(d)) out += "NaN";
            else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
            else out += format_float(d);
            return;
        }
        case Value::Kind::String: json_string(out, v.as_string(), f.ensure_ascii); return;
        case Value::Kind::List: {
            const auto& items = v.as_list();
            if (items.empty()) { out += "[]"; return; }
            out += '[';
            for (size_t i = 0; i < items.size(); ++i) {
                if (i) out += f.item_separator;
                newline(depth + 1);
                json_value(out, items[i], f, depth + 1);
            }
            newline(depth);
            out += ']';
            return;
        }
        case Value::Kind::Dict: {
            std::vector<const std::pair<std::string, Value>*> entries;
            for (const auto& e : v.as_dict().entries) entries.push_back(&e);
            if (entries.empty()) { out += "{}"; return; }
            if (f.sort_keys)
                std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
            out += '{';
            for (size_t i = 0; i < entries.size(); ++i) {
                if (i) out += f.item_separator;
                newline(depth + 1);
                json_string(out, entries[i]->first, f.ensure_ascii);
                out += f.key_separator;
                json_value(out, entries[i]->second, f, depth + 1);
            }
            newline(depth);
            out += '}';
            return;
        }
        case Value::Kind::Undefined:
            throw runtime_error(v.undefined_hint().empty() ? "Object of type Undefined is not JSON serializable"
                                                           : v.undefined_hint());
        default: throw runtime_error("Object of type " + type_name(v) + " is not JSON serializable");
    }
}

std::string to_json(const Value& v, const JsonFormat& format) {
    std::string out;
    json_value(out, v, format, 0);
    return out;
}

template <class Json>
static Value from_json_impl(const Json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::null: return Value(nullptr);
        case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
        case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            auto u = j.template get<uint64_t>();
            if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
            return Value(static_cast<int64_t>(u));
        }
        case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
        case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
        case nlohmann::json::value_t::array: {
            List items;
            items.reserve(j.size());
            for (const auto& item : j) items.push_back(from_json_impl(item));
            return Value(std::move(items));
        }
        case nlohmann::json::value_t::object: {
            Dict d;
            d.entries.reserve(j.size());
            for (auto it = j.begin(); it != j.end(); ++it) d.entries.emplace_back(it.key(), from_json_impl(it.value()));
            return Value(std::move(d));
        }
        default: return Value(nullptr);  // binary / discarded: nothing a template can use
    }
}

Value from_json(const nlohmann::json& j) { return from_json_impl(j); }
Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }

static size_t utf8_seq_len(unsigned char c) {
    if (c >= 0xF0 && c < 0xF8) return 4;
    if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
    if (c >= 0xC0) return 2;
    return 1;
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
    std::vector<std::string_view> out;
    for (size_t i = 0; i < s.size();) {
        size_t n = std::min(utf8_seq_len(static_cast<unsigned char>(s[i])), s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++n) i += std::min(utf8_seq_len(static_cast<unsigned char>(s[i])), s.size() - i);
    return n;
}

}  // namespace kiln::jinja
