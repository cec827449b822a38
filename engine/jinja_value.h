#pragma once
// The value type Jinja templates compute with. It mirrors the Python objects a
// Hugging Face chat template sees (str, int, float, bool, None, list, dict,
// jinja2's Undefined, namespace(), callables), so that printing, comparison and
// truthiness follow Python's rules; containers are shared (reference semantics,
// as in Python) which matters for namespace() objects mutated by `set ns.x`.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::jinja {

class Value;
class Interpreter;

using List = std::vector<Value>;

// Insertion-ordered string-keyed map, like a Python dict built from JSON.
struct Dict {
    std::vector<std::pair<std::string, Value>> entries;
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value value);
    size_t size() const { return entries.size(); }
};

struct Namespace {
    Dict attrs;
};

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;
    // Positional argument `index`, else keyword `name`, else nullptr.
    const Value* get(size_t index, std::string_view name) const;
    const Value* keyword_arg(std::string_view name) const;
};

using NativeFunction = std::function<Value(const CallArgs&, Interpreter&)>;

struct Callable {
    std::string name;
    NativeFunction fn;
};

// jinja2's default Undefined: prints as "", is falsy and iterates as empty;
// using it in arithmetic or looking inside it fails with `hint` as the message.
struct Undefined {
    std::string hint;
};

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

    Value() : data_(jinja::Undefined{}) {}
    Value(std::nullptr_t) : data_(std::monostate{}) {}
    Value(bool b) : data_(b) {}
    Value(int v) : data_(int64_t{v}) {}
    Value(int64_t v) : data_(v) {}
    Value(double v) : data_(v) {}
    Value(std::string s) : data_(std::move(s)) {}
    Value(const char* s) : data_(std::string(s)) {}
    Value(List l) : data_(std::make_shared<List>(std::move(l))) {}
    Value(Dict d) : data_(std::make_shared<Dict>(std::move(d))) {}
    Value(std::shared_ptr<Namespace> ns) : data_(std::move(ns)) {}
    Value(std::shared_ptr<Callable> fn) : data_(std::move(fn)) {}

    static Value undefined(std::string hint) { Value v; v.data_ = jinja::Undefined{std::move(hint)}; return v; }
    static Value function(std::string name, NativeFunction fn) {
        return Value(std::make_shared<Callable>(Callable{std::move(name), std::move(fn)}));
    }

    Kind kind() const { return static_cast<Kind>(data_.index()); }
    bool is_undefined() const { return kind() == Kind::Undefined; }
    bool is_none() const { return kind() == Kind::None; }
    bool is_bool() const { return kind() == Kind::Bool; }
    bool is_int() const { return kind() == Kind::Int; }
    bool is_float() const { return kind() == Kind::Float; }
    bool is_number() const { return is_int() || is_float() || is_bool(); }
    bool is_string() const { return kind() == Kind::String; }
    bool is_list() const { return kind() == Kind::List; }
    bool is_dict() const { return kind() == Kind::Dict; }
    bool is_namespace() const { return kind() == Kind::Namespace; }
    bool is_callable() const { return kind() == Kind::Callable; }

    bool as_bool() const { return std::get<bool>(data_); }
    int64_t as_int() const { return std::get<int64_t>(data_); }
    double as_float() const { return std::get<double>(data_); }
    const std::string& as_string() const { return std::get<std::string>(data_); }
    const List& as_list() const { return *std::get<std::shared_ptr<List>>(data_); }
    const Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
    Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(data_); }
    const Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(data_); }
    const std::string& undefined_hint() const { return std::get<jinja::Undefined>(data_).hint; }
    // Identity of a shared object (namespace, callable), for `is sameas` and `==`.
    const void* identity() const;

    // int or bool as int64 (Python's bool is an int).
    int64_t to_int() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
    double to_double() const { return is_float() ? as_float() : static_cast<double>(to_int()); }

    bool truthy() const;

private:
    std::variant<jinja::Undefined, std::monostate, bool, int64_t, double, std::string, std::shared_ptr<List>,
                 std::shared_ptr<Dict>, std::shared_ptr<Namespace>, std::shared_ptr<Callable>>
        data_;
};

// Python's type name, for error messages ("str", "int", "dict", "NoneType").
std::string type_name(const Value& v);
// Python's str(): what `{{ v }}` prints.
std::string to_str(const Value& v);
// Python's repr(): how items print inside lists and dicts.
std::string repr(const Value& v);
// Python's float repr: shortest round-trip digits, "1.0", "1e+16", "1.5e-07".
std::string format_float(double d);

bool equals(const Value& a, const Value& b);
// Python ordering (<0, 0, >0) for numbers, strings and lists; throws otherwise.
int compare(const Value& a, const Value& b);

struct JsonFormat {
    int indent = -1;  // <0: one line
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool ensure_ascii = false;
    bool sort_keys = false;
};
// Python's json.dumps(v, ...) with the given options; throws for values JSON cannot hold.
std::string to_json(const Value& v, const JsonFormat& format);

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

// Code points of UTF-8 text (invalid bytes count as one each), for len(), slicing and iteration.
std::vector<std::string_view> utf8_chars(std::string_view s);
size_t utf8_length(std::string_view s);

}  // namespace kiln::jinja
