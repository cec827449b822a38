// Methods of str, dict and list values, and the global functions every
// template sees. Mutating methods (list.append, dict.update, ...) are refused,
// as jinja2's ImmutableSandboxedEnvironment that Hugging Face uses refuses them.
#include <optional>
#include <set>

#include "engine/jinja_error.h"
#include "engine/jinja_interpreter.h"
#include "engine/jinja_text.h"

namespace kiln::jinja {
namespace {

std::optional<std::string> opt_string(const Value* v, const char* what) {
    if (!v || v->is_none()) return std::nullopt;
    if (!v->is_string()) throw runtime_error(std::string(what) + " must be a string or None, not " + type_name(*v));
    return v->as_string();
}

const std::string& need_string(const Value* v, const char* what) {
    if (!v || !v->is_string())
        throw runtime_error(std::string(what) + " must be a string" + (v ? ", not " + type_name(*v) : ""));
    return v->as_string();
}

long long opt_int(const Value* v, long long def) {
    if (!v || v->is_none()) return def;
    if (!v->is_int() && !v->is_bool()) throw runtime_error("an integer is required, not " + type_name(*v));
    return v->to_int();
}

// startswith/endswith take a string or a tuple of strings.
bool affix_match(const std::string& s, const Value* arg, bool prefix) {
    auto one = [&](const std::string& a) {
        if (a.size() > s.size()) return false;
        return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
    };
    if (arg && arg->is_list()) {
        for (const auto& item : arg->as_list())
            if (one(need_string(&item, "startswith/endswith argument"))) return true;
        return false;
    }
    return one(need_string(arg, "startswith/endswith argument"));
}

// str.format with {} / {0} / {name} fields (no format specs).
std::string py_format(Interpreter& in, const std::string& fmt, const CallArgs& args) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
        if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
        if (c != '{') { out += c; continue; }
        size_t end = fmt.find('}', i);
        if (end == std::string::npos) throw runtime_error("format(): single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, end - i - 1);
        if (field.find_first_of(":!") != std::string::npos)
            throw runtime_error("format(): format specs and conversions are not supported ('{" + field + "}')");
        const Value* v = nullptr;
        if (field.empty()) {
            v = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
            ++auto_index;
        } else if (field.find_first_not_of("0123456789") == std::string::npos) {
            size_t k = std::stoul(field);
            v = k < args.positional.size() ? &args.positional[k] : nullptr;
        } else {
            v = args.keyword_arg(field);
        }
        if (!v) throw runtime_error("format(): no argument for field '{" + field + "}'");
        out += to_str(*v);
        in.check_size(out.size());
        i = end;
    }
    return out;
}

Value string_method(const std::string& s, const std::string& name) {
    auto m = [&](auto fn) {
        return Value::function(name, [s, fn](const CallArgs& a, Interpreter& in) -> Value { return fn(s, a, in); });
    };
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        bool left = name != "rstrip", right = name != "lstrip";
        return m([left, right](const std::string& s, const CallArgs& a, Interpreter&) {
            return Value(py_strip(s, opt_string(a.get(0, "chars"), "strip() argument"), left, right));
        });
    }
    if (name == "split")
        return m([](const std::string& s, const CallArgs& a, Interpreter&) {
            List out;
            for (auto& part : py_split(s, opt_string(a.get(0, "sep"), "split() separator"), opt_int(a.get(1, "maxsplit"), -1)))
                out.emplace_back(std::move(part));
            return Value(std::move(out));
        });
    if (name == "splitlines")
        return m([](const std::string& s, const CallArgs&, Interpreter&) {
            List out;
            for (auto& line : py_splitlines(s)) out.emplace_back(std::move(line));
            return Value(std::move(out));
        });
    if (name == "startswith" || name == "endswith") {
        bool prefix = name == "startswith";
        return m([prefix](const std::string& s, const CallArgs& a, Interpreter&) {
            return Value(affix_match(s, a.get(0, "prefix"), prefix));
        });
    }
    if (name == "upper") return m([](const std::string& s, const CallArgs&, Interpreter&) { return Value(py_upper(s)); });
    if (name == "lower") return m([](const std::string& s, const CallArgs&, Interpreter&) { return Value(py_lower(s)); });
    if (name == "title") return m([](const std::string& s, const CallArgs&, Interpreter&) { return Value(py_title(s)); });
    if (name == "capitalize")
        return m([](const std::string& s, const CallArgs&, Interpreter&) { return Value(py_capitalize(s)); });
    if (name == "replace")
        return m([](const std::string& s, const CallArgs& a, Interpreter& in) {
            return Value(py_replace(s, need_string(a.get(0, "old"), "replace() old"), need_string(a.get(1, "new"), "replace() new"),
                                    opt_int(a.get(2, "count"), -1), in.limits().max_output_bytes));
        });
    if (name == "find" || name == "count")
        return m([name](const std::string& s, const CallArgs& a, Interpreter&) {
            const std::string& sub = need_string(a.get(0, "sub"), "argument");
            if (name == "find") {
                size_t p = s.find(sub);
                if (p == std::string::npos) return Value(int64_t{-1});
                return Value(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, p))));
            }
            if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
            int64_t n = 0;
            for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
            return Value(n);
        });
    if (name == "join")
        return m([](const std::string& s, const CallArgs& a, Interpreter& in) {
            const Value* items = a.get(0, "iterable");
            if (!items) throw runtime_error("join() takes exactly one argument");
            std::string out;
            bool first = true;
            for (const auto& item : in.iterate(*items)) {
                if (!item.is_string()) throw runtime_error("sequence item: expected str instance, " + type_name(item) + " found");
                if (!first) out += s;
                first = false;
                out += item.as_string();
                in.check_size(out.size());
            }
            return Value(std::move(out));
        });
    if (name == "format")
        return m([](const std::string& s, const CallArgs& a, Interpreter& in) { return Value(py_format(in, s, a)); });
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
        name == "islower")
        return m([name](const std::string& s, const CallArgs&, Interpreter&) {
            if (s.empty()) return Value(false);
            bool any_cased = false;
            for (char c : s) {
                bool digit = c >= '0' && c <= '9', alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                if (name == "isdigit" && !digit) return Value(false);
                if (name == "isalpha" && !alpha) return Value(false);
                if (name == "isalnum" && !digit && !alpha) return Value(false);
                if (name == "isspace" && !is_py_space(c)) return Value(false);
                if (name == "isupper" && c >= 'a' && c <= 'z') return Value(false);
                if (name == "islower" && c >= 'A' && c <= 'Z') return Value(false);
                any_cased = any_cased || alpha;
            }
            return Value(name == "isupper" || name == "islower" ? any_cased : true);
        });
    return Value();
}

