#include "engine/jinja_interpreter.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "engine/jinja_error.h"

namespace kiln::jinja {
namespace {

[[noreturn]] void fail_undefined(const Value& v) {
    throw runtime_error(v.undefined_hint().empty() ? "value is undefined" : v.undefined_hint());
}

Value missing_attribute(const Value& obj, const std::string& name) {
    return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
}

// Restores the interpreter's output buffer and scope when a capture ends, even on error.
template <class T>
struct Restore {
    T& slot;
    T saved;
    Restore(T& s, T value) : slot(s), saved(s) { slot = std::move(value); }
    ~Restore() { slot = std::move(saved); }
};

}  // namespace

Interpreter::Interpreter(const Limits& limits, std::shared_ptr<Scope> globals) : limits_(limits) {
    scope_ = std::make_shared<Scope>();
    scope_->parent = std::move(globals);
}

std::string Interpreter::render(const Body& body) {
    std::string out;
    out_ = &out;
    exec_body(body);
    out_ = nullptr;
    return out;
}

void Interpreter::check_size(size_t bytes) const {
    if (bytes > limits_.max_output_bytes)
        throw Error(Error::Kind::Limit,
                    "template output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
}

void Interpreter::step() {
    if (++steps_ > limits_.max_steps)
        throw Error(Error::Kind::Limit, "template exceeded the limit of " + std::to_string(limits_.max_steps) +
                                            " evaluation steps (a runaway loop?)");
}

void Interpreter::write(const std::string& text) {
    check_size(out_->size() + text.size());
    out_->append(text);
}

std::string Interpreter::capture(const Body& body, std::shared_ptr<Scope> scope) {
    std::string buffer;
    Restore<std::string*> out(out_, &buffer);
    Restore<std::shared_ptr<Scope>> sc(scope_, std::move(scope));
    exec_body(body);
    return buffer;
}

Value Interpreter::lookup(const std::string& name) const {
    for (const Scope* s = scope_.get(); s; s = s->parent.get())
        if (const Value* v = s->vars.find(name)) return *v;
    return Value::undefined("'" + name + "' is undefined");
}

// ---- statements ---------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const Body& body) {
    for (const auto& s : body) {
        Flow f = exec(*s);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s) {
    try {
        switch (s.kind) {
            case Stmt::Kind::Text: write(s.text); break;
            case Stmt::Kind::Output: write(to_str(eval(*s.expr))); break;
            case Stmt::Kind::If:
                for (const auto& [cond, body] : s.branches)
                    if (eval(*cond).truthy()) return exec_body(body);
                return exec_body(s.else_body);
            case Stmt::Kind::For: exec_for(s); break;
            case Stmt::Kind::Set: {
                Value v = eval(*s.expr);
                if (s.attribute.empty()) {
                    assign(s.targets, v, s.line);
                } else {
                    Value target = lookup(s.targets[0]);
                    if (!target.is_namespace())
                        throw runtime_error("cannot assign attribute '" + s.attribute + "' on '" + s.targets[0] +
                                            "': it is not a namespace() object");
                    target.as_namespace().attrs.set(s.attribute, std::move(v));
                }
                break;
            }
            case Stmt::Kind::SetBlock:
            case Stmt::Kind::FilterBlock: {
                Value v(capture(s.body, scope_));
                for (const auto& f : s.filters) v = f->filter(*this, v, eval_args(*f, 1));
                if (s.kind == Stmt::Kind::SetBlock) scope_->vars.set(s.targets[0], std::move(v));
                else write(to_str(v));
                break;
            }
            case Stmt::Kind::Macro: scope_->vars.set(s.name, make_macro(s)); break;
            case Stmt::Kind::CallBlock: {
                macro_scopes_.push_back(scope_);
                std::weak_ptr<Scope> weak = scope_;
                const Stmt* stmt = &s;
                Value caller = Value::function("caller", [stmt, weak](const CallArgs& args, Interpreter& in) {
                    return in.call_macro(*stmt, weak.lock(), args);
                });
                const Expr& call = *s.expr;
                Value callee = call.args[0]->kind == Expr::Kind::GetAttr
                                   ? get_attribute(eval(*call.args[0]->args[0]), call.args[0]->name)
                                   : eval(*call.args[0]);
                CallArgs args = eval_args(call, 1);
                args.keyword.emplace_back("caller", std::move(caller));
                write(to_str(this->call(callee, args)));
                break;
            }
            case Stmt::Kind::Break: return Flow::Break;
            case Stmt::Kind::Continue: return Flow::Continue;
            case Stmt::Kind::Block: return exec_body(s.body);
        }
    } catch (Error& e) {
        if (e.line() == 0) e.set_line(s.line);
        throw;
    }
    return Flow::Normal;
}

void Interpreter::assign(const std::vector<std::string>& targets, const Value& value, int line) {
    if (targets.size() == 1) {
        scope_->vars.set(targets[0], value);
        return;
    }
    List items = iterate(value);
    if (items.size() < targets.size())
        throw runtime_error("not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                            std::to_string(items.size()) + ")");
    if (items.size() > targets.size())
        throw runtime_error("too many values to unpack (expected " + std::to_string(targets.size()) + ")");
    for (size_t i = 0; i < targets.size(); ++i) scope_->vars.set(targets[i], items[i]);
}

void Interpreter::exec_for(const Stmt& s) {
    Value iterable = eval(*s.expr);
    List items = iterate(iterable);
    std::shared_ptr<Scope> outer = scope_;
    if (s.condition) {  // `for x in xs if cond`: filtered before the loop, so loop.length counts survivors
        List kept;
        for (auto& item : items) {
            step();
            auto probe = std::make_shared<Scope>();
            probe->parent = outer;
            Restore<std::shared_ptr<Scope>> sc(scope_, probe);
            assign(s.targets, item, s.line);
            if (eval(*s.condition).truthy()) kept.push_back(std::move(item));
        }
        items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
        step();
        auto iteration = std::make_shared<Scope>();  // each iteration starts fresh, as in jinja2
        iteration->parent = outer;
        Restore<std::shared_ptr<Scope>> sc(scope_, iteration);
        assign(s.targets, items[static_cast<size_t>(i)], s.line);
        Dict loop;
        loop.entries.reserve(12);
        loop.entries.emplace_back("index", Value(i + 1));
        loop.entries.emplace_back("index0", Value(i));
        loop.entries.emplace_back("revindex", Value(n - i));
        loop.entries.emplace_back("revindex0", Value(n - i - 1));
        loop.entries.emplace_back("first", Value(i == 0));
        loop.entries.emplace_back("last", Value(i == n - 1));
        loop.entries.emplace_back("length", Value(n));
        loop.entries.emplace_back("depth", Value(1));
        loop.entries.emplace_back("depth0", Value(0));
        if (i > 0) loop.entries.emplace_back("previtem", items[static_cast<size_t>(i - 1)]);
        if (i + 1 < n) loop.entries.emplace_back("nextitem", items[static_cast<size_t>(i + 1)]);
        loop.entries.emplace_back("cycle", Value::function("cycle", [i](const CallArgs& args, Interpreter&) {
            if (args.positional.empty()) throw runtime_error("loop.cycle() needs at least one argument");
            return args.positional[static_cast<size_t>(i) % args.positional.size()];
        }));
        iteration->vars.set("loop", Value(std::move(loop)));
        Flow f = exec_body(s.body);
        if (f == Flow::Break) break;
    }
    if (n == 0) exec_body(s.else_body);
}

List Interpreter::iterate(const Value& v) const {
    switch (v.kind()) {
        case Value::Kind::Undefined: return {};
        case Value::Kind::List: return v.as_list();
        case Value::Kind::Dict: {
            List keys;
            keys.reserve(v.as_dict().size());
            for (const auto& [k, item] : v.as_dict().entries) keys.emplace_back(k);
            return keys;
        }
        case Value::Kind::String: {
            List chars;
            for (auto c : utf8_chars(v.as_string())) chars.emplace_back(std::string(c));
            return chars;
        }
        default: throw runtime_error("'" + type_name(v) + "' object is not iterable");
    }
}

Value Interpreter::make_macro(const Stmt& s) {
    macro_scopes_.push_back(scope_);
    std::weak_ptr<Scope> weak = scope_;
    const Stmt* stmt = &s;
    return Value::function(s.name, [stmt, weak](const CallArgs& args, Interpreter& in) {
        return in.call_macro(*stmt, weak.lock(), args);
    });
}

Value Interpreter::call_macro(const Stmt& macro, const std::shared_ptr<Scope>& definition_scope, const CallArgs& args) {
    const std::string name = macro.kind == Stmt::Kind::Macro ? macro.name : "caller";
    if (call_depth_ >= limits_.max_call_depth)
        throw Error(Error::Kind::Limit, "macro calls nested deeper than " + std::to_string(limits_.max_call_depth) +
                                            " (runaway recursion in '" + name + "'?)");
    struct DepthGuard {
        int& d;
        explicit DepthGuard(int& depth) : d(depth) { ++d; }
        ~DepthGuard() { --d; }
    } guard(call_depth_);

    auto scope = std::make_shared<Scope>();
    scope->parent = definition_scope;
    const auto& params = macro.params;
    if (args.positional.size() > params.size())
        throw runtime_error("macro '" + name + "' takes not more than " + std::to_string(params.size()) +
                            " argument(s)");
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
        scope->vars.set(params[i].first, args.positional[i]);
        bound[i] = true;
    }
    for (const auto& [key, value] : args.keyword) {
        size_t i = 0;
        while (i < params.size() && params[i].first != key) ++i;
        if (i == params.size()) {
            if (key == "caller") {
                scope->vars.set(key, value);
                continue;
            }
            throw runtime_error("macro '" + name + "' takes no keyword argument '" + key + "'");
        }
        if (bound[i]) throw runtime_error("macro '" + name + "' got multiple values for argument '" + key + "'");
        scope->vars.set(key, value);
        bound[i] = true;
    }
    Restore<std::shared_ptr<Scope>> sc(scope_, scope);
    for (size_t i = 0; i < params.size(); ++i) {
        if (bound[i]) continue;
        scope->vars.set(params[i].first, params[i].second
                                             ? eval(*params[i].second)
                                             : Value::undefined("parameter '" + params[i].first + "' was not provided"));
    }
    return Value(capture(macro.body, scope));
}

Value Interpreter::call(const Value& callee, const CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (!callee.is_callable()) throw runtime_error("'" + type_name(callee) + "' object is not callable");
    return callee.as_callable().fn(args, *this);
}

// ---- expressions --------------------------------------------------------------

Value Interpreter::eval(const Expr& e) {
    step();
    try {
        return eval_inner(e);
    } catch (Error& err) {
        if (err.line() == 0) err.set_line(e.line);
        throw;
    }
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v));
    return args;
}

