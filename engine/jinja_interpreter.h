#pragma once
// Renders a parsed template. One Interpreter renders once: it owns the output
// buffers, the variable scopes and the safety counters (evaluation steps,
// output size, call depth) that stop hostile templates.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/jinja_ast.h"

namespace kiln::jinja {

struct Limits {
    uint64_t max_steps = 20'000'000;           // expression evaluations + loop iterations
    size_t max_output_bytes = 16u << 20;       // rendered text, and any single string value
    int max_call_depth = 200;                  // nested macro calls
    size_t max_range = 100'000;                // jinja2's sandbox MAX_RANGE
};

struct Scope {
    std::shared_ptr<Scope> parent;
    Dict vars;
};

class Interpreter {
public:
    Interpreter(const Limits& limits, std::shared_ptr<Scope> globals);

    std::string render(const Body& body);

    // Helpers shared with filters, tests and methods.
    const Limits& limits() const { return limits_; }
    void check_size(size_t bytes) const;
    void step();
    Value call(const Value& callee, const CallArgs& args);
    Value get_attribute(const Value& obj, const std::string& name);
    Value get_item(const Value& obj, const Value& key);
    // Items a for loop visits: list items, dict keys, string characters, nothing for undefined.
    List iterate(const Value& v) const;
    // Runs a macro body (or a call block's caller) with its arguments bound.
    Value call_macro(const Stmt& macro, const std::shared_ptr<Scope>& definition_scope, const CallArgs& args);
    std::string capture(const Body& body, std::shared_ptr<Scope> scope);

private:
    enum class Flow { Normal, Break, Continue };

    Limits limits_;
    std::shared_ptr<Scope> scope_;
    std::string* out_ = nullptr;
    uint64_t steps_ = 0;
    int call_depth_ = 0;
    // Scopes macros were defined in. Macros hold them weakly (a scope holds its
    // macros, so a strong reference would be a cycle); this keeps them alive.
    std::vector<std::shared_ptr<Scope>> macro_scopes_;

    Flow exec_body(const Body& body);
    Flow exec(const Stmt& s);
    void exec_for(const Stmt& s);
    void write(const std::string& text);
    void assign(const std::vector<std::string>& targets, const Value& value, int line);
    Value make_macro(const Stmt& s);

    Value eval(const Expr& e);
    Value eval_inner(const Expr& e);
    Value eval_binary(const Expr& e);
    Value eval_compare(const Expr& e);
    Value eval_call(const Expr& e);
    Value eval_slice(const Expr& e);
    CallArgs eval_args(const Expr& e, size_t first);
    Value lookup(const std::string& name) const;
};

Value apply_binary(Interpreter& in, const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
// Built-in methods of str, dict and list values (`s.split(',')`, `d.items()`).
Value find_method(const Value& obj, const std::string& name);
// Global functions every template sees: range, namespace, dict.
void add_builtin_globals(Dict& globals);

}  // namespace kiln::jinja