Value dict_method(const Value& obj, const std::string& name) {
    if (name == "items")
        return Value::function(name, [obj](const CallArgs&, Interpreter&) {
            List out;
            for (const auto& [k, v] : obj.as_dict().entries) out.emplace_back(List{Value(k), v});
            return Value(std::move(out));
        });
    if (name == "keys")
        return Value::function(name, [obj](const CallArgs&, Interpreter&) {
            List out;
            for (const auto& [k, v] : obj.as_dict().entries) out.emplace_back(k);
            return Value(std::move(out));
        });
    if (name == "values")
        return Value::function(name, [obj](const CallArgs&, Interpreter&) {
            List out;
            for (const auto& [k, v] : obj.as_dict().entries) out.push_back(v);
            return Value(std::move(out));
        });
    if (name == "get")
        return Value::function(name, [obj](const CallArgs& a, Interpreter&) {
            const Value* key = a.get(0, "key");
            if (!key) throw runtime_error("get() needs a key");
            if (key->is_string())
                if (const Value* v = obj.as_dict().find(key->as_string())) return *v;
            const Value* def = a.get(1, "default");
            return def ? *def : Value(nullptr);
        });
    return Value();
}

Value list_method(const Value& obj, const std::string& name) {
    if (name == "index" || name == "count")
        return Value::function(name, [obj, name](const CallArgs& a, Interpreter&) {
            const Value* x = a.get(0, "value");
            if (!x) throw runtime_error(name + "() takes exactly one argument");
            int64_t n = 0, i = 0;
            for (const auto& item : obj.as_list()) {
                if (equals(item, *x)) {
                    if (name == "index") return Value(i);
                    ++n;
                }
                ++i;
            }
            if (name == "index") throw runtime_error(repr(*x) + " is not in list");
            return Value(n);
        });
    return Value();
}

}  // namespace