Value Interpreter::eval_inner(const Expr& e) {
    switch (e.kind) {
        case Expr::Kind::Literal: return e.value;
        case Expr::Kind::Name: return lookup(e.name);
        case Expr::Kind::List: {
            List items;
            items.reserve(e.args.size());
            for (const auto& a : e.args) items.push_back(eval(*a));
            return Value(std::move(items));
        }
        case Expr::Kind::Dict: {
            Dict d;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                Value key = eval(*e.args[i]);
                if (key.is_undefined()) fail_undefined(key);
                d.set(to_str(key), eval(*e.args[i + 1]));
            }
            return Value(std::move(d));
        }
        case Expr::Kind::GetAttr: return get_attribute(eval(*e.args[0]), e.name);
        case Expr::Kind::GetItem: {
            Value obj = eval(*e.args[0]);
            return get_item(obj, eval(*e.args[1]));
        }
        case Expr::Kind::Slice: return eval_slice(e);
        case Expr::Kind::Call: return eval_call(e);
        case Expr::Kind::Unary: {
            Value v = eval(*e.args[0]);
            if (e.name == "not") return Value(!v.truthy());
            if (v.is_undefined()) fail_undefined(v);
            if (!v.is_number()) throw runtime_error("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
            if (e.name == "+") return v.is_bool() ? Value(v.to_int()) : v;
            if (v.is_float()) return Value(-v.as_float());
            if (v.to_int() == INT64_MIN) throw runtime_error("integer overflow");
            return Value(-v.to_int());
        }
        case Expr::Kind::Binary: {
            if (e.name == "and" || e.name == "or") {
                Value left = eval(*e.args[0]);
                if (left.truthy() == (e.name == "or")) return left;
                return eval(*e.args[1]);
            }
            Value left = eval(*e.args[0]);
            Value right = eval(*e.args[1]);
            return apply_binary(*this, e.name, left, right);
        }
        case Expr::Kind::Compare: return eval_compare(e);
        case Expr::Kind::Condition: {
            if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
            if (e.args[2]) return eval(*e.args[2]);
            return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                    " evaluated to false and no else section was defined");
        }
        case Expr::Kind::Filter: {
            Value subject = e.args[0] ? eval(*e.args[0]) : Value();
            return e.filter(*this, subject, eval_args(e, 1));
        }
        case Expr::Kind::Test: {
            Value subject = eval(*e.args[0]);
            bool r = e.test(*this, subject, eval_args(e, 1));
            return Value(r != e.negated);
        }
    }
    return Value();
}

