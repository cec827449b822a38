// Jinja filters (`x | name(args)`) as jinja2 3.1 defines them, except tojson,
// which follows Hugging Face transformers' override: json.dumps(x,
// ensure_ascii=False, indent=indent, separators=separators, sort_keys=False),
// without jinja2's HTML escaping and key sorting.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "engine/jinja_builtins.h"
#include "engine/jinja_error.h"
#include "engine/jinja_interpreter.h"
#include "engine/jinja_text.h"

namespace kiln::jinja {
namespace {

bool flag(const CallArgs& a, size_t index, std::string_view name, bool def) {
    const Value* v = a.get(index, name);
    return v ? v->truthy() : def;
}

const Value* opt(const CallArgs& a, size_t index, std::string_view name) {
    const Value* v = a.get(index, name);
    return v && !v->is_none() ? v : nullptr;
}

std::string subject_string(const Value& v) { return to_str(v); }

// `attribute="a.b.0"`: dotted path of keys / indices, as jinja2's make_attrgetter.
Value get_path(Interpreter& in, Value v, const std::string& path) {
    size_t start = 0;
    for (;;) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos)
            v = in.get_item(v, Value(static_cast<int64_t>(std::stoll(part))));
        else
            v = in.get_item(v, Value(part));
        if (dot == std::string::npos) return v;
        start = dot + 1;
    }
}

Value attribute_of(Interpreter& in, const Value& item, const Value* attribute) {
    if (!attribute) return item;
    if (attribute->is_int()) return in.get_item(item, *attribute);
    return get_path(in, item, to_str(*attribute));
}

// Sort key for case-insensitive comparisons (jinja2's ignore_case).
Value fold_case(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value(py_lower(v.as_string()));
    return v;
}

Value f_abs(Interpreter&, const Value& v, const CallArgs&) {
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) {
        int64_t i = v.to_int();
        if (i == INT64_MIN) throw runtime_error("integer overflow");
        return Value(i < 0 ? -i : i);
    }
    throw runtime_error("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(Interpreter& in, const Value& v, const CallArgs& a) {
    const Value* name = a.get(0, "name");
    if (!name || !name->is_string()) throw runtime_error("attr() needs an attribute name");
    return in.get_attribute(v, name->as_string());
}

Value f_capitalize(Interpreter&, const Value& v, const CallArgs&) { return Value(py_capitalize(subject_string(v))); }
Value f_lower(Interpreter&, const Value& v, const CallArgs&) { return Value(py_lower(subject_string(v))); }
Value f_upper(Interpreter&, const Value& v, const CallArgs&) { return Value(py_upper(subject_string(v))); }

// jinja2's title: split at runs of whitespace, '-', and opening brackets; capitalize each piece.
Value f_title(Interpreter&, const Value& v, const CallArgs&) {
    std::string s = subject_string(v), out;
    auto is_sep = [](char c) { return is_py_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
    size_t i = 0;
    while (i < s.size()) {
        size_t j = i;
        bool sep = is_sep(s[i]);
        while (j < s.size() && is_sep(s[j]) == sep) ++j;
        out += py_capitalize(s.substr(i, j - i));
        i = j;
    }
    return Value(out);
}

Value f_length(Interpreter&, const Value& v, const CallArgs&) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return Value(int64_t{0});
        case Value::Kind::String: return Value(static_cast<int64_t>(utf8_length(v.as_string())));
        case Value::Kind::List: return Value(static_cast<int64_t>(v.as_list().size()));
        case Value::Kind::Dict: return Value(static_cast<int64_t>(v.as_dict().size()));
        default: throw runtime_error("object of type '" + type_name(v) + "' has no len()");
    }
}

Value f_default(Interpreter&, const Value& v, const CallArgs& a) {
    bool boolean = flag(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
        const Value* d = a.get(0, "default_value");
        return d ? *d : Value(std::string());
    }
    return v;
}

Value f_first(Interpreter& in, const Value& v, const CallArgs&) {
    List items = in.iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return items.front();
}

Value f_last(Interpreter& in, const Value& v, const CallArgs&) {
    List items = in.iterate(v);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
}

Value f_join(Interpreter& in, const Value& v, const CallArgs& a) {
    const Value* sep = a.get(0, "d");
    const Value* attribute = opt(a, 1, "attribute");
    std::string d = sep ? to_str(*sep) : std::string(), out;
    bool first = true;
    for (const auto& item : in.iterate(v)) {
        if (!first) out += d;
        first = false;
        out += to_str(attribute_of(in, item, attribute));
        in.check_size(out.size());
    }
    return Value(std::move(out));
}