Value find_method(const Value& obj, const std::string& name) {
    static const std::set<std::string> mutating = {"append", "extend", "insert", "pop", "remove", "clear", "sort",
                                                   "reverse", "update", "setdefault", "popitem"};
    Value m;
    if (obj.is_string()) m = string_method(obj.as_string(), name);
    else if (obj.is_dict()) m = dict_method(obj, name);
    else if (obj.is_list()) m = list_method(obj, name);
    if (m.is_undefined() && (obj.is_list() || obj.is_dict()) && mutating.count(name)) {
        std::string type = type_name(obj);
        return Value::function(name, [type, name](const CallArgs&, Interpreter&) -> Value {
            throw runtime_error("access to attribute '" + name + "' of '" + type + "' object" +
                                " is unsafe: chat templates cannot modify lists or dicts (use namespace() and '+')");
        });
    }
    return m;
}

void add_builtin_globals(Dict& globals) {
    globals.set("range", Value::function("range", [](const CallArgs& a, Interpreter& in) {
        if (a.positional.empty() || a.positional.size() > 3) throw runtime_error("range expected 1 to 3 arguments");
        for (const auto& v : a.positional)
            if (!v.is_int() && !v.is_bool())
                throw runtime_error("'" + type_name(v) + "' object cannot be interpreted as an integer");
        int64_t start = 0, stop, step = 1;
        if (a.positional.size() == 1) {
            stop = a.positional[0].to_int();
        } else {
            start = a.positional[0].to_int();
            stop = a.positional[1].to_int();
            if (a.positional.size() == 3) step = a.positional[2].to_int();
        }
        if (step == 0) throw runtime_error("range() arg 3 must not be zero");
        // Count without overflow: (stop - start) may not fit in int64.
        __int128 span = static_cast<__int128>(stop) - start;
        __int128 n = step > 0 ? (span > 0 ? (span + step - 1) / step : 0) : (span < 0 ? (-span + (-step) - 1) / (-step) : 0);
        if (n > static_cast<__int128>(in.limits().max_range))
            throw Error(Error::Kind::Limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                                                std::to_string(in.limits().max_range) + ").");
        List out;
        out.reserve(static_cast<size_t>(n));
        for (int64_t i = 0, v = start; i < static_cast<int64_t>(n); ++i, v += step) out.emplace_back(v);
        return Value(std::move(out));
    }));
    auto make_dict = [](const CallArgs& a, const char* what) {
        Dict d;
        if (a.positional.size() > 1) throw runtime_error(std::string(what) + "() takes at most one positional argument");
        if (!a.positional.empty()) {
            const Value& src = a.positional[0];
            if (!src.is_dict()) throw runtime_error(std::string(what) + "() positional argument must be a mapping");
            d = src.as_dict();
        }
        for (const auto& [k, v] : a.keyword) d.set(k, v);
        return d;
    };
    globals.set("namespace", Value::function("namespace", [make_dict](const CallArgs& a, Interpreter&) {
        auto ns = std::make_shared<Namespace>();
        ns->attrs = make_dict(a, "namespace");
        return Value(std::move(ns));
    }));
    globals.set("dict", Value::function("dict", [make_dict](const CallArgs& a, Interpreter&) {
        return Value(make_dict(a, "dict"));
    }));
}

}  // namespace kiln::jinja