Value Interpreter::eval_compare(const Expr& e) {
    Value left = eval(*e.args[0]);
    for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1]);
        const std::string& op = e.ops[i];
        bool r;
        if (op == "==") r = equals(left, right);
        else if (op == "!=") r = !equals(left, right);
        else if (op == "in") r = contains(right, left);
        else if (op == "not in") r = !contains(right, left);
        else {
            int c = compare(left, right);
            r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
        }
        if (!r) return Value(false);
        left = std::move(right);
    }
    return Value(true);
}

Value Interpreter::eval_call(const Expr& e) {
    const Expr& callee_expr = *e.args[0];
    Value callee = callee_expr.kind == Expr::Kind::GetAttr ? get_attribute(eval(*callee_expr.args[0]), callee_expr.name)
                                                           : eval(callee_expr);
    return call(callee, eval_args(e, 1));
}

Value Interpreter::eval_slice(const Expr& e) {
    Value obj = eval(*e.args[0]);
    if (obj.is_undefined()) fail_undefined(obj);
    auto bound = [&](const ExprPtr& p) -> std::optional<int64_t> {
        if (!p) return std::nullopt;
        Value v = eval(*p);
        if (v.is_none()) return std::nullopt;
        if (!v.is_int() && !v.is_bool()) throw runtime_error("slice indices must be integers or None");
        return v.to_int();
    };
    std::optional<int64_t> start = bound(e.args[1]), stop = bound(e.args[2]), stride = bound(e.args[3]);
    int64_t step = stride.value_or(1);
    if (step == 0) throw runtime_error("slice step cannot be zero");

    std::vector<std::string_view> chars;
    int64_t n;
    if (obj.is_string()) {
        chars = utf8_chars(obj.as_string());
        n = static_cast<int64_t>(chars.size());
    } else if (obj.is_list()) {
        n = static_cast<int64_t>(obj.as_list().size());
    } else {
        throw runtime_error("'" + type_name(obj) + "' object is not subscriptable");
    }
    // Python's slice.indices(n).
    auto clamp = [&](std::optional<int64_t> x, int64_t def) {
        if (!x) return def;
        int64_t v = *x;
        if (v < 0) v += n;
        if (step > 0) return std::clamp<int64_t>(v, 0, n);
        return std::clamp<int64_t>(v, -1, n - 1);
    };
    int64_t lo = clamp(start, step > 0 ? 0 : n - 1);
    int64_t hi = clamp(stop, step > 0 ? n : -1);
    if (obj.is_string()) {
        std::string out;
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) out += chars[static_cast<size_t>(i)];
        return Value(std::move(out));
    }
    List out;
    const List& items = obj.as_list();
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) out.push_back(items[static_cast<size_t>(i)]);
    return Value(std::move(out));
}

