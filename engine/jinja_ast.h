#pragma once
// Syntax tree of a parsed Jinja template. Nodes are plain records whose
// fields are read according to `kind` (documented per kind below); the
// interpreter (jinja_interpreter.cpp) gives them meaning.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/jinja_value.h"

namespace kiln::jinja {

class Interpreter;
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// A filter: `subject` is the piped value; args as written after the name.
using FilterFunction = Value (*)(Interpreter&, const Value& subject, const CallArgs& args);
// A test (`x is name(args)`).
using TestFunction = bool (*)(Interpreter&, const Value& subject, const CallArgs& args);

struct Expr {
    enum class Kind {
        Literal,   // value
        Name,      // name
        List,      // args = items (also tuples)
        Dict,      // args = key0, value0, key1, value1, ...
        GetAttr,   // args[0] = object, name = attribute
        GetItem,   // args[0] = object, args[1] = key
        Slice,     // args[0] = object, args[1..3] = start, stop, step (each may be null)
        Call,      // args[0] = callee, args[1..] = positional, kwargs
        Unary,     // name = "-", "+" or "not"; args[0]
        Binary,    // name = operator ("+", "-", "*", "/", "//", "%", "**", "~", "and", "or"); args[0], args[1]
        Compare,   // args[0] compared through ops[i] with args[i + 1] (chained as in Python)
        Condition, // args[0] if args[1] else args[2] (args[2] may be null: undefined)
        Filter,    // args[0] = subject (null inside a filter block), args[1..] = positional, kwargs; filter
        Test,      // args[0] = subject, args[1..] = positional, kwargs; test; negated for `is not`
    };
    explicit Expr(Kind k, int at = 0) : kind(k), line(at) {}
    Kind kind;
    int line = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops;
    FilterFunction filter = nullptr;
    TestFunction test = nullptr;
    bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
    enum class Kind {
        Text,         // text written verbatim
        Output,       // {{ expr }}
        If,           // branches (condition, body) in order; else_body
        For,          // targets (one name, or several to unpack) in expr [if condition]; body; else_body
        Set,          // targets = expr, or `set targets[0].attribute = expr` when attribute is set
        SetBlock,     // targets[0] = rendered body, piped through filters
        Macro,        // name(params) body
        CallBlock,    // expr is the call of a macro; body becomes its `caller(params)`
        FilterBlock,  // body rendered then piped through filters
        Break,
        Continue,
        Block,        // body rendered in place ({% generation %})
    };
    explicit Stmt(Kind k, int at = 0) : kind(k), line(at) {}
    Kind kind;
    int line = 0;
    std::string text;
    std::string name;
    std::string attribute;
    std::vector<std::string> targets;
    ExprPtr expr;
    ExprPtr condition;
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body body;
    Body else_body;
    std::vector<std::pair<std::string, ExprPtr>> params;  // name and default (null: none)
    std::vector<ExprPtr> filters;                          // Filter exprs with a null subject
};

}  // namespace kiln::jinja
