#include "engine/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine/jinja_error.h"

namespace kiln::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string normalize_newlines(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\r') {
            out += '\n';
            if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
        } else {
            out += in[i];
        }
    }
    // keep_trailing_newline=False: one final newline is not part of the output.
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Lexer {
public:
    explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {}

    std::vector<Token> run() {
        bool line_starting = true;  // the previous tag's match ended a line
        while (pos_ < src_.size()) {
            size_t tag = find_tag(pos_);
            if (tag == std::string::npos) {
                emit_data(src_.substr(pos_), pos_);
                pos_ = src_.size();
                break;
            }
            std::string text = src_.substr(pos_, tag - pos_);
            char kind = src_[tag + 1];
            char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
            if (sign == '-') {
                while (!text.empty() && is_space(text.back())) text.pop_back();
            } else if (sign != '+' && kind != '{') {
                lstrip_line(text, line_starting);
            }
            emit_data(text, pos_);
            pos_ = tag + 2 + (sign ? 1 : 0);
            if (kind == '#') lex_comment(tag);
            else if (kind == '%' && try_raw(tag)) {}
            else lex_tag(kind == '%', tag);
            line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
        }
        tokens_.push_back(Token{TokenType::End, "", line_of(src_.size())});
        return std::move(tokens_);
    }

private:
    std::string src_;
    size_t pos_ = 0;
    std::vector<Token> tokens_;
    // Line numbers are computed incrementally: tokens are produced in order.
    size_t line_pos_ = 0;
    int line_ = 1;

    int line_of(size_t offset) {
        if (offset < line_pos_) { line_pos_ = 0; line_ = 1; }
        for (; line_pos_ < offset && line_pos_ < src_.size(); ++line_pos_)
            if (src_[line_pos_] == '\n') ++line_;
        return line_;
    }

    [[noreturn]] void fail(const std::string& message, size_t offset) {
        throw Error(Error::Kind::Syntax, message, line_of(offset));
    }

    size_t find_tag(size_t from) const {
        for (size_t i = src_.find('{', from); i != std::string::npos && i + 1 < src_.size(); i = src_.find('{', i + 1)) {
            char c = src_[i + 1];
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return std::string::npos;
    }

    // lstrip_blocks: whitespace between the line start and the tag is dropped.
    static void lstrip_line(std::string& text, bool line_starting) {
        size_t nl = text.rfind('\n');
        size_t start = nl == std::string::npos ? 0 : nl + 1;
        if (start == 0 && !line_starting) return;
        if (start == text.size()) return;
        for (size_t i = start; i < text.size(); ++i)
            if (!is_space(text[i])) return;
        text.resize(start);
    }

    void emit_data(const std::string& text, size_t offset) {
        if (text.empty()) return;
        tokens_.push_back(Token{TokenType::Data, text, line_of(offset)});
    }

    // After a closing `%}` / `#}`: `-` eats all following whitespace, `+` nothing,
    // plain eats one newline (trim_blocks).
    void after_block_close(char marker) {
        if (marker == '-') {
            while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
        } else if (marker != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
            ++pos_;
        }
    }

    void lex_comment(size_t tag) {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) fail("unclosed comment: '{#' without a matching '#}'", tag);
        char marker = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
        pos_ = end + 2;
        after_block_close(marker);
    }

    // Matches `{%[-+]? raw [-]?%}` at tag; leaves pos_ after the whole raw block.
    bool try_raw(size_t tag) {
        size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) ++p;
        if (src_.compare(p, 3, "raw") != 0) return false;
        p += 3;
        while (p < src_.size() && is_space(src_[p])) ++p;
        bool strip_after = false;
        if (p < src_.size() && src_[p] == '-') { strip_after = true; ++p; }
        if (src_.compare(p, 2, "%}") != 0) return false;
        p += 2;
        if (strip_after)
            while (p < src_.size() && is_space(src_[p])) ++p;
        // Find `{%[-+]? endraw [-+]?%}`.
        for (size_t q = src_.find("{%", p); q != std::string::npos; q = src_.find("{%", q + 2)) {
            size_t r = q + 2;
            char sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
            if (sign) ++r;
            while (r < src_.size() && is_space(src_[r])) ++r;
            if (src_.compare(r, 6, "endraw") != 0) continue;
            r += 6;
            while (r < src_.size() && is_space(src_[r])) ++r;
            char marker = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
            if (marker) ++r;
            if (src_.compare(r, 2, "%}") != 0) continue;
            std::string body = src_.substr(p, q - p);
            if (sign == '-') {
                while (!body.empty() && is_space(body.back())) body.pop_back();
            } else if (sign != '+') {
                lstrip_line(body, false);
            }
            emit_data(body, p);
            pos_ = r + 2;
            after_block_close(marker);
            return true;
        }
        fail("unclosed raw block: '{% raw %}' without a matching '{% endraw %}'", tag);
    }

    void lex_tag(bool block, size_t tag) {
        tokens_.push_back(Token{block ? TokenType::BlockBegin : TokenType::VariableBegin, "", line_of(tag)});
        int depth = 0;  // brackets open; `}}` inside `{{ {'a': {}} }}` is not the end
        for (;;) {
            while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
            if (pos_ >= src_.size())
                fail(std::string("unexpected end of template: '") + (block ? "{%" : "{{") + "' is never closed with '" +
                         (block ? "%}" : "}}") + "'",
                     tag);
            if (depth == 0) {
                const char* close = block ? "%}" : "}}";
                char marker = 0;
                size_t at = pos_;
                if ((src_[pos_] == '-' || (block && src_[pos_] == '+')) && src_.compare(pos_ + 1, 2, close) == 0) {
                    marker = src_[pos_];
                    at = pos_ + 1;
                }
                if (src_.compare(at, 2, close) == 0) {
                    tokens_.push_back(Token{block ? TokenType::BlockEnd : TokenType::VariableEnd, "", line_of(pos_)});
                    pos_ = at + 2;
                    if (block) after_block_close(marker);
                    else if (marker == '-')
                        while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
                    return;
                }
            }
            lex_expression_token(depth);
        }
    }

    void lex_expression_token(int& depth) {
        size_t start = pos_;
        char c = src_[pos_];
        if (is_name_start(c)) {
            while (pos_ < src_.size() && (is_name_start(src_[pos_]) || is_digit(src_[pos_]))) ++pos_;
            tokens_.push_back(Token{TokenType::Name, src_.substr(start, pos_ - start), line_of(start)});
            return;
        }
        if (is_digit(c)) return lex_number();
        if (c == '\'' || c == '"') return lex_string();
        static const char* const two_char_ops[] = {"**", "//", "==", "!=", "<=", ">="};
        for (const char* op : two_char_ops)
            if (src_.compare(pos_, 2, op) == 0) {
                pos_ += 2;
                tokens_.push_back(Token{TokenType::Operator, op, line_of(start)});
                return;
            }
        if (std::strchr("+-*/%~<>=()[]{},.:|", c)) {
            if (c == '(' || c == '[' || c == '{') ++depth;
            if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
            ++pos_;
            tokens_.push_back(Token{TokenType::Operator, std::string(1, c), line_of(start)});
            return;
        }
        fail(std::string("unexpected character '") + c + "' in expression", start);
    }

    void lex_number() {
        size_t start = pos_;
        std::string digits;
        bool is_float = false;
        auto take_digits = [&] {
            while (pos_ < src_.size() && (is_digit(src_[pos_]) || (src_[pos_] == '_' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))) {
                if (src_[pos_] != '_') digits += src_[pos_];
                ++pos_;
            }
        };
        take_digits();
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
            is_float = true;
            digits += '.';
            ++pos_;
            take_digits();
        }
        if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
            size_t p = pos_ + 1;
            if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
            if (p < src_.size() && is_digit(src_[p])) {
                is_float = true;
                digits += 'e';
                digits.append(src_, pos_ + 1, p - pos_ - 1);
                pos_ = p;
                take_digits();
            }
        }
        Token t{is_float ? TokenType::Float : TokenType::Integer, src_.substr(start, pos_ - start), line_of(start)};
        errno = 0;
        if (is_float) {
            t.number = std::strtod(digits.c_str(), nullptr);
        } else {
            t.integer = std::strtoll(digits.c_str(), nullptr, 10);
            if (errno == ERANGE) fail("integer literal " + t.text + " is too large (limit is 64 bits)", start);
        }
        tokens_.push_back(std::move(t));
    }

    // Python string literal escapes, as jinja2 decodes them.
    void lex_string() {
        size_t start = pos_;
        char quote = src_[pos_++];
        std::string out;
        for (;;) {
            if (pos_ >= src_.size()) fail("unterminated string literal", start);
            char c = src_[pos_++];
            if (c == quote) break;
            if (c != '\\') { out += c; continue; }
            if (pos_ >= src_.size()) fail("unterminated string literal", start);
            char e = src_[pos_++];
            auto hex = [&](int n) -> uint32_t {
                uint32_t v = 0;
                for (int i = 0; i < n; ++i) {
                    if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
                        fail("truncated \\x, \\u or \\U escape in string literal", start);
                    char h = src_[pos_++];
                    v = v * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
                }
                return v;
            };
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case '\\': out += '\\'; break;
                case '\'': out += '\''; break;
                case '"': out += '"'; break;
                case 'a': out += '\a'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'v': out += '\v'; break;
                case '\n': break;  // line continuation
                case 'x': append_utf8(out, hex(2)); break;
                case 'u': append_utf8(out, hex(4)); break;
                case 'U': append_utf8(out, hex(8)); break;
                default:
                    if (e >= '0' && e <= '7') {
                        uint32_t v = static_cast<uint32_t>(e - '0');
                        for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++i)
                            v = v * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
                        append_utf8(out, v);
                    } else {
                        out += '\\';  // Python keeps unknown escapes verbatim
                        out += e;
                    }
            }
        }
        tokens_.push_back(Token{TokenType::String, std::move(out), line_of(start)});
    }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace kiln::jinja