Value Interpreter::get_attribute(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Value::Kind::Undefined: fail_undefined(obj);
        case Value::Kind::Dict: {
            // Python attribute lookup finds dict methods before keys (`d.items` is the method).
            if (name == "items" || name == "keys" || name == "values" || name == "get") return find_method(obj, name);
            if (const Value* v = obj.as_dict().find(name)) return *v;
            return missing_attribute(obj, name);
        }
        case Value::Kind::Namespace:
            if (const Value* v = obj.as_namespace().attrs.find(name)) return *v;
            return missing_attribute(obj, name);
        case Value::Kind::String:
        case Value::Kind::List: {
            Value m = find_method(obj, name);
            return m.is_undefined() ? missing_attribute(obj, name) : m;
        }
        default: return missing_attribute(obj, name);
    }
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
    switch (obj.kind()) {
        case Value::Kind::Undefined: fail_undefined(obj);
        case Value::Kind::Dict:
            if (key.is_string()) {
                if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
                Value m = find_method(obj, key.as_string());
                if (!m.is_undefined()) return m;
            }
            return missing_attribute(obj, to_str(key));
        case Value::Kind::Namespace:
            if (key.is_string()) return get_attribute(obj, key.as_string());
            return missing_attribute(obj, to_str(key));
        case Value::Kind::List:
        case Value::Kind::String: {
            if (key.is_string()) return get_attribute(obj, key.as_string());
            if (!key.is_int() && !key.is_bool()) {
                if (key.is_undefined()) fail_undefined(key);
                throw runtime_error(type_name(obj) + " indices must be integers or slices, not " + type_name(key));
            }
            int64_t i = key.to_int();
            if (obj.is_list()) {
                const List& items = obj.as_list();
                int64_t n = static_cast<int64_t>(items.size());
                if (i < 0) i += n;
                if (i < 0 || i >= n) return Value::undefined("'list object' has no element " + std::to_string(key.to_int()));
                return items[static_cast<size_t>(i)];
            }
            auto chars = utf8_chars(obj.as_string());
            int64_t n = static_cast<int64_t>(chars.size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value::undefined("'str object' has no element " + std::to_string(key.to_int()));
            return Value(std::string(chars[static_cast<size_t>(i)]));
        }
        case Value::Kind::None: throw runtime_error("'NoneType' object is not subscriptable");
        default: return missing_attribute(obj, to_str(key));
    }
}

