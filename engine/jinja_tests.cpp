// Jinja tests (`x is defined`, `n is divisibleby 3`), with jinja2's semantics
// for Python values: bools count as numbers, strings and undefined are iterable.
#include <map>

#include "engine/jinja_builtins.h"
#include "engine/jinja_error.h"
#include "engine/jinja_interpreter.h"

namespace kiln::jinja {
namespace {

const Value& arg(const CallArgs& a, const char* test) {
    const Value* v = a.get(0, "other");
    if (!v) throw runtime_error(std::string("test '") + test + "' needs an argument");
    return *v;
}

bool is_integer(const Value& v) { return v.is_int(); }

bool test_defined(Interpreter&, const Value& v, const CallArgs&) { return !v.is_undefined(); }
bool test_undefined(Interpreter&, const Value& v, const CallArgs&) { return v.is_undefined(); }
bool test_none(Interpreter&, const Value& v, const CallArgs&) { return v.is_none(); }
bool test_string(Interpreter&, const Value& v, const CallArgs&) { return v.is_string(); }
bool test_number(Interpreter&, const Value& v, const CallArgs&) { return v.is_number(); }
bool test_integer(Interpreter&, const Value& v, const CallArgs&) { return is_integer(v); }
bool test_float(Interpreter&, const Value& v, const CallArgs&) { return v.is_float(); }
bool test_boolean(Interpreter&, const Value& v, const CallArgs&) { return v.is_bool(); }
bool test_true(Interpreter&, const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }
bool test_false(Interpreter&, const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool test_mapping(Interpreter&, const Value& v, const CallArgs&) { return v.is_dict(); }
bool test_iterable(Interpreter&, const Value& v, const CallArgs&) {
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool test_sequence(Interpreter&, const Value& v, const CallArgs&) {
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool test_callable(Interpreter&, const Value& v, const CallArgs&) { return v.is_callable(); }

int64_t need_int(const Value& v, const char* test) {
    if (v.is_undefined()) throw runtime_error(v.undefined_hint());
    if (!v.is_int() && !v.is_bool()) throw runtime_error(std::string("test '") + test + "' needs an integer, not " + type_name(v));
    return v.to_int();
}
bool test_even(Interpreter&, const Value& v, const CallArgs&) { return need_int(v, "even") % 2 == 0; }
bool test_odd(Interpreter&, const Value& v, const CallArgs&) { return need_int(v, "odd") % 2 != 0; }
bool test_divisibleby(Interpreter&, const Value& v, const CallArgs& a) {
    int64_t d = need_int(arg(a, "divisibleby"), "divisibleby");
    if (d == 0) throw runtime_error("integer division or modulo by zero");
    return need_int(v, "divisibleby") % d == 0;
}
bool test_eq(Interpreter&, const Value& v, const CallArgs& a) { return equals(v, arg(a, "eq")); }
bool test_ne(Interpreter&, const Value& v, const CallArgs& a) { return !equals(v, arg(a, "ne")); }
bool test_lt(Interpreter&, const Value& v, const CallArgs& a) { return compare(v, arg(a, "lt")) < 0; }
bool test_le(Interpreter&, const Value& v, const CallArgs& a) { return compare(v, arg(a, "le")) <= 0; }
bool test_gt(Interpreter&, const Value& v, const CallArgs& a) { return compare(v, arg(a, "gt")) > 0; }
bool test_ge(Interpreter&, const Value& v, const CallArgs& a) { return compare(v, arg(a, "ge")) >= 0; }
bool test_in(Interpreter&, const Value& v, const CallArgs& a) { return contains(arg(a, "in"), v); }
bool test_sameas(Interpreter&, const Value& v, const CallArgs& a) {
    const Value& o = arg(a, "sameas");
    if (v.identity() || o.identity()) return v.identity() == o.identity();
    return v.kind() == o.kind() && equals(v, o);  // None, True, small values: Python interns them
}
bool test_lower(Interpreter&, const Value& v, const CallArgs&) {
    if (!v.is_string()) return false;
    for (char c : v.as_string())
        if (c >= 'A' && c <= 'Z') return false;
    return true;
}
bool test_upper(Interpreter&, const Value& v, const CallArgs&) {
    if (!v.is_string()) return false;
    for (char c : v.as_string())
        if (c >= 'a' && c <= 'z') return false;
    return true;
}

}  // namespace

TestFunction find_test(std::string_view name) {
    static const std::map<std::string_view, TestFunction> tests = {
        {"defined", test_defined},   {"undefined", test_undefined}, {"none", test_none},
        {"string", test_string},     {"number", test_number},       {"integer", test_integer},
        {"float", test_float},       {"boolean", test_boolean},     {"true", test_true},
        {"false", test_false},       {"mapping", test_mapping},     {"iterable", test_iterable},
        {"sequence", test_sequence}, {"callable", test_callable},   {"even", test_even},
        {"odd", test_odd},           {"divisibleby", test_divisibleby}, {"eq", test_eq},
        {"equalto", test_eq},        {"==", test_eq},               {"ne", test_ne},
        {"!=", test_ne},             {"lt", test_lt},               {"lessthan", test_lt},
        {"<", test_lt},              {"le", test_le},               {"<=", test_le},
        {"gt", test_gt},             {"greaterthan", test_gt},      {">", test_gt},
        {"ge", test_ge},             {">=", test_ge},               {"in", test_in},
        {"sameas", test_sameas},     {"lower", test_lower},         {"upper", test_upper},
    };
    auto it = tests.find(name);
    return it == tests.end() ? nullptr : it->second;
}

}  // namespace kiln::jinja
