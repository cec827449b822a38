#include "engine/jinja_text.h"

#include "engine/jinja_error.h"

namespace kiln::jinja {

bool is_py_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\x1c' || c == '\x1d' ||
           c == '\x1e' || c == '\x1f';
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static char to_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
static char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
    auto strip_char = [&](char c) { return chars ? chars->find(c) != std::string::npos : is_py_space(c); };
    size_t b = 0, e = s.size();
    if (left)
        while (b < e && strip_char(s[b])) ++b;
    if (right)
        while (e > b && strip_char(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, long long maxsplit) {
    std::vector<std::string> out;
    if (!sep) {
        size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && is_py_space(s[i])) ++i;
            if (i >= s.size()) break;
            if (maxsplit >= 0 && static_cast<long long>(out.size()) >= maxsplit) {
                size_t e = s.size();
                while (e > i && is_py_space(s[e - 1])) --e;
                out.emplace_back(s.substr(i, e - i));
                break;
            }
            size_t j = i;
            while (j < s.size() && !is_py_space(s[j])) ++j;
            out.emplace_back(s.substr(i, j - i));
            i = j;
        }
        return out;
    }
    if (sep->empty()) throw runtime_error("empty separator");
    size_t start = 0;
    for (;;) {
        if (maxsplit >= 0 && static_cast<long long>(out.size()) >= maxsplit) break;
        size_t p = s.find(*sep, start);
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(start, p - start));
        start = p + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
}

std::string py_replace(std::string_view s, std::string_view from, std::string_view to, long long count, size_t max_bytes) {
    std::string out;
    size_t start = 0;
    long long done = 0;
    auto check = [&] {
        if (out.size() > max_bytes) throw Error(Error::Kind::Limit, "replace() result exceeds the output size limit");
    };
    if (from.empty()) {
        // Python inserts `to` around every character.
        for (size_t i = 0; i <= s.size(); ++i) {
            if (count < 0 || done < count) {
                out += to;
                ++done;
            }
            if (i < s.size()) out += s[i];
            check();
        }
        return out;
    }
    while (count < 0 || done < count) {
        size_t p = s.find(from, start);
        if (p == std::string_view::npos) break;
        out.append(s.substr(start, p - start));
        out.append(to);
        check();
        start = p + from.size();
        ++done;
    }
    out.append(s.substr(start));
    check();
    return out;
}

std::string py_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_upper(c);
    return out;
}

std::string py_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower(c);
    return out;
}

std::string py_capitalize(std::string_view s) {
    std::string out = py_lower(s);
    if (!out.empty()) out[0] = to_upper(out[0]);
    return out;
}

std::string py_title(std::string_view s) {
    std::string out(s);
    bool prev_cased = false;
    for (char& c : out) {
        if (is_alpha(c)) {
            c = prev_cased ? to_lower(c) : to_upper(c);
            prev_cased = true;
        } else {
            // Bytes of non-ASCII letters count as cased (approximation of Python's Unicode rule).
            prev_cased = static_cast<unsigned char>(c) >= 0x80;
        }
    }
    return out;
}

std::vector<std::string> py_splitlines(std::string_view s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' || s[i] == '\r') {
            out.emplace_back(s.substr(start, i - start));
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            start = i + 1;
        }
    }
    if (start < s.size()) out.emplace_back(s.substr(start));
    return out;
}

}  // namespace kiln::jinja
