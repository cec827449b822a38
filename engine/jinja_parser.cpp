#include "engine/jinja_parser.h"

#include <set>

#include "engine/jinja_builtins.h"
#include "engine/jinja_error.h"
#include "engine/jinja_lexer.h"

namespace kiln::jinja {
namespace {

// Nesting bound: a hostile template of 100k '(' must not overflow the stack.
constexpr int kMaxNesting = 200;

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

    Body parse_all() {
        Body body = parse_body({});
        if (peek().type != TokenType::End) fail("unexpected '" + peek_tag_name() + "'");
        return body;
    }

private:
    std::vector<Token> tokens_;
    size_t pos_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxNesting)
                throw Error(Error::Kind::Syntax, "template nested too deeply (more than 200 levels)", p.peek().line);
        }
        ~DepthGuard() { --p.depth_; }
    };

    const Token& peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
    const Token& next() {
        const Token& t = tokens_[pos_];
        if (pos_ + 1 < tokens_.size()) ++pos_;
        return t;
    }
    [[noreturn]] void fail(const std::string& message) const { throw Error(Error::Kind::Syntax, message, peek().line); }

    static std::string describe(const Token& t) {
        switch (t.type) {
            case TokenType::End: return "end of template";
            case TokenType::BlockEnd: return "'%}'";
            case TokenType::VariableEnd: return "'}}'";
            case TokenType::String: return "string";
            case TokenType::Integer:
            case TokenType::Float: return "number " + t.text;
            default: return "'" + t.text + "'";
        }
    }
    std::string peek_tag_name() const {
        if (peek().type == TokenType::BlockBegin && peek(1).type == TokenType::Name) return peek(1).text;
        return describe(peek());
    }

    bool at_op(std::string_view op, size_t ahead = 0) const {
        return peek(ahead).type == TokenType::Operator && peek(ahead).text == op;
    }
    bool at_name(std::string_view name) const { return peek().type == TokenType::Name && peek().text == name; }
    bool skip_op(std::string_view op) {
        if (!at_op(op)) return false;
        next();
        return true;
    }
    bool skip_name(std::string_view name) {
        if (!at_name(name)) return false;
        next();
        return true;
    }
    void expect_op(std::string_view op) {
        if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(peek()));
    }
    std::string expect_name() {
        if (peek().type != TokenType::Name) fail("expected a name, got " + describe(peek()));
        return next().text;
    }
    void expect_block_end(const std::string& tag) {
        if (peek().type != TokenType::BlockEnd)
            fail("expected '%}' to end '" + tag + "', got " + describe(peek()));
        next();
    }

    // ---- statements ---------------------------------------------------------

    // Parses until a `{% name %}` with name in `end_tags` (left unconsumed) or the end.
    Body parse_body(const std::set<std::string_view>& end_tags) {
        DepthGuard guard(*this);
        Body body;
        for (;;) {
            const Token& t = peek();
            if (t.type == TokenType::End) {
                if (!end_tags.empty()) fail("unexpected end of template: missing '{% " + std::string(*end_tags.rbegin()) + " %}'");
                return body;
            }
            if (t.type == TokenType::Data) {
                auto s = std::make_unique<Stmt>(Stmt::Kind::Text);
                s->line = t.line;
                s->text = next().text;
                body.push_back(std::move(s));
            } else if (t.type == TokenType::VariableBegin) {
                auto s = std::make_unique<Stmt>(Stmt::Kind::Output);
                s->line = next().line;
                s->expr = parse_tuple();
                if (peek().type != TokenType::VariableEnd) fail("expected '}}', got " + describe(peek()));
                next();
                body.push_back(std::move(s));
            } else if (t.type == TokenType::BlockBegin) {
                if (peek(1).type != TokenType::Name) {
                    next();
                    fail("expected a tag name after '{%', got " + describe(peek()));
                }
                if (end_tags.count(peek(1).text)) return body;
                next();
                body.push_back(parse_statement());
            } else {
                fail("unexpected " + describe(t));
            }
        }
    }

    // Consumes `{% name` of an expected closing/continuation tag.
    void expect_tag(std::string_view name) {
        if (peek().type != TokenType::BlockBegin || peek(1).type != TokenType::Name || peek(1).text != name)
            fail("expected '{% " + std::string(name) + " %}'");
        next();
        next();
    }

    StmtPtr make(Stmt::Kind kind, int line) {
        auto s = std::make_unique<Stmt>(kind);
        s->line = line;
        return s;
    }

    StmtPtr parse_statement() {
        int line = peek().line;
        std::string tag = next().text;
        if (tag == "if") return parse_if(line);
        if (tag == "for") return parse_for(line);
        if (tag == "set") return parse_set(line);
        if (tag == "macro") return parse_macro(line);
        if (tag == "call") return parse_call_block(line);
        if (tag == "filter") return parse_filter_block(line);
        if (tag == "generation") {
            auto s = make(Stmt::Kind::Block, line);
            expect_block_end(tag);
            s->body = parse_body({"endgeneration"});
            expect_tag("endgeneration");
            expect_block_end("endgeneration");
            return s;
        }
        if (tag == "break" || tag == "continue") {
            if (loop_depth_ == 0) fail("'" + tag + "' outside of a for loop");
            expect_block_end(tag);
            return make(tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
        }
        static const std::set<std::string_view> closers = {"endif", "elif", "else", "endfor", "endset", "endmacro",
                                                           "endcall", "endfilter", "endraw", "endgeneration"};
        if (closers.count(tag)) fail("unexpected '" + tag + "': no open block it could close");
        fail("unknown or unsupported tag '" + tag + "'");
    }

    StmtPtr parse_if(int line) {
        auto s = make(Stmt::Kind::If, line);
        for (;;) {
            ExprPtr cond = parse_tuple();
            expect_block_end("if");
            Body body = parse_body({"elif", "else", "endif"});
            s->branches.emplace_back(std::move(cond), std::move(body));
            next();  // BlockBegin
            std::string t = next().text;
            if (t == "elif") continue;
            if (t == "else") {
                expect_block_end("else");
                s->else_body = parse_body({"endif"});
                expect_tag("endif");
            }
            expect_block_end("endif");
            return s;
        }
    }

    std::vector<std::string> parse_targets() {
        std::vector<std::string> names;
        bool paren = skip_op("(");
        names.push_back(expect_name());
        while (skip_op(",")) names.push_back(expect_name());
        if (paren) expect_op(")");
        return names;
    }

    StmtPtr parse_for(int line) {
        auto s = make(Stmt::Kind::For, line);
        s->targets = parse_targets();
        if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(peek()));
        s->expr = parse_tuple(/*with_condition=*/false);
        if (skip_name("if")) s->condition = parse_tuple();
        if (at_name("recursive")) fail("recursive for loops are not supported");
        expect_block_end("for");
        ++loop_depth_;
        s->body = parse_body({"else", "endfor"});
        --loop_depth_;
        next();
        if (next().text == "else") {
            expect_block_end("else");
            s->else_body = parse_body({"endfor"});
            expect_tag("endfor");
        }
        expect_block_end("endfor");
        return s;
    }

    StmtPtr parse_set(int line) {
        auto s = make(Stmt::Kind::Set, line);
        s->targets.push_back(expect_name());
        if (skip_op(".")) {
            s->attribute = expect_name();
        } else {
            while (skip_op(",")) s->targets.push_back(expect_name());
        }
        if (skip_op("=")) {
            s->expr = parse_tuple();
            expect_block_end("set");
            return s;
        }
        if (!s->attribute.empty() || s->targets.size() != 1) fail("expected '=' in set");
        s->kind = Stmt::Kind::SetBlock;
        while (skip_op("|")) s->filters.push_back(parse_filter(nullptr));
        expect_block_end("set");
        s->body = parse_body({"endset"});
        expect_tag("endset");
        expect_block_end("endset");
        return s;
    }

    void parse_params(std::vector<std::pair<std::string, ExprPtr>>& params) {
        expect_op("(");
        while (!at_op(")")) {
            if (!params.empty()) expect_op(",");
            if (at_op(")")) break;
            std::string name = expect_name();
            ExprPtr def;
            if (skip_op("=")) def = parse_expression();
            params.emplace_back(std::move(name), std::move(def));
        }
        expect_op(")");
    }

    StmtPtr parse_macro(int line) {
        auto s = make(Stmt::Kind::Macro, line);
        s->name = expect_name();
        parse_params(s->params);
        expect_block_end("macro");
        int saved_loops = loop_depth_;
        loop_depth_ = 0;
        s->body = parse_body({"endmacro"});
        loop_depth_ = saved_loops;
        expect_tag("endmacro");
        if (peek().type == TokenType::Name) next();  // {% endmacro name %}
        expect_block_end("endmacro");
        return s;
    }

    StmtPtr parse_call_block(int line) {
        auto s = make(Stmt::Kind::CallBlock, line);
        if (at_op("(")) parse_params(s->params);
        s->expr = parse_expression();
        if (s->expr->kind != Expr::Kind::Call) fail("expected a macro call after 'call'");
        expect_block_end("call");
        int saved_loops = loop_depth_;
        loop_depth_ = 0;
        s->body = parse_body({"endcall"});
        loop_depth_ = saved_loops;
        expect_tag("endcall");
        expect_block_end("endcall");
        return s;
    }

    StmtPtr parse_filter_block(int line) {
        auto s = make(Stmt::Kind::FilterBlock, line);
        do s->filters.push_back(parse_filter(nullptr));
        while (skip_op("|"));
        expect_block_end("filter");
        s->body = parse_body({"endfilter"});
        expect_tag("endfilter");
        expect_block_end("endfilter");
        return s;
    }

    // ---- expressions (precedence as in jinja2's parser) -----------------------

    ExprPtr node(Expr::Kind kind, int line) {
        auto e = std::make_unique<Expr>(kind);
        e->line = line;
        return e;
    }

    // `a, b` without brackets makes a tuple (in {{ }}, set and for).
    ExprPtr parse_tuple(bool with_condition = true) {
        int line = peek().line;
        ExprPtr first = with_condition ? parse_expression() : parse_or();
        if (!at_op(",")) return first;
        auto list = node(Expr::Kind::List, line);
        list->args.push_back(std::move(first));
        while (skip_op(",")) {
            if (peek().type == TokenType::BlockEnd || peek().type == TokenType::VariableEnd || at_name("if")) break;
            list->args.push_back(with_condition ? parse_expression() : parse_or());
        }
        return list;
    }

    ExprPtr parse_expression() {
        DepthGuard guard(*this);
        int line = peek().line;
        ExprPtr expr = parse_or();
        while (skip_name("if")) {
            auto cond = node(Expr::Kind::Condition, line);
            cond->args.push_back(std::move(expr));
            cond->args.push_back(parse_or());
            cond->args.push_back(skip_name("else") ? parse_expression() : nullptr);
            expr = std::move(cond);
        }
        return expr;
    }

    ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
        auto e = node(Expr::Kind::Binary, line);
        e->name = op;
        e->args.push_back(std::move(left));
        e->args.push_back(std::move(right));
        return e;
    }

    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (at_name("or")) {
            int line = next().line;
            left = binary("or", std::move(left), parse_and(), line);
        }
        return left;
    }
    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (at_name("and")) {
            int line = next().line;
            left = binary("and", std::move(left), parse_not(), line);
        }
        return left;
    }
    ExprPtr parse_not() {
        if (at_name("not")) {
            DepthGuard guard(*this);
            auto e = node(Expr::Kind::Unary, next().line);
            e->name = "not";
            e->args.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        int line = peek().line;
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        for (;;) {
            std::string op;
            if (peek().type == TokenType::Operator &&
                (at_op("==") || at_op("!=") || at_op("<") || at_op("<=") || at_op(">") || at_op(">="))) {
                op = next().text;
            } else if (at_name("in")) {
                next();
                op = "in";
            } else if (at_name("not") && peek(1).type == TokenType::Name && peek(1).text == "in") {
                next();
                next();
                op = "not in";
            } else {
                break;
            }
            if (!cmp) {
                cmp = node(Expr::Kind::Compare, line);
                cmp->args.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->args.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }
    ExprPtr parse_math1() {
        ExprPtr left = parse_concat();
        while (at_op("+") || at_op("-")) {
            int line = peek().line;
            std::string op = next().text;
            left = binary(op, std::move(left), parse_concat(), line);
        }
        return left;
    }
    ExprPtr parse_concat() {
        ExprPtr left = parse_math2();
        while (at_op("~")) {
            int line = next().line;
            left = binary("~", std::move(left), parse_math2(), line);
        }
        return left;
    }
    ExprPtr parse_math2() {
        ExprPtr left = parse_pow();
        while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
            int line = peek().line;
            std::string op = next().text;
            left = binary(op, std::move(left), parse_pow(), line);
        }
        return left;
    }
    ExprPtr parse_pow() {
        ExprPtr left = parse_unary(true);
        while (at_op("**")) {
            int line = next().line;
            left = binary("**", std::move(left), parse_unary(true), line);
        }
        return left;
    }
    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr e;
        if (at_op("-") || at_op("+")) {
            e = node(Expr::Kind::Unary, peek().line);
            e->name = next().text;
            e->args.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = peek();
        int line = t.line;
        switch (t.type) {
            case TokenType::Name: {
                std::string name = next().text;
                if (name == "true" || name == "True") return literal(Value(true), line);
                if (name == "false" || name == "False") return literal(Value(false), line);
                if (name == "none" || name == "None") return literal(Value(nullptr), line);
                auto e = node(Expr::Kind::Name, line);
                e->name = name;
                return e;
            }
            case TokenType::String: {
                std::string s = next().text;
                while (peek().type == TokenType::String) s += next().text;  // "a" "b" == "ab"
                return literal(Value(std::move(s)), line);
            }
            case TokenType::Integer: return literal(Value(next().integer), line);
            case TokenType::Float: return literal(Value(next().number), line);
            case TokenType::Operator:
                if (t.text == "(") {
                    next();
                    if (skip_op(")")) return node(Expr::Kind::List, line);  // ()
                    ExprPtr first = parse_expression();
                    if (at_op(",")) {
                        auto list = node(Expr::Kind::List, line);
                        list->args.push_back(std::move(first));
                        while (skip_op(",") && !at_op(")")) list->args.push_back(parse_expression());
                        first = std::move(list);
                    }
                    expect_op(")");
                    return first;
                }
                if (t.text == "[") {
                    next();
                    auto list = node(Expr::Kind::List, line);
                    while (!at_op("]")) {
                        if (!list->args.empty()) expect_op(",");
                        if (at_op("]")) break;
                        list->args.push_back(parse_expression());
                    }
                    expect_op("]");
                    return list;
                }
                if (t.text == "{") {
                    next();
                    auto dict = node(Expr::Kind::Dict, line);
                    while (!at_op("}")) {
                        if (!dict->args.empty()) expect_op(",");
                        if (at_op("}")) break;
                        dict->args.push_back(parse_expression());
                        expect_op(":");
                        dict->args.push_back(parse_expression());
                    }
                    expect_op("}");
                    return dict;
                }
                break;
            default: break;
        }
        fail("unexpected " + describe(t) + " in expression");
    }

    ExprPtr literal(Value v, int line) {
        auto e = node(Expr::Kind::Literal, line);
        e->value = std::move(v);
        return e;
    }

    ExprPtr parse_postfix(ExprPtr e) {
        for (;;) {
            int line = peek().line;
            if (skip_op(".")) {
                auto a = node(Expr::Kind::GetAttr, line);
                if (peek().type == TokenType::Name) {
                    a->name = next().text;
                } else if (peek().type == TokenType::Integer) {
                    a->kind = Expr::Kind::GetItem;  // x.0 is x[0]
                    a->args.push_back(std::move(e));
                    a->args.push_back(literal(Value(next().integer), line));
                    e = std::move(a);
                    continue;
                } else {
                    fail("expected an attribute name after '.', got " + describe(peek()));
                }
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (skip_op("[")) {
                e = parse_subscript(std::move(e), line);
            } else if (at_op("(")) {
                auto call = node(Expr::Kind::Call, line);
                call->args.push_back(std::move(e));
                parse_call_args(*call);
                e = std::move(call);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj, int line) {
        ExprPtr parts[3];
        bool is_slice = false;
        if (!at_op(":")) parts[0] = parse_expression();
        if (skip_op(":")) {
            is_slice = true;
            if (!at_op("]") && !at_op(":")) parts[1] = parse_expression();
            if (skip_op(":") && !at_op("]")) parts[2] = parse_expression();
        }
        expect_op("]");
        auto e = node(is_slice ? Expr::Kind::Slice : Expr::Kind::GetItem, line);
        e->args.push_back(std::move(obj));
        if (!is_slice && !parts[0]) fail("empty subscript '[]'");
        for (int i = 0; i < (is_slice ? 3 : 1); ++i) e->args.push_back(std::move(parts[i]));
        return e;
    }

    // `(a, b, key=value)`; appends to e.args / e.kwargs.
    void parse_call_args(Expr& e) {
        expect_op("(");
        bool first = true;
        while (!at_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (at_op(")")) break;
            if (peek().type == TokenType::Name && at_op("=", 1)) {
                std::string key = next().text;
                next();
                e.kwargs.emplace_back(std::move(key), parse_expression());
            } else {
                if (!e.kwargs.empty()) fail("positional argument after keyword argument");
                e.args.push_back(parse_expression());
            }
        }
        expect_op(")");
    }

    ExprPtr parse_filter(ExprPtr subject) {
        int line = peek().line;
        std::string name = expect_name();
        while (at_op(".") && peek(1).type == TokenType::Name) {
            next();
            name += "." + next().text;
        }
        auto f = node(Expr::Kind::Filter, line);
        f->name = name;
        f->filter = find_filter(name);
        if (!f->filter) throw Error(Error::Kind::Syntax, "unknown filter '" + name + "'", line);
        f->args.push_back(std::move(subject));
        if (at_op("(")) parse_call_args(*f);
        return f;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        for (;;) {
            if (skip_op("|")) {
                e = parse_filter(std::move(e));
            } else if (at_name("is")) {
                int line = next().line;
                auto t = node(Expr::Kind::Test, line);
                t->negated = skip_name("not");
                t->name = expect_name();
                t->test = find_test(t->name);
                if (!t->test) throw Error(Error::Kind::Syntax, "unknown test '" + t->name + "'", line);
                t->args.push_back(std::move(e));
                if (at_op("(")) {
                    parse_call_args(*t);
                } else if ((peek().type == TokenType::Name || peek().type == TokenType::String ||
                            peek().type == TokenType::Integer || peek().type == TokenType::Float || at_op("[") ||
                            at_op("{")) &&
                           !at_name("else") && !at_name("or") && !at_name("and") && !at_name("is") &&
                           !at_name("if") && !at_name("in") && !at_name("not")) {
                    // `x is divisibleby 3`: one argument without parentheses
                    t->args.push_back(parse_postfix(parse_primary()));
                }
                e = std::move(t);
            } else if (at_op("(")) {
                auto call = node(Expr::Kind::Call, peek().line);
                call->args.push_back(std::move(e));
                parse_call_args(*call);
                e = std::move(call);
            } else {
                return e;
            }
        }
    }
};

}  // namespace

Body parse_template(std::string_view source) { return Parser(tokenize(source)).parse_all(); }

}  // namespace kiln::jinja
