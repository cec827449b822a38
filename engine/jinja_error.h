#pragma once
// Errors raised while parsing or rendering a Jinja template. The message is
// the bare description; the line (1-based, 0 when unknown) is kept apart so the
// caller (chat_template.cpp) can phrase it for users.
#include <stdexcept>
#include <string>

namespace kiln::jinja {

class Error : public std::runtime_error {
public:
    enum class Kind {
        Syntax,   // the template text is not valid Jinja (or uses an unsupported feature)
        Runtime,  // evaluation failed: undefined value misuse, type error, ...
        Raised,   // the template called raise_exception(message)
        Limit,    // a safety bound (steps, output size, recursion depth) was hit
    };
    Error(Kind kind, const std::string& message, int line = 0)
        : std::runtime_error(message), kind_(kind), line_(line) {}
    Kind kind() const { return kind_; }
    int line() const { return line_; }
    void set_line(int line) { line_ = line; }

private:
    Kind kind_;
    int line_;
};

inline Error runtime_error(const std::string& message) { return Error(Error::Kind::Runtime, message); }

}  // namespace kiln::jinja
