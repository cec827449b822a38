#include "server/json_constraint.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "server/api_error.h"

namespace kiln::server {

namespace {
using nlohmann::json;

struct Node {
    enum class Type { Any, Object, Array, String, Number, Integer, Literal } type = Type::Any;
    std::vector<std::string> keys;          // Object: "\"name\":" per property, in order
    std::vector<std::unique_ptr<Node>> values;
    std::unique_ptr<Node> items;            // Array
    std::vector<std::string> literals;      // Literal: JSON texts (enum, const, true/false, null)
};

const char* const kUnsupported[] = {"anyOf", "oneOf", "allOf", "$ref", "not", "if", "pattern", "format", "minLength",
                                    "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                    "minItems", "maxItems", "patternProperties", "multipleOf", "uniqueItems"};

std::unique_ptr<Node> compile(const json& s, const std::string& where, int depth) {
    if (depth > 16) throw invalid_param("response_format", where + ": the schema is nested too deeply (at most 16 levels)");
    if (!s.is_object()) throw invalid_param("response_format", where + " must be a schema object");
    for (const char* k : kUnsupported)
        if (s.contains(k))
            throw invalid_param("response_format", where + ": the schema keyword '" + k +
                                                       "' is not supported by kiln's constrained output; remove it");
    auto n = std::make_unique<Node>();
    if (s.contains("const")) {
        n->type = Node::Type::Literal;
        n->literals.push_back(s["const"].dump());
        return n;
    }
    if (s.contains("enum")) {
        const json& e = s["enum"];
        if (!e.is_array() || e.empty() || e.size() > 64)
            throw invalid_param("response_format", where + ".enum must be an array of 1 to 64 values");
        n->type = Node::Type::Literal;
        for (const auto& v : e) n->literals.push_back(v.dump());
        return n;
    }
    if (!s.contains("type")) {
        if (s.contains("properties")) n->type = Node::Type::Object;
        else return n;  // any JSON value
    } else if (!s["type"].is_string()) {
        throw invalid_param("response_format", where + ".type must be one type name (type arrays are not supported)");
    }
    const std::string type = s.contains("type") ? s["type"].get<std::string>() : "object";
    if (type == "object") {
        n->type = Node::Type::Object;
        if (s.contains("properties")) {
            if (!s["properties"].is_object()) throw invalid_param("response_format", where + ".properties must be an object");
            for (const auto& [k, v] : s["properties"].items()) {
                n->keys.push_back(json(k).dump() + ":");
                n->values.push_back(compile(v, where + ".properties." + k, depth + 1));
            }
        }
        if (n->keys.empty()) n->type = Node::Type::Any, n->literals.push_back("{");  // any object
    } else if (type == "array") {
        n->type = Node::Type::Array;
        n->items = s.contains("items") ? compile(s["items"], where + ".items", depth + 1) : std::make_unique<Node>();
    } else if (type == "string") {
        n->type = Node::Type::String;
    } else if (type == "number") {
        n->type = Node::Type::Number;
    } else if (type == "integer") {
        n->type = Node::Type::Integer;
    } else if (type == "boolean") {
        n->type = Node::Type::Literal;
        n->literals = {"true", "false"};
    } else if (type == "null") {
        n->type = Node::Type::Literal;
        n->literals = {"null"};
    } else {
        throw invalid_param("response_format", where + ".type '" + type + "' is not a JSON schema type");
    }
    return n;
}

enum class Kind : uint8_t { Value, ObjGeneric, ObjSchema, Array, String, Number, Literal };

struct Frame {
    Kind kind;
    const Node* node;  // Value/ObjSchema/Array(items)/Literal/Number; nullptr = any
    int32_t phase = 0;
    int32_t pos = 0;
    uint64_t alive = 0;  // Literal: candidates still matching
    bool integer = false;
};

const Node& any_node() {
    static const Node n;
    return n;
}
const Node& json_literals() {
    static const Node n = [] {
        Node l;
        l.type = Node::Type::Literal;
        l.literals = {"true", "false", "null"};
        return l;
    }();
    return n;
}

constexpr size_t kMaxDepth = 48;
constexpr int kMaxNumberChars = 24;

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The automaton. Stack empty = the root value is complete.
class JsonMachine {
public:
    explicit JsonMachine(const Node* root) { stack_.push_back({Kind::Value, root}); }
    bool done() const { return stack_.empty(); }

    bool feed(unsigned char c) {
        for (;;) {
            if (stack_.empty()) return false;
            Frame& f = stack_.back();
            switch (f.kind) {
                case Kind::Value: return start_value(c);
                case Kind::ObjGeneric:
                    switch (f.phase) {
                        case 0: if (c == '}') return pop();
                                [[fallthrough]];
                        case 3: if (c != '"') return false;
                                f.phase = 1;
                                return push({Kind::String, nullptr});
                        case 1: if (c != ':') return false;
                                f.phase = 2;
                                return push({Kind::Value, &any_node()});
                        case 2: if (c == '}') return pop();
                                if (c != ',') return false;
                                f.phase = 3;
                                return true;
                    }
                    return false;
                case Kind::ObjSchema: {
                    // phase = property index; pos = bytes of its `,"key":` prefix matched;
                    // pos == -1: its value is done.
                    const Node& n = *f.node;
                    if (f.pos == -1) {
                        if (size_t(f.phase) + 1 == n.keys.size()) return c == '}' ? pop() : false;
                        ++f.phase;
                        f.pos = 0;
                    }
                    const std::string& key = n.keys[size_t(f.phase)];
                    const bool comma = f.phase > 0;
                    const size_t at = size_t(f.pos);
                    const char want = comma ? (at == 0 ? ',' : key[at - 1]) : key[at];
                    if (c != (unsigned char)want) return false;
                    ++f.pos;
                    if (size_t(f.pos) == key.size() + (comma ? 1 : 0)) {
                        f.pos = -1;
                        return push({Kind::Value, n.values[size_t(f.phase)].get()});
                    }
                    return true;
                }
                case Kind::Array:
                    if (f.phase == 0) {
                        if (c == ']') return pop();
                        f.phase = 1;
                        if (!push({Kind::Value, f.node})) return false;
                        continue;  // c starts the first element
                    }
                    if (c == ']') return pop();
                    if (c != ',') return false;
                    return push({Kind::Value, f.node});
                case Kind::String:
                    if (f.phase == 0) {
                        if (c == '"') return pop();
                        if (c == '\\') f.phase = 1;
                        return c >= 0x20;
                    }
                    if (f.phase == 1) {
                        if (c == 'u') { f.phase = 2; return true; }
                        f.phase = 0;
                        return std::strchr("\"\\/bfnrt", c) != nullptr && c != 0;
                    }
                    if (!is_hex(c)) return false;
                    f.phase = f.phase == 5 ? 0 : f.phase + 1;
                    return true;
                case Kind::Number: {
                    const int next = number_step(f, c);
                    if (next >= 0) {
                        if (++f.pos > kMaxNumberChars) return false;
                        f.phase = next;
                        return true;
                    }
                    // c cannot extend the number: it ends here if it may, and c goes to the parent.
                    if (!(f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8)) return false;
                    stack_.pop_back();
                    continue;
                }
                case Kind::Literal: {
                    uint64_t alive = 0;
                    const auto& lits = f.node->literals;
                    bool complete = false;
                    for (size_t i = 0; i < lits.size(); ++i) {
                        if (!((f.alive >> i) & 1u)) continue;
                        if (size_t(f.pos) < lits[i].size() && (unsigned char)lits[i][size_t(f.pos)] == c) {
                            alive |= uint64_t(1) << i;
                            if (lits[i].size() == size_t(f.pos) + 1) complete = true;
                        }
                    }
                    if (!alive) return false;
                    f.alive = alive;
                    ++f.pos;
                    return complete ? pop() : true;
                }
            }
            return false;
        }
    }

private:
    bool push(Frame f) {
        if (stack_.size() >= kMaxDepth) return false;
        stack_.push_back(f);
        return true;
    }
    bool pop() {
        stack_.pop_back();
        return true;
    }

    // Number states: 0 start, 1 after '-', 2 after a leading 0, 3 int digits, 4 after '.',
    // 5 fraction digits, 6 after 'e', 7 after the exponent sign, 8 exponent digits.
    static int number_step(const Frame& f, unsigned char c) {
        const bool d = is_digit(c);
        switch (f.phase) {
            case 0: return c == '-' ? 1 : c == '0' ? 2 : d ? 3 : -1;
            case 1: return c == '0' ? 2 : d ? 3 : -1;
            case 2: case 3:
                if (f.phase == 3 && d) return 3;
                if (f.integer) return -1;
                return c == '.' ? 4 : (c == 'e' || c == 'E') ? 6 : -1;
            case 4: case 5: return d ? 5 : (f.phase == 5 && (c == 'e' || c == 'E')) ? 6 : -1;
            case 6: return (c == '+' || c == '-') ? 7 : d ? 8 : -1;
            case 7: case 8: return d ? 8 : -1;
        }
        return -1;
    }

    bool start_value(unsigned char c) {
        const Node* n = stack_.back().node;
        stack_.pop_back();
        Frame f{Kind::Value, n};
        switch (n->type) {
            case Node::Type::Any:
                if (!n->literals.empty()) return c == '{' && push({Kind::ObjGeneric, nullptr});  // any object
                if (c == '{') return push({Kind::ObjGeneric, nullptr});
                if (c == '[') return push({Kind::Array, &any_node()});
                if (c == '"') return push({Kind::String, nullptr});
                if (c == '-' || is_digit(c)) {
                    f = {Kind::Number, n};
                    break;
                }
                f = {Kind::Literal, &json_literals()};
                f.alive = 0b111;
                break;
            case Node::Type::Object:
                if (c != '{') return false;
                return push({Kind::ObjSchema, n});
            case Node::Type::Array:
                return c == '[' && push({Kind::Array, n->items.get()});
            case Node::Type::String:
                return c == '"' && push({Kind::String, nullptr});
            case Node::Type::Number:
            case Node::Type::Integer:
                f = {Kind::Number, n};
                f.integer = n->type == Node::Type::Integer;
                break;
            case Node::Type::Literal:
                f = {Kind::Literal, n};
                f.alive = n->literals.size() >= 64 ? ~uint64_t(0) : (uint64_t(1) << n->literals.size()) - 1;
                break;
        }
        if (!push(f)) return false;
        return feed(c);
    }

    std::vector<Frame> stack_;
};

// Every token's bytes, made once per vocabulary.
const std::vector<std::string>& vocabulary_pieces(const Tokenizer& tok) {
    static std::mutex mu;
    static const Tokenizer* cached_for = nullptr;
    static std::vector<std::string> pieces;
    std::lock_guard lock(mu);
    if (cached_for != &tok) {
        pieces.clear();
        for (int32_t i = 0; i < tok.n_vocab(); ++i) pieces.push_back(tok.is_eog(i) ? std::string() : tok.token_to_piece(i));
        cached_for = &tok;
    }
    return pieces;
}

class JsonConstraint final : public TokenConstraint {
public:
    JsonConstraint(std::unique_ptr<Node> root, const Tokenizer& tok)
        : root_(std::move(root)), pieces_(vocabulary_pieces(tok)), machine_(root_.get()) {}

    void mask(std::span<float> logits) override {
        for (size_t id = 0; id < logits.size() && id < pieces_.size(); ++id) {
            if (logits[id] == -INFINITY) continue;
            const std::string& p = pieces_[id];
            bool ok = !p.empty();
            if (ok) {
                JsonMachine m = machine_;
                for (unsigned char c : p)
                    if (!m.feed(c)) {
                        ok = false;
                        break;
                    }
            }
            if (!ok) logits[id] = -INFINITY;
        }
    }
    void accept(int32_t token) override {
        if (token < 0 || size_t(token) >= pieces_.size()) return;
        for (unsigned char c : pieces_[size_t(token)]) machine_.feed(c);
    }
    bool done() const override { return machine_.done(); }

private:
    std::unique_ptr<Node> root_;
    const std::vector<std::string>& pieces_;
    JsonMachine machine_;
};
}  // namespace

void check_json_schema(const json& schema) { compile(schema, "schema", 0); }

std::shared_ptr<TokenConstraint> make_json_constraint(const ResponseFormat& format, const Tokenizer& tokenizer) {
    if (format.kind == ResponseFormat::Kind::Text) return nullptr;
    std::unique_ptr<Node> root;
    if (format.kind == ResponseFormat::Kind::JsonObject) {
        root = std::make_unique<Node>();
        root->literals.push_back("{");  // any object
    } else {
        root = compile(format.schema, "schema", 0);
    }
    return std::make_shared<JsonConstraint>(std::move(root), tokenizer);
}

}  // namespace kiln::server
