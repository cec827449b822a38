#pragma once
// Python str operations the templates rely on (strip, split, replace, case
// changes). Case changes cover ASCII only; other characters pass through.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::jinja {

bool is_py_space(char c);
// str.strip / lstrip / rstrip; chars == nullopt strips whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit): sep == nullopt splits on whitespace runs. Throws for an empty sep.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, long long maxsplit);
// str.replace(old, new, count); count < 0 replaces all. max_bytes bounds the result.
std::string py_replace(std::string_view s, std::string_view from, std::string_view to, long long count, size_t max_bytes);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);  // str.title(): a letter after a non-letter starts a word
// str.splitlines() for \n, \r\n and \r.
std::vector<std::string> py_splitlines(std::string_view s);

}  // namespace kiln::jinja
