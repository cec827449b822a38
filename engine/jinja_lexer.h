#pragma once
// Splits Jinja template text into tokens, applying the whitespace rules of the
// environment Hugging Face renders chat templates with: trim_blocks=True (drop
// the first newline after a block or comment tag), lstrip_blocks=True (drop
// spaces and tabs before a block or comment tag that starts its line), the
// explicit `-`/`+` markers, and keep_trailing_newline=False.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::jinja {

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End };

struct Token {
    TokenType type;
    std::string text;  // Data text, name, decoded string, or operator spelling
    int line = 0;
    int64_t integer = 0;
    double number = 0;
};

// Throws jinja::Error (Syntax) with a line number for unterminated tags,
// strings and characters that cannot start a token.
std::vector<Token> tokenize(std::string_view source);

}  // namespace kiln::jinja