// ---- operators ----------------------------------------------------------------

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Value::Kind::Undefined: return false;
        case Value::Kind::String:
            if (!item.is_string())
                throw runtime_error("'in <string>' requires string as left operand, not " + type_name(item));
            return container.as_string().find(item.as_string()) != std::string::npos;
        case Value::Kind::List:
            for (const auto& x : container.as_list())
                if (equals(x, item)) return true;
            return false;
        case Value::Kind::Dict: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
        default: throw runtime_error("argument of type '" + type_name(container) + "' is not iterable");
    }
}

static void overflow_check(bool overflow) {
    if (overflow) throw runtime_error("integer overflow (kiln's templates use 64-bit integers)");
}

static Value repeat(Interpreter& in, const Value& seq, int64_t count) {
    if (count <= 0) return seq.is_string() ? Value(std::string()) : Value(List{});
    if (seq.is_string()) {
        const std::string& s = seq.as_string();
        if (!s.empty() && static_cast<uint64_t>(count) > in.limits().max_output_bytes / s.size())
            in.check_size(in.limits().max_output_bytes + 1);
        std::string out;
        out.reserve(s.size() * static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i) out += s;
        return Value(std::move(out));
    }
    const List& items = seq.as_list();
    if (!items.empty() && static_cast<uint64_t>(count) > in.limits().max_output_bytes / items.size())
        in.check_size(in.limits().max_output_bytes + 1);
    List out;
    for (int64_t i = 0; i < count; ++i) out.insert(out.end(), items.begin(), items.end());
    return Value(std::move(out));
}