Value f_trim(Interpreter&, const Value& v, const CallArgs& a) {
    const Value* chars = opt(a, 0, "chars");
    return Value(py_strip(subject_string(v), chars ? std::optional<std::string>(to_str(*chars)) : std::nullopt, true, true));
}

Value f_replace(Interpreter& in, const Value& v, const CallArgs& a) {
    const Value* from = a.get(0, "old");
    const Value* to = a.get(1, "new");
    if (!from || !to) throw runtime_error("replace() needs the old and new strings");
    const Value* count = opt(a, 2, "count");
    return Value(py_replace(subject_string(v), to_str(*from), to_str(*to), count ? count->to_int() : -1,
                            in.limits().max_output_bytes));
}

Value f_tojson(Interpreter& in, const Value& v, const CallArgs& a) {
    JsonFormat f;
    f.ensure_ascii = flag(a, 0, "ensure_ascii", false);
    if (const Value* indent = opt(a, 1, "indent")) {
        if (!indent->is_int()) throw runtime_error("tojson indent must be an integer");
        f.indent = static_cast<int>(std::clamp<int64_t>(indent->as_int(), 0, 64));
        f.item_separator = ",";  // json.dumps drops the space after ',' when indenting
    }
    if (const Value* seps = opt(a, 2, "separators")) {
        if (!seps->is_list() || seps->as_list().size() != 2 || !seps->as_list()[0].is_string() || !seps->as_list()[1].is_string())
            throw runtime_error("tojson separators must be a pair of strings");
        f.item_separator = seps->as_list()[0].as_string();
        f.key_separator = seps->as_list()[1].as_string();
    }
    f.sort_keys = flag(a, 3, "sort_keys", false);
    std::string out = to_json(v, f);
    in.check_size(out.size());
    return Value(std::move(out));
}

Value f_string(Interpreter&, const Value& v, const CallArgs&) { return Value(to_str(v)); }
Value f_safe(Interpreter&, const Value& v, const CallArgs&) { return v; }

Value f_escape(Interpreter&, const Value& v, const CallArgs&) {
    std::string out;
    for (char c : to_str(v)) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return Value(std::move(out));
}

Value f_int(Interpreter&, const Value& v, const CallArgs& a) {
    const Value* def = a.get(0, "default");
    Value fallback = def ? *def : Value(int64_t{0});
    if (v.is_int()) return v;
    if (v.is_bool()) return Value(v.to_int());
    if (v.is_float()) {
        double d = v.as_float();
        if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
        return Value(static_cast<int64_t>(d));
    }
    if (v.is_string()) {
        std::string s = py_strip(v.as_string(), std::nullopt, true, true);
        s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
        if (s.empty()) return fallback;
        char* end = nullptr;
        errno = 0;
        long long i = std::strtoll(s.c_str(), &end, 10);
        if (*end == '\0' && errno == 0) return Value(static_cast<int64_t>(i));
        double d = std::strtod(s.c_str(), &end);
        if (*end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value(static_cast<int64_t>(d));
    }
    return fallback;
}

Value f_float(Interpreter&, const Value& v, const CallArgs& a) {
    const Value* def = a.get(0, "default");
    Value fallback = def ? *def : Value(0.0);
    if (v.is_number()) return Value(v.to_double());
    if (v.is_string()) {
        std::string s = py_strip(v.as_string(), std::nullopt, true, true);
        if (s.empty()) return fallback;
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (*end == '\0') return Value(d);
    }
    return fallback;
}

Value f_list(Interpreter& in, const Value& v, const CallArgs&) { return Value(in.iterate(v)); }

Value f_items(Interpreter&, const Value& v, const CallArgs&) {
    if (v.is_undefined()) return Value(List{});
    if (!v.is_dict()) throw runtime_error("Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, item] : v.as_dict().entries) out.emplace_back(List{Value(k), item});
    return Value(std::move(out));
}

Value f_map(Interpreter& in, const Value& v, const CallArgs& a) {
    List out;
    if (!v.truthy()) return Value(std::move(out));  // jinja2 maps over nothing for a falsy value (even None)
    if (const Value* attribute = a.keyword_arg("attribute")) {
        const Value* def = a.keyword_arg("default");
        for (const auto& item : in.iterate(v)) {
            Value x = attribute_of(in, item, attribute);
            out.push_back(x.is_undefined() && def ? *def : x);
        }
        return Value(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string()) throw runtime_error("map() needs a filter name or attribute=");
    FilterFunction f = find_filter(a.positional[0].as_string());
    if (!f) throw runtime_error("map(): unknown filter '" + a.positional[0].as_string() + "'");
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const auto& item : in.iterate(v)) out.push_back(f(in, item, rest));
    return Value(std::move(out));
}

// select / reject / selectattr / rejectattr share one body.
Value select_impl(Interpreter& in, const Value& v, const CallArgs& a, bool by_attribute, bool keep) {
    if (!v.truthy()) return Value(List{});  // as jinja2: a falsy value (even None) selects nothing
    size_t next = 0;
    const Value* attribute = nullptr;
    if (by_attribute) {
        if (a.positional.empty()) throw runtime_error("selectattr()/rejectattr() need an attribute name");
        attribute = &a.positional[next++];
    }
    TestFunction test = nullptr;
    if (next < a.positional.size()) {
        if (!a.positional[next].is_string()) throw runtime_error("select(): the test name must be a string");
        test = find_test(a.positional[next].as_string());
        if (!test) throw runtime_error("unknown test '" + a.positional[next].as_string() + "'");
        ++next;
    }
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, a.positional.size())), a.positional.end());
    rest.keyword = a.keyword;
    List out;
    for (const auto& item : in.iterate(v)) {
        in.step();
        Value x = attribute_of(in, item, attribute);
        bool r = test ? test(in, x, rest) : x.truthy();
        if (r == keep) out.push_back(item);
    }
    return Value(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interpreter& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, true, false); }

