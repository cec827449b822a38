#pragma once
// A Jinja2 template engine covering what model chat templates use. Parse once,
// render many times; rendering is bounded by jinja::Limits.
#include <memory>
#include <string>
#include <string_view>

#include "engine/jinja_ast.h"
#include "engine/jinja_error.h"
#include "engine/jinja_interpreter.h"
#include "engine/jinja_value.h"

namespace kiln::jinja {

class Template {
public:
    // Throws jinja::Error (Syntax) with a line number.
    static Template parse(std::string_view source);
    // `variables` are the template's globals (besides range, namespace, dict).
    // Throws jinja::Error (Runtime, Raised, Limit) with a line number.
    std::string render(const Dict& variables, const Limits& limits = {}) const;

private:
    std::shared_ptr<const Body> body_;
};

}  // namespace kiln::jinja