Value apply_binary(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
        std::string sa = to_str(a), sb = to_str(b);
        in.check_size(sa.size() + sb.size());
        return Value(sa + sb);
    }
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    auto unsupported = [&]() -> Error {
        return runtime_error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
                             type_name(b) + "'");
    };
    if (a.is_number() && b.is_number()) {
        const bool fl = a.is_float() || b.is_float();
        const double x = a.to_double(), y = b.to_double();
        const int64_t i = fl ? 0 : a.to_int(), j = fl ? 0 : b.to_int();
        int64_t r = 0;
        if (op == "+") {
            if (fl) return Value(x + y);
            overflow_check(__builtin_add_overflow(i, j, &r));
            return Value(r);
        }
        if (op == "-") {
            if (fl) return Value(x - y);
            overflow_check(__builtin_sub_overflow(i, j, &r));
            return Value(r);
        }
        if (op == "*") {
            if (fl) return Value(x * y);
            overflow_check(__builtin_mul_overflow(i, j, &r));
            return Value(r);
        }
        if (op == "/") {
            if (y == 0) throw runtime_error("division by zero");
            return Value(x / y);
        }
        if (op == "//" || op == "%") {
            if (y == 0) throw runtime_error(fl ? "float division by zero" : "integer division or modulo by zero");
            if (fl) {
                double m = std::fmod(x, y);
                if (m != 0 && ((m < 0) != (y < 0))) m += y;  // Python: result takes the divisor's sign
                return op == "%" ? Value(m) : Value(std::floor((x - m) / y + 0.5));
            }
            if (i == INT64_MIN && j == -1) throw runtime_error("integer overflow");
            int64_t q = i / j, m = i % j;
            if (m != 0 && ((m < 0) != (j < 0))) {
                --q;
                m += j;
            }
            return op == "%" ? Value(m) : Value(q);
        }
        if (op == "**") {
            if (fl || j < 0) return Value(std::pow(x, y));
            int64_t result = 1, base = i;
            for (int64_t e = j; e > 0; e >>= 1) {
                if (e & 1) overflow_check(__builtin_mul_overflow(result, base, &result));
                if (e > 1) overflow_check(__builtin_mul_overflow(base, base, &base));
            }
            return Value(result);
        }
        throw unsupported();
    }
    if (op == "+") {
        if (a.is_string() && b.is_string()) {
            in.check_size(a.as_string().size() + b.as_string().size());
            return Value(a.as_string() + b.as_string());
        }
        if (a.is_list() && b.is_list()) {
            in.check_size(a.as_list().size() + b.as_list().size());
            List out = a.as_list();
            out.insert(out.end(), b.as_list().begin(), b.as_list().end());
            return Value(std::move(out));
        }
        if (a.is_string() || a.is_list())
            throw runtime_error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
                                type_name(a));
    }
    if (op == "*") {
        if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(in, a, b.to_int());
        if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(in, b, a.to_int());
    }
    throw unsupported();
}

}  // namespace kiln::jinja