Value f_dictsort(Interpreter&, const Value& v, const CallArgs& a) {
    if (!v.is_dict()) throw runtime_error("dictsort() needs a mapping");
    bool case_sensitive = flag(a, 0, "case_sensitive", false);
    const Value* by = a.get(1, "by");
    bool by_value = by && to_str(*by) == "value";
    if (by && !by_value && to_str(*by) != "key") throw runtime_error("You can only sort by either \"key\" or \"value\"");
    bool reverse = flag(a, 2, "reverse", false);
    List pairs;
    for (const auto& [k, item] : v.as_dict().entries) pairs.emplace_back(List{Value(k), item});
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
        size_t i = by_value ? 1 : 0;
        int c = compare(fold_case(x.as_list()[i], case_sensitive), fold_case(y.as_list()[i], case_sensitive));
        return reverse ? c > 0 : c < 0;
    });
    return Value(std::move(pairs));
}

Value f_sort(Interpreter& in, const Value& v, const CallArgs& a) {
    bool reverse = flag(a, 0, "reverse", false);
    bool case_sensitive = flag(a, 1, "case_sensitive", false);
    const Value* attribute = opt(a, 2, "attribute");
    List items = in.iterate(v);
    std::vector<std::pair<Value, size_t>> keys;
    for (size_t i = 0; i < items.size(); ++i) keys.emplace_back(fold_case(attribute_of(in, items[i], attribute), case_sensitive), i);
    std::stable_sort(keys.begin(), keys.end(), [&](const auto& x, const auto& y) {
        int c = compare(x.first, y.first);
        return reverse ? c > 0 : c < 0;
    });
    List out;
    for (const auto& k : keys) out.push_back(items[k.second]);
    return Value(std::move(out));
}

Value f_unique(Interpreter& in, const Value& v, const CallArgs& a) {
    bool case_sensitive = flag(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    List out, seen;
    for (const auto& item : in.iterate(v)) {
        Value key = fold_case(attribute_of(in, item, attribute), case_sensitive);
        bool dup = false;
        for (const auto& s : seen) {
            in.step();
            if (equals(s, key)) { dup = true; break; }
        }
        if (dup) continue;
        seen.push_back(key);
        out.push_back(item);
    }
    return Value(std::move(out));
}

Value min_max(Interpreter& in, const Value& v, const CallArgs& a, bool want_max) {
    bool case_sensitive = flag(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    List items = in.iterate(v);
    if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
    size_t best = 0;
    for (size_t i = 1; i < items.size(); ++i) {
        int c = compare(fold_case(attribute_of(in, items[i], attribute), case_sensitive),
                        fold_case(attribute_of(in, items[best], attribute), case_sensitive));
        if (want_max ? c > 0 : c < 0) best = i;
    }
    return items[best];
}
Value f_min(Interpreter& in, const Value& v, const CallArgs& a) { return min_max(in, v, a, false); }
Value f_max(Interpreter& in, const Value& v, const CallArgs& a) { return min_max(in, v, a, true); }

Value f_sum(Interpreter& in, const Value& v, const CallArgs& a) {
    const Value* attribute = opt(a, 0, "attribute");
    const Value* start = a.get(1, "start");
    Value total = start ? *start : Value(int64_t{0});
    for (const auto& item : in.iterate(v)) total = apply_binary(in, "+", total, attribute_of(in, item, attribute));
    return total;
}

Value f_round(Interpreter&, const Value& v, const CallArgs& a) {
    if (!v.is_number()) throw runtime_error("round() needs a number, not " + type_name(v));
    const Value* p = a.get(0, "precision");
    int64_t precision = p ? p->to_int() : 0;
    const Value* m = a.get(1, "method");
    std::string method = m ? to_str(*m) : "common";
    double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
    double x = v.to_double() * scale;
    if (method == "common") x = std::nearbyint(x);  // round-half-even, as Python's round()
    else if (method == "ceil") x = std::ceil(x);
    else if (method == "floor") x = std::floor(x);
    else throw runtime_error("method must be common, ceil or floor");
    return Value(x / scale);
}

Value f_indent(Interpreter& in, const Value& v, const CallArgs& a) {
    const Value* width = a.get(0, "width");
    std::string indention = width && width->is_string() ? width->as_string()
                                                       : std::string(static_cast<size_t>(std::clamp<int64_t>(width ? width->to_int() : 4, 0, 1024)), ' ');
    bool first = flag(a, 1, "first", false);
    bool blank = flag(a, 2, "blank", false);
    std::vector<std::string> lines = py_splitlines(to_str(v) + "\n");
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) {
            out += '\n';
            if (blank || !lines[i].empty()) out += indention;
        }
        out += lines[i];
        in.check_size(out.size());
    }
    if (first) out = indention + out;
    return Value(std::move(out));
}

Value f_reverse(Interpreter& in, const Value& v, const CallArgs&) {
    if (v.is_string()) {
        auto chars = utf8_chars(v.as_string());
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
        return Value(std::move(out));
    }
    List items = in.iterate(v);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
}

Value f_wordcount(Interpreter&, const Value& v, const CallArgs&) {
    std::string s = to_str(v);
    int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : s) {
        bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        if (word && !in_word) ++n;
        in_word = word;
    }
    return Value(n);
}

Value f_center(Interpreter& in, const Value& v, const CallArgs& a) {
    std::string s = to_str(v);
    const Value* w = a.get(0, "width");
    int64_t width = std::min<int64_t>(w ? w->to_int() : 80, static_cast<int64_t>(in.limits().max_output_bytes));
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value(s);
    int64_t pad = width - len;
    int64_t left = pad / 2 + (pad & width & 1);  // Python's str.center puts the odd space on the left for odd widths
    return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
}

}  // namespace

FilterFunction find_filter(std::string_view name) {
    static const std::map<std::string_view, FilterFunction> filters = {
        {"abs", f_abs},           {"attr", f_attr},           {"capitalize", f_capitalize}, {"center", f_center},
        {"count", f_length},      {"d", f_default},           {"default", f_default},       {"dictsort", f_dictsort},
        {"e", f_escape},          {"escape", f_escape},       {"first", f_first},           {"float", f_float},
        {"indent", f_indent},     {"int", f_int},             {"items", f_items},           {"join", f_join},
        {"last", f_last},         {"length", f_length},       {"list", f_list},             {"lower", f_lower},
        {"map", f_map},           {"max", f_max},             {"min", f_min},               {"reject", f_reject},
        {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},       {"round", f_round},
        {"safe", f_safe},         {"select", f_select},       {"selectattr", f_selectattr}, {"sort", f_sort},
        {"string", f_string},     {"sum", f_sum},             {"title", f_title},           {"tojson", f_tojson},
        {"trim", f_trim},         {"unique", f_unique},       {"upper", f_upper},           {"wordcount", f_wordcount},
    };
    auto it = filters.find(name);
    return it == filters.end() ? nullptr : it->second;
}

}  // namespace kiln::jinja
